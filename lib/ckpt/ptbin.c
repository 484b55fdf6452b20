/* ptbin.c — PyTorch state-dict checkpoints: zip + restricted pickle + storage
 * checks (see ptbin.h). */
#include "ckpt/ptbin.h"

#include <stdlib.h>
#include <string.h>

#include "core/half.h"
#include "ckpt/ptzip.h"

struct spo_ptbin {
    char *path;
    spo_ptzip z;
    spo_pkl_dict d;
    spo_ptbin_tensor *t;
    int n;
};

static int is_contiguous(const spo_pkl_tensor *p)
{
    int64_t want = 1;
    for (int i = p->ndim - 1; i >= 0; i--) {
        if (p->shape[i] != 1 && p->stride[i] != want) return p->numel == 0;
        want *= p->shape[i];
    }
    return 1;
}

/* check every tensor against its storage member; fill b->t */
static int resolve(spo_ptbin *b)
{
    const char *f = b->path;
    /* per storage: the dtype and numel the first tensor claimed */
    int *seen_dt = malloc(((size_t)b->z.nst + 1) * sizeof *seen_dt);
    int64_t *seen_n = malloc(((size_t)b->z.nst + 1) * sizeof *seen_n);
    b->t = calloc((size_t)b->d.n + 1, sizeof *b->t);
    if (!seen_dt || !seen_n || !b->t) return free(seen_dt), free(seen_n), spo_err(SPO_EIO, "%s: out of memory", f);
    for (int i = 0; i < b->z.nst; i++) seen_dt[i] = -1;
    int rc = SPO_OK;
    for (int i = 0; i < b->d.n && !rc; i++) {
        const spo_pkl_tensor *p = &b->d.t[i];
        const spo_ptzip_storage *s = spo_ptzip_find(&b->z, p->key);
        size_t es = spo_pt_dtype_size(p->dtype);
        if (!s) {
            rc = spo_err(SPO_EINVAL, "%s: storage %s of tensor '%s' is missing from the archive (%s/data/%s)", f,
                         p->key, p->name, b->z.archive, p->key);
            break;
        }
        int k = (int)(s - b->z.st);
        if (seen_dt[k] < 0) {
            if ((uint64_t)p->storage_numel > SIZE_MAX / es || (size_t)p->storage_numel * es != s->size) {
                rc = spo_err(SPO_EINVAL, "%s: storage %s of tensor '%s' has %zu bytes, expected %lld %s elements", f,
                             p->key, p->name, s->size, (long long)p->storage_numel, spo_pt_dtype_name(p->dtype));
                break;
            }
            seen_dt[k] = (int)p->dtype;
            seen_n[k] = p->storage_numel;
        } else if (seen_dt[k] != (int)p->dtype || seen_n[k] != p->storage_numel) {
            rc = spo_err(SPO_EINVAL, "%s: storage %s is described two ways (tensor '%s' says %lld %s elements)", f,
                         p->key, p->name, (long long)p->storage_numel, spo_pt_dtype_name(p->dtype));
            break;
        }
        spo_ptbin_tensor *t = &b->t[b->n++];
        t->name = p->name;
        t->dtype = p->dtype;
        t->ndim = p->ndim;
        memcpy(t->shape, p->shape, sizeof t->shape);
        memcpy(t->stride, p->stride, sizeof t->stride);
        t->numel = p->numel;
        t->offset = p->offset;
        t->contiguous = is_contiguous(p);
        t->storage = s->data;
        t->storage_bytes = s->size;
    }
    free(seen_dt);
    free(seen_n);
    return rc;
}

int spo_ptbin_open(spo_ptbin **out, const char *path)
{
    *out = NULL;
    spo_ptbin *b = calloc(1, sizeof *b);
    if (!b || !(b->path = strdup(path))) return free(b), spo_err(SPO_EIO, "out of memory");
    int rc = spo_ptzip_open(&b->z, path);
    if (!rc) rc = spo_unpickle_state_dict(b->z.pkl, b->z.pkl_len, path, &b->d);
    if (!rc) rc = resolve(b);
    if (rc) {
        spo_ptbin_close(b);
        return rc;
    }
    /* the pickle is no longer needed */
    free(b->z.pkl);
    b->z.pkl = NULL;
    b->z.pkl_len = 0;
    *out = b;
    return SPO_OK;
}

void spo_ptbin_close(spo_ptbin *b)
{
    if (!b) return;
    spo_ptzip_close(&b->z);
    spo_pkl_dict_free(&b->d);
    free(b->t);
    free(b->path);
    free(b);
}

int spo_ptbin_count(const spo_ptbin *b) { return b->n; }
const char *spo_ptbin_path(const spo_ptbin *b) { return b->path; }

const spo_ptbin_tensor *spo_ptbin_get(const spo_ptbin *b, int i) { return i >= 0 && i < b->n ? &b->t[i] : NULL; }

const spo_ptbin_tensor *spo_ptbin_find(const spo_ptbin *b, const char *name)
{
    for (int i = 0; i < b->n; i++)
        if (!strcmp(b->t[i].name, name)) return &b->t[i];
    return NULL;
}

/* ---- copying out ---------------------------------------------------------- */
static float to_f32(spo_pt_dtype dt, const uint8_t *p)
{
    switch (dt) {
    case SPO_PT_F32: { float v; memcpy(&v, p, 4); return v; }
    case SPO_PT_F16: { uint16_t v; memcpy(&v, p, 2); return spo_half_to_float(v); }
    case SPO_PT_BF16: { uint16_t v; memcpy(&v, p, 2); return spo_bf16_to_float(v); }
    case SPO_PT_F64: { double v; memcpy(&v, p, 8); return (float)v; }
    case SPO_PT_I64: { int64_t v; memcpy(&v, p, 8); return (float)v; }
    case SPO_PT_I32: { int32_t v; memcpy(&v, p, 4); return (float)v; }
    case SPO_PT_I16: { int16_t v; memcpy(&v, p, 2); return (float)v; }
    case SPO_PT_I8: return (float)(int8_t)p[0];
    case SPO_PT_U8: return (float)p[0];
    case SPO_PT_BOOL: return p[0] ? 1.0f : 0.0f;
    default: return 0;
    }
}

/* dense row-major copy: walk the multi-index, moving the storage index by the strides */
static int copy_out(const spo_ptbin *b, const spo_ptbin_tensor *t, void *dst, int as_f32)
{
    size_t es = spo_pt_dtype_size(t->dtype), n = (size_t)t->numel;
    if (!es) return spo_err(SPO_EINVAL, "%s: bad tensor", b->path);
    if (!n) return SPO_OK;
    const uint8_t *base = t->storage + (size_t)t->offset * es;
    if (t->contiguous && (!as_f32 || t->dtype == SPO_PT_F32)) {
        memcpy(dst, base, n * es);
        return SPO_OK;
    }
    float *df = dst;
    uint8_t *dr = dst;
    if (t->contiguous) {
        for (size_t i = 0; i < n; i++) df[i] = to_f32(t->dtype, base + i * es);
        return SPO_OK;
    }
    int64_t idx[SPO_PT_MAXDIM] = {0}, src = 0; /* src: element index relative to offset */
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = base + (size_t)src * es;
        if (as_f32) df[i] = to_f32(t->dtype, p);
        else memcpy(dr + i * es, p, es);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) {
                src += t->stride[d];
                break;
            }
            src -= (idx[d] - 1) * t->stride[d];
            idx[d] = 0;
        }
    }
    return SPO_OK;
}

int spo_ptbin_read_f32(const spo_ptbin *b, const spo_ptbin_tensor *t, float *dst) { return copy_out(b, t, dst, 1); }
int spo_ptbin_read_raw(const spo_ptbin *b, const spo_ptbin_tensor *t, void *dst) { return copy_out(b, t, dst, 0); }
