/* ptzip.c — load the members of a torch.save zip into memory (see ptzip.h). */
#include "ckpt/ptzip.h"
#include "core/grow.h"
#include "core/infile.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { M_PKL, M_STORAGE, M_VERSION, M_BYTEORDER };

typedef struct {
    char *prefix, *key; /* key: storage key, or NULL */
    int kind;
    uint8_t *data;
    size_t size;
} member;

typedef struct {
    member *m;
    int n;
    size_t cap;
} members;

static void members_free(members *ms)
{
    for (int i = 0; i < ms->n; i++) free(ms->m[i].prefix), free(ms->m[i].key), free(ms->m[i].data);
    free(ms->m);
}

/* map a libarchive failure to an spo code: damage is EINVAL, I/O and memory EIO */
static int ar_err(struct archive *a, const char *path, const char *what)
{
    int e = archive_errno(a);
    const char *s = archive_error_string(a);
    return spo_err(e == EIO || e == ENOMEM ? SPO_EIO : SPO_EINVAL, "%s: %s: %s", path, what, s ? s : "unknown error");
}

/* classify "<prefix>/<rest>"; returns the kind or -1 to skip */
static int classify(const char *name, size_t *plen, const char **key)
{
    const char *slash = strchr(name, '/');
    if (!slash || slash == name) return -1;
    const char *rest = slash + 1;
    *plen = (size_t)(slash - name);
    *key = NULL;
    if (!strcmp(rest, "data.pkl")) return M_PKL;
    if (!strcmp(rest, "version")) return M_VERSION;
    if (!strcmp(rest, "byteorder")) return M_BYTEORDER;
    if (!strncmp(rest, "data/", 5) && rest[5] && !strchr(rest + 5, '/')) {
        *key = rest + 5;
        return M_STORAGE;
    }
    return -1;
}

/* Read the current entry's data: declared < 0 when unknown; at most cap bytes. */
static int read_member(struct archive *a, const char *path, const char *name, int64_t declared, size_t cap,
                       uint8_t **out, size_t *len)
{
    size_t n = declared >= 0 ? (size_t)declared : 0, alloc = declared >= 0 ? n : 4096, got = 0;
    if (alloc > cap) alloc = cap;
    uint8_t *buf = malloc(alloc ? alloc : 1);
    if (!buf) return spo_err(SPO_EIO, "%s: out of memory reading member %s", path, name);
    for (;;) {
        if (got == alloc) {
            if (declared >= 0) break;
            if (alloc == cap) {
                free(buf);
                return spo_err(SPO_EINVAL, "%s: member %s is larger than %zu bytes", path, name, cap);
            }
            size_t na = alloc > cap / 2 ? cap : 2 * alloc;
            uint8_t *nb = realloc(buf, na);
            if (!nb) return free(buf), spo_err(SPO_EIO, "%s: out of memory reading member %s", path, name);
            buf = nb;
            alloc = na;
        }
        la_ssize_t r = archive_read_data(a, buf + got, alloc - got);
        if (r < 0) return free(buf), ar_err(a, path, name);
        if (r == 0) break;
        got += (size_t)r;
    }
    if (declared >= 0) {
        /* the entry must end here; reading its end also checks the CRC */
        uint8_t extra[16];
        la_ssize_t r = got == n ? archive_read_data(a, extra, sizeof extra) : 0;
        if (r < 0) return free(buf), ar_err(a, path, name);
        if (got != n || r > 0) {
            free(buf);
            return spo_err(SPO_EINVAL, "%s: member %s does not hold the %lld bytes its header declares", path, name,
                           (long long)declared);
        }
    }
    *out = buf;
    *len = got;
    return SPO_OK;
}

/* first bytes: a zip starts with "PK"; a legacy torch.save file with a pickle */
static int sniff(const char *path)
{
    FILE *fp;
    int orc = spo_fopen_in(&fp, path);
    if (orc) return orc;
    unsigned char b[2] = {0, 0};
    size_t n = fread(b, 1, 2, fp);
    fclose(fp);
    if (n == 2 && b[0] == 'P' && b[1] == 'K') return SPO_OK;
    if (n == 2 && b[0] == 0x80 && b[1] <= 5)
        return spo_err(SPO_EINVAL, "%s: legacy torch.save format (before PyTorch 1.6) is not supported; "
                                   "re-save it with torch.save from a current PyTorch", path);
    return spo_err(SPO_EINVAL, "%s: not a PyTorch checkpoint (not a zip archive)", path);
}

static int add_member(members *ms, const char *name, size_t plen, const char *key, int kind, uint8_t *data,
                      size_t size)
{
    member *nm = spo_grow(ms->m, &ms->cap, (size_t)ms->n + 1, sizeof *nm, 16);
    if (!nm) return -1;
    ms->m = nm;
    member *m = &ms->m[ms->n];
    memset(m, 0, sizeof *m);
    m->data = data;
    m->size = size;
    m->kind = kind;
    m->prefix = strndup(name, plen);
    m->key = key ? strdup(key) : NULL;
    ms->n++;
    return !m->prefix || (key && !m->key) ? -1 : 0;
}

static int read_all(struct archive *a, const char *path, size_t limit, members *ms)
{
    struct archive_entry *e;
    size_t total = 0;
    for (;;) {
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF) return SPO_OK;
        if (r != ARCHIVE_OK) return ar_err(a, path, "damaged zip archive");
        const char *name = archive_entry_pathname(e), *key;
        size_t plen;
        int kind = name && archive_entry_filetype(e) == AE_IFREG ? classify(name, &plen, &key) : -1;
        if (kind < 0) continue; /* the next header skips the data */
        size_t cap = limit - total;
        if (kind == M_PKL && cap > SPO_PTZIP_MAX_PKL) cap = SPO_PTZIP_MAX_PKL;
        if (kind == M_VERSION || kind == M_BYTEORDER) cap = cap < 64 ? cap : 64;
        int64_t declared = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
        if (declared > (int64_t)cap || (declared < 0 && archive_entry_size_is_set(e)))
            return spo_err(SPO_EINVAL, "%s: member %s declares %lld bytes, more than this archive can hold (%zu)", path,
                           name, (long long)declared, cap);
        uint8_t *data = NULL;
        size_t size = 0;
        int rc = read_member(a, path, name, declared, cap, &data, &size);
        if (rc) return rc;
        total += size;
        if (add_member(ms, name, plen, key, kind, data, size))
            return spo_err(SPO_EIO, "%s: out of memory", path);
    }
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(((const spo_ptzip_storage *)a)->key, ((const spo_ptzip_storage *)b)->key);
}

/* keep the members of the archive that holds data.pkl */
static int assemble(spo_ptzip *z, const char *path, members *ms)
{
    int ipkl = -1;
    for (int i = 0; i < ms->n; i++)
        if (ms->m[i].kind == M_PKL) {
            if (ipkl >= 0) return spo_err(SPO_EINVAL, "%s: more than one data.pkl in the archive", path);
            ipkl = i;
        }
    if (ipkl < 0) return spo_err(SPO_EINVAL, "%s: not a PyTorch checkpoint (no <archive>/data.pkl in the zip)", path);
    member *p = &ms->m[ipkl];
    z->archive = p->prefix, p->prefix = NULL;
    z->pkl = p->data, p->data = NULL;
    z->pkl_len = p->size;
    int nst = 0;
    for (int i = 0; i < ms->n; i++) nst += ms->m[i].kind == M_STORAGE && !strcmp(ms->m[i].prefix, z->archive);
    z->st = calloc((size_t)nst + 1, sizeof *z->st);
    if (!z->st) return spo_err(SPO_EIO, "%s: out of memory", path);
    for (int i = 0; i < ms->n; i++) {
        member *m = &ms->m[i];
        if (i == ipkl || strcmp(m->prefix, z->archive)) continue;
        if (m->kind == M_STORAGE) {
            spo_ptzip_storage *s = &z->st[z->nst++];
            s->key = m->key, m->key = NULL;
            s->data = m->data, m->data = NULL;
            s->size = m->size;
        } else if (m->kind == M_BYTEORDER) {
            if (!(m->size >= 6 && !memcmp(m->data, "little", 6) && (m->size == 6 || m->data[6] == '\n')))
                return spo_err(SPO_EINVAL, "%s: byteorder is not 'little'; big-endian checkpoints are not supported",
                               path);
        } else if (m->kind == M_VERSION) {
            int v = 0;
            size_t j = 0;
            while (j < m->size && m->data[j] >= '0' && m->data[j] <= '9' && v < 1000) v = v * 10 + (m->data[j++] - '0');
            if (!j || (j < m->size && m->data[j] != '\n'))
                return spo_err(SPO_EINVAL, "%s: bad %s/version member", path, z->archive);
            z->version = v;
        }
    }
    qsort(z->st, (size_t)z->nst, sizeof *z->st, cmp_key);
    for (int i = 1; i < z->nst; i++)
        if (!strcmp(z->st[i - 1].key, z->st[i].key))
            return spo_err(SPO_EINVAL, "%s: storage %s appears twice in the archive", path, z->st[i].key);
    return SPO_OK;
}

int spo_ptzip_open(spo_ptzip *z, const char *path)
{
    memset(z, 0, sizeof *z);
    struct stat sb;
    if (stat(path, &sb))
        return spo_err(errno == ENOENT || errno == ENOTDIR ? SPO_EINVAL : SPO_EIO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) return spo_err(SPO_EINVAL, "%s: not a regular file", path);
    int rc = sniff(path);
    if (rc) return rc;
    size_t fsize = (size_t)sb.st_size;
    size_t limit = fsize > (SIZE_MAX >> 8) ? SIZE_MAX / 2 : fsize * SPO_PTZIP_RATIO + ((size_t)1 << 20);
    struct archive *a = archive_read_new();
    if (!a) return spo_err(SPO_EIO, "%s: out of memory", path);
    archive_read_support_format_zip_seekable(a);
    members ms = {0};
    if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
        rc = ar_err(a, path, "not a readable zip archive (truncated?)");
        goto done;
    }
    if (!(rc = read_all(a, path, limit, &ms))) rc = assemble(z, path, &ms);
done:
    archive_read_free(a);
    members_free(&ms);
    return rc;
}

const spo_ptzip_storage *spo_ptzip_find(const spo_ptzip *z, const char *key)
{
    spo_ptzip_storage k = {.key = (char *)key};
    return z->nst ? bsearch(&k, z->st, (size_t)z->nst, sizeof k, cmp_key) : NULL;
}

void spo_ptzip_close(spo_ptzip *z)
{
    if (!z) return;
    for (int i = 0; i < z->nst; i++) free(z->st[i].key), free(z->st[i].data);
    free(z->st);
    free(z->archive);
    free(z->pkl);
    memset(z, 0, sizeof *z);
}
