/* sampler.c — guided UNet and the pool step (see sampler.h). */
#include "spo/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/philox.h"

int spo_guided_eps(spo_sampler *s, const float *x, const float *t, const float *cond, const int *ctx_of, int n, int h,
                   int w, float *eps)
{
    const spo_unet_config *cf = spo_unet_cfg(s->unet);
    int C = cf->in_channels, L = s->L, D = s->D, bs = s->batch > 0 ? s->batch : 1;
    if (cf->out_channels != C) return spo_err(SPO_EINVAL, "the UNet's in and out channels differ");
    if (D != cf->cross_dim) return spo_err(SPO_EINVAL, "text width %d, the UNet's cross_attention_dim is %d", D, cf->cross_dim);
    size_t lat = (size_t)C * h * w, ctx = (size_t)L * D;
    int m2 = 2 * (n < bs ? n : bs);
    float *dx = spo_dev_alloc(s->dev, m2 * lat), *dout = spo_dev_alloc(s->dev, m2 * lat);
    float *dctx = spo_dev_alloc(s->dev, m2 * ctx), *dt = spo_dev_alloc(s->dev, (size_t)m2);
    float *hout = malloc(m2 * lat * sizeof *hout), *ht = malloc((size_t)m2 * sizeof *ht);
    int rc = (!dx || !dout || !dctx || !dt || !hout || !ht) ? spo_err(SPO_EIO, "out of memory") : SPO_OK;
    for (int i0 = 0; i0 < n && !rc; i0 += bs) {
        int m = n - i0 < bs ? n - i0 : bs;
        /* [x_0..x_m-1 | x_0..x_m-1] with [uncond.. | cond..] */
        for (int k = 0; k < 2 && !rc; k++) {
            rc = spo_dev_upload(s->dev, dx + (size_t)k * m * lat, x + (size_t)i0 * lat, (size_t)m * lat);
            for (int i = 0; i < m && !rc; i++) {
                const float *c = k ? cond + (size_t)ctx_of[i0 + i] * ctx : s->uncond;
                rc = spo_dev_upload(s->dev, dctx + ((size_t)k * m + i) * ctx, c, ctx);
                ht[k * m + i] = t[i0 + i];
            }
        }
        if (!rc) rc = spo_dev_upload(s->dev, dt, ht, (size_t)2 * m);
        if (!rc) rc = spo_unet_forward(s->unet, dout, dx, dt, dctx, 2 * m, h, w, L, 0);
        if (!rc) rc = spo_dev_download(s->dev, hout, dout, (size_t)2 * m * lat);
        for (int i = 0; i < m && !rc; i++) {
            const float *eu = hout + (size_t)i * lat, *ec = hout + (size_t)(m + i) * lat;
            float *e = eps + (size_t)(i0 + i) * lat;
            for (size_t j = 0; j < lat; j++) e[j] = eu[j] + s->guidance * (ec[j] - eu[j]);
        }
        s->done += m;
        if (s->progress && !rc) s->progress(s->ctx, s->done, s->total);
    }
    spo_dev_free(s->dev, dx), spo_dev_free(s->dev, dout), spo_dev_free(s->dev, dctx), spo_dev_free(s->dev, dt);
    free(hout), free(ht);
    return rc;
}

int spo_pool_step(spo_sampler *s, const spo_pool_shape *ps, const float *x, const float *eps_in, const float *cond,
                  float *parent_eps, float *children, float *x0, float *eps_out, int *child_t, int *final)
{
    int B = ps->B, K = ps->K;
    size_t lat = (size_t)ps->C * ps->h * ps->w;
    int p = spo_ddim_prev(&s->sched, ps->t);
    *final = p < 0;
    *child_t = p < 0 ? 0 : p;
    int *ctx_of = malloc((size_t)B * K * sizeof *ctx_of);
    float *t = malloc((size_t)B * K * sizeof *t), *mu = malloc(lat * sizeof *mu), *z = malloc(lat * sizeof *z);
    int rc = (!ctx_of || !t || !mu || !z) ? spo_err(SPO_EIO, "out of memory") : SPO_OK;
    s->done = 0;
    s->total = (eps_in ? 0 : B) + (*final ? 0 : (long)B * K);
    for (int b = 0; b < B && !rc; b++) ctx_of[b] = b, t[b] = (float)ps->t;
    if (!rc) {
        if (eps_in) memcpy(parent_eps, eps_in, (size_t)B * lat * sizeof *parent_eps);
        else rc = spo_guided_eps(s, x, t, cond, ctx_of, B, ps->h, ps->w, parent_eps);
    }
    for (int b = 0; b < B && !rc; b++) {
        float sigma;
        spo_ddim_mean(&s->sched, ps->t, p, s->eta, x + b * lat, parent_eps + b * lat, NULL, mu, &sigma, lat);
        for (int k = 0; k < K; k++) {
            float *c = children + ((size_t)b * K + k) * lat;
            spo_normal_fill(z, lat, ps->seed, ps->pid[b], (uint32_t)ps->step, (uint32_t)k);
            spo_ddim_add_noise(c, mu, sigma, z, lat);
            ctx_of[b * K + k] = b;
            t[b * K + k] = (float)p;
        }
    }
    if (!rc && *final) memcpy(x0, children, (size_t)B * K * lat * sizeof *x0);
    else if (!rc) {
        rc = spo_guided_eps(s, children, t, cond, ctx_of, B * K, ps->h, ps->w, eps_out);
        float a = spo_ddim_abar(&s->sched, p), sa = sqrtf(a), sb = sqrtf(1.0f - a);
        for (size_t i = 0; i < (size_t)B * K * lat && !rc; i++) x0[i] = (children[i] - sb * eps_out[i]) / sa;
    }
    free(ctx_of), free(t), free(mu), free(z);
    return rc;
}
