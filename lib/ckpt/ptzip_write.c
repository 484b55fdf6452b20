/* ptzip_write.c — the zip container of torch.save, byte for byte (see
 * ptzip_write.h). Field values follow what PyTorchStreamWriter asks of
 * miniz 2.1 (level 0, MINIZ_NO_TIME, zip64 end records on) and were checked
 * against files written by torch 2.3.1. Little-endian hosts. */
#include "ckpt/ptzip_write.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_DESC 0x08074b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_Z64_END 0x06064b50u
#define SIG_Z64_LOC 0x07064b50u
#define SIG_END 0x06054b50u
#define U32MAX 0xffffffffu
#define ALIGN 64

typedef struct {
    char *name; /* "<archive>/<name>" */
    uint64_t size, ofs;
    uint32_t crc;
} rec;

struct spo_ptzip_writer {
    FILE *f;
    char *archive, *path;
    size_t alen; /* strlen(archive) + 1: the "<archive>/" prefix */
    uint64_t pos; /* bytes written */
    rec *r;
    int n;
    size_t cap;
    int open;           /* a record is open: r[n-1] */
    uint64_t got;       /* its bytes so far */
    uint32_t crc;       /* its running CRC (pre-inverted) */
    uint8_t head[8];    /* its first bytes */
    uint64_t crc_mix;   /* PyTorchStreamWriter's combined_uncomp_crc32_ */
};

/* ---- CRC-32 (zip's polynomial), eight bytes a step ----------------------- */
static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_tab[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (int i = 0; i < 256; i++) crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
}

static uint32_t rd32(const uint8_t *p) { return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* c: the running value, ~0 at the start; the CRC is ~c at the end */
static uint32_t crc_step(uint32_t c, const uint8_t *p, size_t n)
{
    for (; n >= 8; p += 8, n -= 8) {
        uint32_t a = c ^ rd32(p), b = rd32(p + 4);
        c = crc_tab[7][a & 0xff] ^ crc_tab[6][(a >> 8) & 0xff] ^ crc_tab[5][(a >> 16) & 0xff] ^ crc_tab[4][a >> 24] ^
            crc_tab[3][b & 0xff] ^ crc_tab[2][(b >> 8) & 0xff] ^ crc_tab[1][(b >> 16) & 0xff] ^ crc_tab[0][b >> 24];
    }
    while (n--) c = crc_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return c;
}

/* ---- the serialization id ------------------------------------------------ */
/* c10::hash_combine */
static uint64_t mix(uint64_t seed, uint64_t v) { return seed ^ (v + 0x9e3779b9u + (seed << 6) + (seed >> 2)); }

/* std::hash<std::string> of libstdc++ on 64-bit hosts (_Hash_bytes, a
 * MurmurHash2 variant, seed 0xc70f6907) */
static uint64_t str_hash(const char *s, size_t n)
{
    const uint64_t m = 0xc6a4a7935bd1e995u;
    uint64_t h = 0xc70f6907u ^ (n * m);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t d;
        memcpy(&d, s + i, 8);
        d *= m;
        d = (d ^ (d >> 47)) * m;
        h = (h ^ d) * m;
    }
    if (n & 7) {
        uint64_t d = 0;
        for (size_t k = n; k > i; k--) d = d << 8 | (uint8_t)s[k - 1];
        h = (h ^ d) * m;
    }
    h = (h ^ (h >> 47)) * m;
    return h ^ (h >> 47);
}

/* Bucket counts libstdc++'s prime rehash policy gives a std::unordered_set
 * filled one element at a time (13, then the next listed prime >= 2x). */
static const uint64_t set_buckets[] = {13,     29,     59,      127,     257,     541,     1109,
                                       2357,   5087,   10273,   20753,   42043,   85229,   172933,
                                       351061, 712697, 1447153, 2938679, 5967347, 12117689};
#define N_SET_BUCKETS ((int)(sizeof set_buckets / sizeof set_buckets[0]))

/* Visit order of std::unordered_set after inserting hashes h[0..n-1] in
 * turn: one forward list; a new node goes first in its bucket, or first in
 * the list when its bucket is empty; a rehash relinks the list in order.
 * next[n] is the list head. Returns 0, or -1 out of memory or range. */
static int set_order(const uint64_t *h, int n, int *order)
{
    int *next = malloc(((size_t)n + 1) * sizeof *next), *bkt = NULL, head = n, lvl = -1;
    uint64_t nb = 1;
    if (!next) return -1;
    next[head] = -1;
    for (int i = 0; i < n; i++) {
        if ((uint64_t)i >= (lvl < 0 ? 0 : nb)) { /* grow and relink */
            if (++lvl == N_SET_BUCKETS) goto fail;
            nb = set_buckets[lvl];
            int *nbk = realloc(bkt, nb * sizeof *nbk);
            if (!nbk) goto fail;
            bkt = nbk;
            for (uint64_t b = 0; b < nb; b++) bkt[b] = -1;
            int p = next[head];
            uint64_t first_b = 0;
            next[head] = -1;
            while (p >= 0) {
                int nx = next[p];
                uint64_t b = h[p] % nb;
                if (bkt[b] < 0) {
                    next[p] = next[head];
                    next[head] = p;
                    bkt[b] = head;
                    if (next[p] >= 0) bkt[first_b] = p;
                    first_b = b;
                } else {
                    next[p] = next[bkt[b]];
                    next[bkt[b]] = p;
                }
                p = nx;
            }
        }
        uint64_t b = h[i] % nb;
        if (bkt[b] >= 0) {
            next[i] = next[bkt[b]];
            next[bkt[b]] = i;
        } else {
            next[i] = next[head];
            next[head] = i;
            if (next[i] >= 0) bkt[h[next[i]] % nb] = i;
            bkt[b] = head;
        }
    }
    for (int p = next[head], k = 0; p >= 0; p = next[p]) order[k++] = p;
    free(next);
    free(bkt);
    return 0;
fail:
    free(next);
    free(bkt);
    return -1;
}

/* ---- output -------------------------------------------------------------- */
static void put(spo_ptzip_writer *zw, const void *p, size_t n)
{
    if (n && fwrite(p, 1, n, zw->f) != n) return; /* ferror is checked later */
    zw->pos += n;
    /* PyTorchStreamWriter folds the CRC of every write that starts like a
     * data descriptor into the id (meant for descriptors; a name or data
     * that happens to start so counts too) */
    if (n >= 8 && rd32(p) == SIG_DESC) zw->crc_mix = mix(zw->crc_mix, rd32((const uint8_t *)p + 4));
}

/* v little-endian in bytes bytes (beyond 8: zeros, for runs of zero fields) */
static uint8_t *le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) p[i] = i < 8 ? (uint8_t)(v >> (8 * i)) : 0;
    return p + bytes;
}

static int io_check(spo_ptzip_writer *zw)
{
    if (!ferror(zw->f)) return SPO_OK;
    return spo_err(SPO_EIO, "%s: write failed: %s", zw->path, errno ? strerror(errno) : "I/O error");
}

/* the zip64 extra field (id 1): sizes when the size reaches 4 GiB, the
 * offset when it does; comp is the compressed size as known then */
static size_t z64_extra(uint8_t *b, const rec *r, uint64_t comp)
{
    int bs = r->size >= U32MAX, bo = r->ofs >= U32MAX;
    if (!bs && !bo) return 0;
    uint8_t *p = le(b, 1, 2);
    p = le(p, 16 * bs + 8 * bo, 2);
    if (bs) p = le(le(p, r->size, 8), comp, 8);
    if (bo) p = le(p, r->ofs, 8);
    return (size_t)(p - b);
}

int spo_ptzip_writer_new(spo_ptzip_writer **out, FILE *f, const char *archive, const char *path)
{
    pthread_once(&crc_once, crc_init);
    spo_ptzip_writer *zw = calloc(1, sizeof *zw);
    *out = NULL;
    if (!zw || !(zw->archive = strdup(archive)) || !(zw->path = strdup(path))) {
        spo_ptzip_writer_free(zw);
        return spo_err(SPO_EIO, "out of memory");
    }
    zw->f = f;
    zw->alen = strlen(archive) + 1;
    *out = zw;
    return SPO_OK;
}

void spo_ptzip_writer_free(spo_ptzip_writer *zw)
{
    if (!zw) return;
    for (int i = 0; i < zw->n; i++) free(zw->r[i].name);
    free(zw->r);
    free(zw->archive);
    free(zw->path);
    free(zw);
}

int spo_ptzip_record_begin(spo_ptzip_writer *zw, const char *name, uint64_t size)
{
    if (zw->open) return spo_err(SPO_EINVAL, "%s: record %s begun inside another", zw->path, name);
    size_t len = zw->alen + strlen(name);
    if (len > 0xffff) return spo_err(SPO_EINVAL, "%s: record name too long", zw->path);
    rec *nr = spo_grow(zw->r, &zw->cap, (size_t)zw->n + 1, sizeof *nr, 16);
    if (!nr) return SPO_EIO;
    zw->r = nr;
    rec *r = &zw->r[zw->n];
    if (!(r->name = malloc(len + 1))) return spo_err(SPO_EIO, "out of memory");
    snprintf(r->name, len + 1, "%s/%s", zw->archive, name);
    r->size = size;
    r->ofs = zw->pos;
    zw->n++;
    zw->open = 1;
    zw->got = 0;
    zw->crc = ~0u;

    uint8_t z64[28], hdr[30], *p = hdr;
    size_t zlen = z64_extra(z64, r, 0);
    uint64_t start = r->ofs + sizeof hdr + len + 4 + zlen; /* data start without padding */
    size_t pad = (size_t)((ALIGN - start % ALIGN) % ALIGN);
    p = le(p, SIG_LOCAL, 4);
    p = le(p, 0, 2);                      /* version needed: stored */
    p = le(p, 0x800 | (size ? 8 : 0), 2); /* UTF-8 name; sizes in a descriptor */
    p = le(p, 0, 2 + 2 + 2 + 4 + 4 + 4);  /* method, time, date, CRC, sizes */
    p = le(p, len, 2);
    le(p, zlen + 4 + pad, 2);
    put(zw, hdr, sizeof hdr);
    put(zw, r->name, len);
    put(zw, z64, zlen);
    uint8_t fb[4 + ALIGN] = {'F', 'B', (uint8_t)pad, 0};
    memset(fb + 4, 'Z', pad);
    put(zw, fb, 4 + pad);
    return SPO_OK;
}

void spo_ptzip_record_data(spo_ptzip_writer *zw, const void *p, size_t n)
{
    if (zw->got < 8) memcpy(zw->head + zw->got, p, n < 8 - zw->got ? n : 8 - zw->got);
    if (n && fwrite(p, 1, n, zw->f) != n) return;
    zw->crc = crc_step(zw->crc, p, n);
    zw->got += n;
    zw->pos += n;
}

int spo_ptzip_record_end(spo_ptzip_writer *zw)
{
    if (!zw->open) return spo_err(SPO_EINVAL, "%s: no record to end", zw->path);
    rec *r = &zw->r[zw->n - 1];
    int rc = io_check(zw);
    if (rc) return rc;
    if (zw->got != r->size)
        return spo_err(SPO_EINVAL, "%s: record %s got %" PRIu64 " bytes, not %" PRIu64, zw->path, r->name, zw->got,
                       r->size);
    zw->open = 0;
    r->crc = ~zw->crc;
    if (r->size >= 8 && rd32(zw->head) == SIG_DESC) zw->crc_mix = mix(zw->crc_mix, rd32(zw->head + 4)); /* see put */
    if (r->size) {
        uint8_t d[24], *p = le(le(d, SIG_DESC, 4), r->crc, 4);
        int wide = r->size >= U32MAX || r->ofs >= U32MAX;
        p = le(le(p, r->size, wide ? 8 : 4), r->size, wide ? 8 : 4);
        put(zw, d, (size_t)(p - d));
    }
    return io_check(zw);
}

int spo_ptzip_record(spo_ptzip_writer *zw, const char *name, const void *p, size_t n)
{
    int rc = spo_ptzip_record_begin(zw, name, n);
    if (rc) return rc;
    spo_ptzip_record_data(zw, p, n);
    return spo_ptzip_record_end(zw);
}

static int write_id(spo_ptzip_writer *zw)
{
    uint64_t *h = malloc((size_t)zw->n * sizeof *h);
    int *order = malloc((size_t)zw->n * sizeof *order);
    if (!h || !order) return free(h), free(order), spo_err(SPO_EIO, "out of memory");
    for (int i = 0; i < zw->n; i++) h[i] = str_hash(zw->r[i].name + zw->alen, strlen(zw->r[i].name + zw->alen));
    int bad = set_order(h, zw->n, order);
    uint64_t names = 0;
    for (int i = 0; !bad && i < zw->n; i++) names = mix(names, h[order[i]]);
    free(h);
    free(order);
    if (bad) return spo_err(SPO_EIO, "%s: out of memory (too many records)", zw->path);
    char id[48];
    snprintf(id, sizeof id, "%020" PRIu64 "%020" PRIu64, names, zw->crc_mix);
    return spo_ptzip_record(zw, ".data/serialization_id", id, 40);
}

int spo_ptzip_writer_finish(spo_ptzip_writer *zw)
{
    int rc = spo_ptzip_record(zw, "version", "3\n", 2);
    if (!rc) rc = write_id(zw);
    if (rc) return rc;
    uint64_t cd_ofs = zw->pos;
    for (int i = 0; i < zw->n; i++) {
        const rec *r = &zw->r[i];
        uint8_t c[46], z64[28], *p = c;
        size_t len = strlen(r->name), zlen = z64_extra(z64, r, r->size);
        uint64_t sz = r->size < U32MAX ? r->size : U32MAX;
        p = le(p, SIG_CENTRAL, 4);
        p = le(p, 0, 2 + 2); /* made by, needed */
        p = le(p, 0x800 | (r->size ? 8 : 0), 2);
        p = le(p, 0, 2 + 2 + 2); /* method, time, date */
        p = le(p, r->crc, 4);
        p = le(le(p, sz, 4), sz, 4);
        p = le(p, len, 2);
        p = le(p, zlen, 2);
        p = le(p, 0, 2 + 2 + 2 + 4); /* comment, disk, internal and external attributes */
        le(p, r->ofs < U32MAX ? r->ofs : U32MAX, 4);
        put(zw, c, sizeof c);
        put(zw, r->name, len);
        put(zw, z64, zlen);
    }
    uint64_t cd_size = zw->pos - cd_ofs, z64_ofs = zw->pos, n = (uint64_t)zw->n;
    uint8_t e[56 + 20 + 22], *p = e;
    p = le(p, SIG_Z64_END, 4);
    p = le(p, 44, 8);
    p = le(p, 0x031e, 2);
    p = le(p, 45, 2);
    p = le(p, 0, 4 + 4);
    p = le(le(p, n, 8), n, 8);
    p = le(le(p, cd_size, 8), cd_ofs, 8);
    p = le(p, SIG_Z64_LOC, 4);
    p = le(p, 0, 4);
    p = le(le(p, z64_ofs, 8), 1, 4);
    p = le(p, SIG_END, 4);
    p = le(p, 0, 2 + 2);
    p = le(le(p, n < 0xffff ? n : 0xffff, 2), n < 0xffff ? n : 0xffff, 2);
    p = le(p, cd_size < U32MAX ? cd_size : U32MAX, 4);
    p = le(p, cd_ofs < U32MAX ? cd_ofs : U32MAX, 4);
    p = le(p, 0, 2);
    put(zw, e, (size_t)(p - e));
    if (fflush(zw->f) && !ferror(zw->f)) return spo_err(SPO_EIO, "%s: write failed: %s", zw->path, strerror(errno));
    return io_check(zw);
}

char *spo_ptzip_archive_name(const char *path)
{
    size_t n = strlen(path), start = 0, end = n;
    for (size_t i = 0; i < n; i++)
        if (path[i] == '/' || path[i] == '\\') start = i + 1;
    for (size_t i = n; i > start; i--)
        if (path[i - 1] == '.') {
            end = i - 1;
            break;
        }
    return end > start ? strndup(path + start, end - start) : strdup("archive");
}
