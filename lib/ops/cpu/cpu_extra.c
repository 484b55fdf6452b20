/* cpu_extra.c — the ops of lib/ops/ops_extra.h. spo_embed_fwd is written with
 * spo_dev_* calls only, so it serves every device; the adaLN ops are host
 * loops for the CPU device (a CUDA kernel is still to be written). */
#include "ops/ops_extra.h"

int spo_embed_fwd(spo_dev *d, float *y, const float *table, const int32_t *ids, int n, int dim, int vocab)
{
    if (n < 0 || dim <= 0) return spo_err(SPO_EINVAL, "embed: bad shape n=%d dim=%d", n, dim);
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= vocab)
            return spo_err(SPO_EINVAL, "embed: token id %d at position %d is outside the vocabulary [0,%d)",
                           (int)ids[i], i, vocab);
        int rc = spo_dev_copy(d, y + (size_t)i * dim, table + (size_t)ids[i] * dim, (size_t)dim);
        if (rc) return rc;
    }
    return SPO_OK;
}

/* ---- adaLN modulation: host loops, CPU device only -------------------- */

static int mod_args(spo_dev *d, const char *fn, const void *x, const void *y, const void *v, int ld, int b, int t,
                    int c)
{
    if (!d || spo_dev_kind(d) != SPO_DEV_CPU) return spo_err(SPO_EINVAL, "%s: implemented on the CPU device only", fn);
    if (!x || !y || !v) return spo_err(SPO_EINVAL, "%s: NULL pointer", fn);
    if (b < 1 || t < 1 || c < 1 || ld < c)
        return spo_err(SPO_EINVAL, "%s: bad shape b=%d t=%d c=%d ld=%d", fn, b, t, c, ld);
    return SPO_OK;
}

int spo_modulate_fwd(spo_dev *d, float *y, const float *x, const float *shift, const float *scale, int ld, int b,
                     int t, int c)
{
    int rc = mod_args(d, "modulate", x, y, shift, ld, b, t, c);
    if (rc || (rc = mod_args(d, "modulate", x, y, scale, ld, b, t, c))) return rc;
    for (int i = 0; i < b; i++) {
        const float *sh = shift + (size_t)i * ld, *sc = scale + (size_t)i * ld;
        for (int j = 0; j < t; j++) {
            size_t r = ((size_t)i * t + j) * c;
            for (int k = 0; k < c; k++) y[r + k] = x[r + k] * (1.0f + sc[k]) + sh[k];
        }
    }
    return SPO_OK;
}

int spo_gate_add_fwd(spo_dev *d, float *x, const float *y, const float *gate, int ld, int b, int t, int c)
{
    int rc = mod_args(d, "gate_add", x, y, gate, ld, b, t, c);
    if (rc) return rc;
    for (int i = 0; i < b; i++) {
        const float *g = gate + (size_t)i * ld;
        for (int j = 0; j < t; j++) {
            size_t r = ((size_t)i * t + j) * c;
            for (int k = 0; k < c; k++) x[r + k] += g[k] * y[r + k];
        }
    }
    return SPO_OK;
}
