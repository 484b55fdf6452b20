/* lora_opt.c — AdamW moments of a LoRA file (see lora_opt.h). */
#include "nn/lora_opt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "nn/lora_train.h"

static const char *const parts[4] = {"down_m", "up_m", "down_v", "up_v"};

/* each (module, part): its path, shape and place in m or v */
typedef int (*visit_fn)(void *ctx, const char *path, const int64_t *shape, float *data, size_t n);

static int each(const spo_lora *l, float *m, float *v, visit_fn fn, void *ctx)
{
    size_t off = 0;
    for (int i = 0; i < l->n; i++) {
        const spo_lora_module *mo = &l->m[i];
        size_t na = (size_t)l->rank * mo->in, nb = (size_t)l->rank * mo->out;
        for (int k = 0; k < 4; k++) {
            char p[600];
            int up = k & 1;
            int64_t shape[2] = {up ? mo->out : l->rank, up ? l->rank : mo->in};
            float *base = k < 2 ? m : v;
            snprintf(p, sizeof p, "/adam/%s/%s", mo->name, parts[k]);
            int rc = fn(ctx, p, shape, base + off + (up ? na : 0), up ? nb : na);
            if (rc) return rc;
        }
        off += na + nb;
    }
    return SPO_OK;
}

static int put(void *ctx, const char *path, const int64_t *shape, float *data, size_t n)
{
    (void)n;
    return spo_h5_write(ctx, path, SPO_T_F32, 2, shape, data);
}

static int get(void *ctx, const char *path, const int64_t *shape, float *data, size_t n)
{
    const spo_h5 *f = ctx;
    spo_dsinfo di;
    int rc = spo_h5_info(f, path, &di);
    if (rc) return rc;
    if (di.ndim != 2 || di.shape[0] != shape[0] || di.shape[1] != shape[1])
        return spo_err(SPO_EINVAL, "%s: %s is not [%lld,%lld]", spo_h5_path(f), path, (long long)shape[0],
                       (long long)shape[1]);
    return spo_h5_read_f32(f, path, data, n);
}

int spo_lora_opt_write(spo_h5 *f, const spo_lora *l, const float *m, const float *v, double guidance, double eta)
{
    int rc = each(l, (float *)m, (float *)v, put, f);
    if (!rc) rc = spo_h5_attr_float(f, "/adam", "guidance", guidance);
    if (!rc) rc = spo_h5_attr_float(f, "/adam", "eta", eta);
    return rc;
}

int spo_lora_opt_read(const spo_h5 *f, const spo_lora *l, float *m, float *v, int *has, double *guidance, double *eta)
{
    size_t n = spo_lora_numel(l);
    memset(m, 0, n * sizeof *m), memset(v, 0, n * sizeof *v);
    *has = 0, *guidance = NAN, *eta = NAN;
    if (!spo_h5_exists(f, "/adam")) return SPO_OK;
    int rc = each(l, m, v, get, (void *)f);
    if (rc) return rc;
    *has = 1;
    if (spo_h5_get_attr_float(f, "/adam", "guidance", guidance)) *guidance = NAN;
    if (spo_h5_get_attr_float(f, "/adam", "eta", eta)) *eta = NAN;
    spo_err_clear();
    return SPO_OK;
}
