/* safetensors.c — the safetensors reader: map, check, convert (see
 * safetensors.h; the writer is st_writer.c). */
#include "ckpt/safetensors.h"
#include "core/infile.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/half.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

struct spo_st {
    char *label;                /* file name for messages */
    const unsigned char *base;  /* whole file: u64 N | header | data */
    size_t len;
    int mapped;                 /* munmap at close */
    cJSON *root;                /* the header; names and metadata point into it */
    const cJSON *meta;          /* __metadata__ or NULL */
    spo_st_tensor *t;           /* n tensors, sorted by name */
    int n;
};

static const struct { const char *name; size_t size; } dtypes[SPO_ST_NDTYPE] = {
    [SPO_ST_BOOL] = {"BOOL", 1}, [SPO_ST_U8] = {"U8", 1},    [SPO_ST_I8] = {"I8", 1},
    [SPO_ST_I16] = {"I16", 2},   [SPO_ST_U16] = {"U16", 2},  [SPO_ST_F16] = {"F16", 2},
    [SPO_ST_BF16] = {"BF16", 2}, [SPO_ST_I32] = {"I32", 4},  [SPO_ST_U32] = {"U32", 4},
    [SPO_ST_F32] = {"F32", 4},   [SPO_ST_F64] = {"F64", 8},  [SPO_ST_I64] = {"I64", 8},
    [SPO_ST_U64] = {"U64", 8},
};

const char *spo_st_dtype_name(spo_st_dtype dt)
{
    return (unsigned)dt < SPO_ST_NDTYPE ? dtypes[dt].name : NULL;
}

size_t spo_st_dtype_size(spo_st_dtype dt) { return (unsigned)dt < SPO_ST_NDTYPE ? dtypes[dt].size : 0; }

int spo_st_dtype_parse(const char *s)
{
    for (int i = 0; i < SPO_ST_NDTYPE; i++)
        if (!strcmp(s, dtypes[i].name)) return i;
    return -1;
}

/* "[32,4,3,3]" */
static void shape_str(char *b, size_t n, int nd, const int64_t *s)
{
    size_t k = (size_t)snprintf(b, n, "[");
    for (int i = 0; i < nd && k < n; i++) k += (size_t)snprintf(b + k, n - k, "%s%lld", i ? "," : "", (long long)s[i]);
    if (k < n) snprintf(b + k, n - k, "]");
}

/* SPO_EINVAL "file: tensor 'name': <fmt>" */
static int terr(const spo_st *st, const char *name, const char *fmt, ...) SPO_PRINTF(3, 4);
static int terr(const spo_st *st, const char *name, const char *fmt, ...)
{
    char m[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    return spo_err(SPO_EINVAL, "%s: tensor '%.200s': %s", st->label, name, m);
}

/* A JSON number that is an exact non-negative integer (<= 2^53). */
static int json_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != (double)(uint64_t)d) return 0;
    *out = (uint64_t)d;
    return 1;
}

/* Well-formed UTF-8 (no overlongs, surrogates or code points > U+10FFFF). */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        unsigned lo = 0x80, hi = 0xbf;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xc2 && c <= 0xdf) k = 1;
        else if (c >= 0xe0 && c <= 0xef) { k = 2; if (c == 0xe0) lo = 0xa0; if (c == 0xed) hi = 0x9f; }
        else if (c >= 0xf0 && c <= 0xf4) { k = 3; if (c == 0xf0) lo = 0x90; if (c == 0xf4) hi = 0x8f; }
        else return 0;
        if (n - i - 1 < k) return 0;
        if (s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t j = 2; j <= k; j++)
            if ((s[i + j] & 0xc0) != 0x80) return 0;
        i += k + 1;
    }
    return 1;
}

/* One header entry -> t, checked against the data size. */
static int parse_tensor(const spo_st *st, const cJSON *e, spo_st_tensor *t, size_t datalen)
{
    const char *name = e->string;
    char sh[256];
    memset(t, 0, sizeof *t);
    t->name = name;
    if (!cJSON_IsObject(e)) return terr(st, name, "entry is not an object");
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!dt) return terr(st, name, "missing dtype");
    if (!cJSON_IsString(dt)) return terr(st, name, "dtype is not a string");
    int d = spo_st_dtype_parse(dt->valuestring);
    if (d < 0) return terr(st, name, "unknown dtype '%.40s'", dt->valuestring);
    t->dtype = (spo_st_dtype)d;
    if (!shape) return terr(st, name, "missing shape");
    if (!cJSON_IsArray(shape)) return terr(st, name, "shape is not a list");
    int nd = cJSON_GetArraySize(shape);
    if (nd > SPO_ST_MAXDIM) return terr(st, name, "rank %d exceeds %d", nd, SPO_ST_MAXDIM);
    size_t numel = 1;
    int ovf = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, shape) {
        uint64_t u;
        if (!json_uint(v, &u)) return terr(st, name, "shape[%d] is not a non-negative integer", t->ndim);
        t->shape[t->ndim++] = (int64_t)u;
        if (u && numel > SIZE_MAX / u) ovf = 1;
        else numel *= (size_t)u;
    }
    shape_str(sh, sizeof sh, t->ndim, t->shape);
    size_t es = dtypes[d].size;
    if (ovf || numel > SIZE_MAX / es) return terr(st, name, "shape %s overflows", sh);
    t->numel = numel;
    t->nbytes = numel * es;
    if (!off) return terr(st, name, "missing data_offsets");
    uint64_t b, end;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || !json_uint(off->child, &b) ||
        !json_uint(off->child->next, &end))
        return terr(st, name, "data_offsets is not a list of two non-negative integers");
    unsigned long long B = b, E = end;
    if (b > end) return terr(st, name, "data_offsets [%llu,%llu] begin after end", B, E);
    if (end > datalen) return terr(st, name, "data_offsets [%llu,%llu] exceed the %zu bytes of data", B, E, datalen);
    if (end - b != t->nbytes)
        return terr(st, name, "data_offsets [%llu,%llu] but shape %s %s needs %zu bytes", B, E, sh, dtypes[d].name,
                    t->nbytes);
    t->offset = b;
    return SPO_OK;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const spo_st_tensor *)a)->name, ((const spo_st_tensor *)b)->name);
}

static int by_offset(const void *a, const void *b)
{
    const spo_st_tensor *x = *(const spo_st_tensor *const *)a, *y = *(const spo_st_tensor *const *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    size_t xe = x->offset + x->nbytes, ye = y->offset + y->nbytes;
    return xe < ye ? -1 : xe > ye;
}

/* The tensors must tile the data: sorted by offset, each starts where the
 * previous one ended and the last ends at the end of the data. */
static int check_tiling(const spo_st *st, size_t datalen)
{
    const spo_st_tensor **o = malloc((st->n ? st->n : 1) * sizeof *o);
    if (!o) return spo_err(SPO_EIO, "out of memory");
    for (int i = 0; i < st->n; i++) o[i] = &st->t[i];
    qsort(o, st->n, sizeof *o, by_offset);
    uint64_t pos = 0;
    int rc = SPO_OK;
    for (int i = 0; i < st->n && !rc; i++) {
        unsigned long long b = o[i]->offset, e = o[i]->offset + o[i]->nbytes;
        if (b < pos)
            rc = terr(st, o[i]->name, "data_offsets [%llu,%llu] overlap tensor '%.200s' [%llu,%llu]", b, e,
                      o[i - 1]->name, (unsigned long long)o[i - 1]->offset,
                      (unsigned long long)(o[i - 1]->offset + o[i - 1]->nbytes));
        else if (b > pos)
            rc = terr(st, o[i]->name, "data_offsets [%llu,%llu] leave bytes [%llu,%llu] unused", b, e,
                      (unsigned long long)pos, b);
        pos = e;
    }
    free(o);
    if (!rc && pos != datalen)
        rc = spo_err(SPO_EINVAL, "%s: %zu bytes of data after the last tensor", st->label, datalen - (size_t)pos);
    return rc;
}

static int parse(spo_st *st)
{
    if (st->len < 8)
        return spo_err(SPO_EINVAL, "%s: %zu bytes, too short for a safetensors header", st->label, st->len);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | st->base[i];
    unsigned long long H = hl;
    if (hl > SPO_ST_MAX_HEADER)
        return spo_err(SPO_EINVAL, "%s: header length %llu exceeds the limit of %d bytes", st->label, H,
                       SPO_ST_MAX_HEADER);
    if (hl > st->len - 8)
        return spo_err(SPO_EINVAL, "%s: header length %llu but only %zu bytes follow", st->label, H, st->len - 8);
    if (hl < 2) return spo_err(SPO_EINVAL, "%s: header length %llu is too small", st->label, H);
    const unsigned char *h = st->base + 8;
    if (h[0] != '{') return spo_err(SPO_EINVAL, "%s: header does not start with '{'", st->label);
    if (memchr(h, 0, hl)) return spo_err(SPO_EINVAL, "%s: header contains a NUL byte", st->label);
    if (!utf8_valid(h, hl)) return spo_err(SPO_EINVAL, "%s: header is not valid UTF-8", st->label);
    char *js = malloc(hl + 1);
    if (!js) return spo_err(SPO_EIO, "out of memory");
    memcpy(js, h, hl);
    js[hl] = 0;
    const char *end = NULL;
    st->root = cJSON_ParseWithOpts(js, &end, 1);
    size_t at = end ? (size_t)(end - js) : 0;
    free(js);
    if (!st->root) return spo_err(SPO_EINVAL, "%s: header is not valid JSON (near byte %zu)", st->label, at);
    if (!cJSON_IsObject(st->root)) return spo_err(SPO_EINVAL, "%s: header is not a JSON object", st->label);
    size_t datalen = st->len - 8 - hl;
    int n = cJSON_GetArraySize(st->root);
    st->t = malloc((n ? n : 1) * sizeof *st->t);
    if (!st->t) return spo_err(SPO_EIO, "out of memory");
    const cJSON *e;
    cJSON_ArrayForEach(e, st->root) {
        if (!strcmp(e->string, "__metadata__")) {
            if (st->meta) return spo_err(SPO_EINVAL, "%s: duplicate __metadata__", st->label);
            if (!cJSON_IsObject(e)) return spo_err(SPO_EINVAL, "%s: __metadata__ is not an object", st->label);
            const cJSON *m;
            cJSON_ArrayForEach(m, e) {
                if (!cJSON_IsString(m))
                    return spo_err(SPO_EINVAL, "%s: __metadata__ '%.200s' is not a string", st->label, m->string);
            }
            st->meta = e;
            continue;
        }
        int rc = parse_tensor(st, e, &st->t[st->n], datalen);
        if (rc) return rc;
        st->t[st->n].data = st->base + 8 + hl + st->t[st->n].offset;
        st->n++;
    }
    qsort(st->t, st->n, sizeof *st->t, by_name);
    for (int i = 1; i < st->n; i++)
        if (!strcmp(st->t[i].name, st->t[i - 1].name)) return terr(st, st->t[i].name, "duplicate name");
    return check_tiling(st, datalen);
}

static int st_new(spo_st **out, const void *buf, size_t len, const char *name, int mapped)
{
    *out = NULL;
    spo_st *st = calloc(1, sizeof *st);
    if (!st || !(st->label = strdup(name ? name : "(memory)"))) {
        free(st);
        if (mapped) munmap((void *)buf, len);
        return spo_err(SPO_EIO, "out of memory");
    }
    st->base = buf;
    st->len = len;
    st->mapped = mapped;
    int rc = parse(st);
    if (rc) {
        spo_st_close(st);
        return rc;
    }
    *out = st;
    return SPO_OK;
}

int spo_st_open_mem(spo_st **st, const void *buf, size_t len, const char *name)
{
    return st_new(st, len ? buf : NULL, len, name, 0);
}

int spo_st_open(spo_st **st, const char *path)
{
    *st = NULL;
    int fd, orc = spo_open_in(&fd, path);
    if (orc) return orc;
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        int e = errno;
        close(fd);
        return spo_err(SPO_EIO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return spo_err(SPO_EINVAL, "%s: not a regular file", path);
    }
    size_t len = (size_t)sb.st_size;
    void *p = NULL;
    if (len) {
        p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return spo_err(SPO_EIO, "%s: mmap: %s", path, strerror(e));
        }
    }
    close(fd);
    return st_new(st, p, len, path, len > 0);
}

void spo_st_close(spo_st *st)
{
    if (!st) return;
    cJSON_Delete(st->root);
    free(st->t);
    if (st->mapped) munmap((void *)st->base, st->len);
    free(st->label);
    free(st);
}

const char *spo_st_name(const spo_st *st) { return st->label; }
int spo_st_count(const spo_st *st) { return st->n; }

const spo_st_tensor *spo_st_get(const spo_st *st, int i) { return i >= 0 && i < st->n ? &st->t[i] : NULL; }

const spo_st_tensor *spo_st_find(const spo_st *st, const char *name)
{
    spo_st_tensor key = {.name = name};
    return st->n ? bsearch(&key, st->t, st->n, sizeof key, by_name) : NULL;
}

int spo_st_read_f32(const spo_st *st, const spo_st_tensor *t, float *dst)
{
    if (t < st->t || t >= st->t + st->n) return spo_err(SPO_EINVAL, "%s: tensor not from this file", st->label);
    const unsigned char *p = t->data;
    uint16_t tmp[2048];
    switch (t->dtype) {
    case SPO_ST_F32:
        if (t->nbytes) memcpy(dst, p, t->nbytes);
        return SPO_OK;
    case SPO_ST_F16:
    case SPO_ST_BF16:
        for (size_t i = 0; i < t->numel; i += 2048) {
            size_t k = t->numel - i < 2048 ? t->numel - i : 2048;
            memcpy(tmp, p + 2 * i, 2 * k);
            if (t->dtype == SPO_ST_F16) spo_f16_to_f32(dst + i, tmp, k);
            else spo_bf16_to_f32(dst + i, tmp, k);
        }
        return SPO_OK;
    case SPO_ST_F64:
        for (size_t i = 0; i < t->numel; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            dst[i] = (float)d;
        }
        return SPO_OK;
    default:
        return terr(st, t->name, "dtype %s is not a float type", dtypes[t->dtype].name);
    }
}

const char *spo_st_meta(const spo_st *st, const char *key)
{
    const cJSON *v = st->meta ? cJSON_GetObjectItemCaseSensitive(st->meta, key) : NULL;
    return v ? v->valuestring : NULL;
}

int spo_st_meta_count(const spo_st *st) { return st->meta ? cJSON_GetArraySize(st->meta) : 0; }

const char *spo_st_meta_key(const spo_st *st, int i)
{
    const cJSON *v = st->meta && i >= 0 ? cJSON_GetArrayItem(st->meta, i) : NULL;
    return v ? v->string : NULL;
}
