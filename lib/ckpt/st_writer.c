/* st_writer.c — the safetensors writer (see safetensors.h).
 *
 * File order matches the Python library: tensors sorted by dtype (in the
 * reference enum order, descending: 8-byte types first, 1-byte last) and
 * then by name, packed with no gaps, so every tensor is aligned to its
 * element size; the header is padded with spaces so the data starts at a
 * multiple of 8. Output goes through the atomic writer (core/atomic.h). */
#include "ckpt/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/atomic.h"
#include "core/grow.h"
#include "core/half.h"

typedef struct {
    char *name;
    spo_st_dtype dtype;
    int ndim;
    int64_t shape[SPO_ST_MAXDIM];
    size_t nbytes, numel;
    const float *f32; /* fp32 data converted on write, or */
    const void *raw;  /* bytes written as they are */
    uint64_t offset;
} wtensor;

struct spo_st_writer {
    wtensor *t;
    int n;
    size_t cap;
    char **key, **val;
    int nm, mcap;
};

int spo_st_writer_new(spo_st_writer **w)
{
    *w = calloc(1, sizeof **w);
    return *w ? SPO_OK : spo_err(SPO_EIO, "out of memory");
}

void spo_st_writer_free(spo_st_writer *w)
{
    if (!w) return;
    for (int i = 0; i < w->n; i++) free(w->t[i].name);
    for (int i = 0; i < w->nm; i++) free(w->key[i]), free(w->val[i]);
    free(w->t);
    free(w->key);
    free(w->val);
    free(w);
}

int spo_st_writer_meta(spo_st_writer *w, const char *key, const char *value)
{
    char *v = strdup(value);
    if (!v) return spo_err(SPO_EIO, "out of memory");
    for (int i = 0; i < w->nm; i++)
        if (!strcmp(w->key[i], key)) {
            free(w->val[i]);
            w->val[i] = v;
            return SPO_OK;
        }
    if (w->nm == w->mcap) {
        int cap = w->mcap ? 2 * w->mcap : 8;
        char **k = realloc(w->key, cap * sizeof *k);
        if (k) w->key = k;
        char **vv = k ? realloc(w->val, cap * sizeof *vv) : NULL;
        if (!vv) { free(v); return spo_err(SPO_EIO, "out of memory"); }
        w->val = vv;
        w->mcap = cap;
    }
    if (!(w->key[w->nm] = strdup(key))) { free(v); return spo_err(SPO_EIO, "out of memory"); }
    w->val[w->nm++] = v;
    return SPO_OK;
}

static int add(spo_st_writer *w, const char *name, spo_st_dtype dt, int ndim, const int64_t *shape, const float *f32,
               const void *raw, int is_raw)
{
    if (!name || !strcmp(name, "__metadata__")) return spo_err(SPO_EINVAL, "safetensors: invalid tensor name");
    size_t es = spo_st_dtype_size(dt);
    if (!es) return spo_err(SPO_EINVAL, "tensor '%s': invalid dtype %d", name, (int)dt);
    if (!is_raw && dt != SPO_ST_F32 && dt != SPO_ST_F16 && dt != SPO_ST_BF16)
        return spo_err(SPO_EINVAL, "tensor '%s': cannot store fp32 data as %s", name, spo_st_dtype_name(dt));
    if (ndim < 0 || ndim > SPO_ST_MAXDIM) return spo_err(SPO_EINVAL, "tensor '%s': rank %d", name, ndim);
    wtensor t = {.dtype = dt, .ndim = ndim, .f32 = f32, .raw = raw, .numel = 1};
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return spo_err(SPO_EINVAL, "tensor '%s': negative dim %lld", name, (long long)shape[i]);
        if (shape[i] && t.numel > SIZE_MAX / 16 / (uint64_t)shape[i])
            return spo_err(SPO_EINVAL, "tensor '%s': shape overflows", name);
        t.numel *= (size_t)shape[i];
        t.shape[i] = shape[i];
    }
    t.nbytes = t.numel * es;
    if (t.numel && !f32 && !raw) return spo_err(SPO_EINVAL, "tensor '%s': no data", name);
    if (is_raw && !raw) t.raw = ""; /* empty tensor: nothing to write, but not fp32 */
    wtensor *p = spo_grow(w->t, &w->cap, (size_t)w->n + 1, sizeof *p, 64);
    if (!p) return SPO_EIO;
    w->t = p;
    if (!(t.name = strdup(name))) return spo_err(SPO_EIO, "out of memory");
    w->t[w->n++] = t;
    return SPO_OK;
}

int spo_st_writer_add(spo_st_writer *w, const char *name, spo_st_dtype dtype, int ndim, const int64_t *shape,
                      const float *data)
{
    return add(w, name, dtype, ndim, shape, data, NULL, 0);
}

int spo_st_writer_add_raw(spo_st_writer *w, const char *name, spo_st_dtype dtype, int ndim, const int64_t *shape,
                          const void *bytes)
{
    return add(w, name, dtype, ndim, shape, NULL, bytes, 1);
}

/* ---- header text ------------------------------------------------------ */
typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->oom = 1; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_fmt(sbuf *b, const char *fmt, ...) SPO_PRINTF(2, 3);
static void sb_fmt(sbuf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sb_put(b, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}

/* A JSON string literal: quotes, backslashes and control bytes escaped. */
static void sb_json(sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { sb_put(b, "\\", 1); sb_put(b, s, 1); }
        else if (c < 0x20) sb_fmt(b, "\\u%04x", c);
        else sb_put(b, s, 1);
    }
    sb_put(b, "\"", 1);
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(const wtensor *const *)a)->name, (*(const wtensor *const *)b)->name);
}

static int by_dtype_name(const void *a, const void *b)
{
    const wtensor *x = *(const wtensor *const *)a, *y = *(const wtensor *const *)b;
    if (x->dtype != y->dtype) return x->dtype > y->dtype ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int build_header(spo_st_writer *w, wtensor **o, sbuf *h)
{
    for (int i = 0; i < w->n; i++) o[i] = &w->t[i];
    qsort(o, w->n, sizeof *o, by_name);
    for (int i = 1; i < w->n; i++)
        if (!strcmp(o[i]->name, o[i - 1]->name)) return spo_err(SPO_EINVAL, "duplicate tensor '%s'", o[i]->name);
    qsort(o, w->n, sizeof *o, by_dtype_name);
    sb_put(h, "{", 1);
    if (w->nm) {
        sb_put(h, "\"__metadata__\":{", 16);
        for (int i = 0; i < w->nm; i++) {
            if (i) sb_put(h, ",", 1);
            sb_json(h, w->key[i]);
            sb_put(h, ":", 1);
            sb_json(h, w->val[i]);
        }
        sb_put(h, "}", 1);
    }
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        wtensor *t = o[i];
        if (i || w->nm) sb_put(h, ",", 1);
        sb_json(h, t->name);
        sb_fmt(h, ":{\"dtype\":\"%s\",\"shape\":[", spo_st_dtype_name(t->dtype));
        for (int k = 0; k < t->ndim; k++) sb_fmt(h, "%s%lld", k ? "," : "", (long long)t->shape[k]);
        t->offset = off;
        off += t->nbytes;
        sb_fmt(h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)t->offset, (unsigned long long)off);
    }
    sb_put(h, "}", 1);
    while (!h->oom && h->n % 8) sb_put(h, " ", 1);
    return h->oom ? spo_err(SPO_EIO, "out of memory") : SPO_OK;
}

static int write_tensor(FILE *f, const wtensor *t)
{
    if (!t->nbytes) return 1;
    if (t->raw || t->dtype == SPO_ST_F32) {
        const void *p = t->raw ? t->raw : (const void *)t->f32;
        return fwrite(p, 1, t->nbytes, f) == t->nbytes;
    }
    uint16_t buf[16384];
    for (size_t i = 0; i < t->numel; i += 16384) {
        size_t k = t->numel - i < 16384 ? t->numel - i : 16384;
        if (t->dtype == SPO_ST_F16) spo_f32_to_f16(buf, t->f32 + i, k);
        else spo_f32_to_bf16(buf, t->f32 + i, k);
        if (fwrite(buf, 2, k, f) != k) return 0;
    }
    return 1;
}

int spo_st_writer_write(spo_st_writer *w, const char *path)
{
    wtensor **o = malloc((w->n ? w->n : 1) * sizeof *o);
    sbuf h = {0};
    spo_atomic out = {0};
    int rc = SPO_OK;
    if (!o) { rc = spo_err(SPO_EIO, "out of memory"); goto done; }
    if ((rc = build_header(w, o, &h))) {
        spo_err_prefix(rc, "%s", path);
        goto done;
    }
    if ((rc = spo_atomic_open(&out, path, SPO_ATOMIC_FILE, 1))) goto done;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.n >> (8 * i));
    int ok = fwrite(len8, 1, 8, out.fp) == 8 && fwrite(h.p, 1, h.n, out.fp) == h.n;
    for (int i = 0; i < w->n && ok; i++) ok = write_tensor(out.fp, o[i]);
    if (!ok) {
        rc = spo_err(SPO_EIO, "%s: write failed: %s", path, strerror(errno));
        spo_atomic_abort(&out);
    } else
        rc = spo_atomic_commit(&out);
done:
    free(o);
    free(h.p);
    return rc;
}
