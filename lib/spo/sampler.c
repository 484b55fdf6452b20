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
    const spo_added *ad = &s->add;
    int C = cf->in_channels, L = s->L, D = s->D, bs = s->batch > 0 ? s->batch : 1, E = ad->E;
    if (cf->out_channels != C) return spo_err(SPO_EINVAL, "the UNet's in and out channels differ");
    if (D != cf->cross_dim) return spo_err(SPO_EINVAL, "text width %d, the UNet's cross_attention_dim is %d", D, cf->cross_dim);
    if ((cf->add_time_dim > 0) != (E > 0) || (E && E != cf->add_text_dim))
        return spo_err(SPO_EINVAL, "pooled text width %d, the UNet's added conditioning takes %d", E,
                       cf->add_time_dim > 0 ? cf->add_text_dim : 0);
    size_t lat = (size_t)C * h * w, ctx = (size_t)L * D, T = SPO_UNET_TIME_IDS;
    int m2 = 2 * (n < bs ? n : bs);
    float *dx = spo_dev_alloc(s->dev, m2 * lat), *dout = spo_dev_alloc(s->dev, m2 * lat);
    float *dctx = spo_dev_alloc(s->dev, m2 * ctx), *dt = spo_dev_alloc(s->dev, (size_t)m2);
    float *dte = E ? spo_dev_alloc(s->dev, (size_t)m2 * E) : NULL, *dti = E ? spo_dev_alloc(s->dev, m2 * T) : NULL;
    float *hout = malloc(m2 * lat * sizeof *hout), *ht = malloc((size_t)m2 * sizeof *ht);
    int rc = (!dx || !dout || !dctx || !dt || !hout || !ht || (E && (!dte || !dti))) ? spo_err(SPO_EIO, "out of memory")
                                                                                     : SPO_OK;
    for (int i = 0; i < m2 && E && !rc; i++) rc = spo_dev_upload(s->dev, dti + i * T, ad->time_ids, T);
    for (int i0 = 0; i0 < n && !rc; i0 += bs) {
        int m = n - i0 < bs ? n - i0 : bs;
        /* [x_0..x_m-1 | x_0..x_m-1] with [uncond.. | cond..] (and [uncond pooled.. | pooled..]) */
        for (int k = 0; k < 2 && !rc; k++) {
            rc = spo_dev_upload(s->dev, dx + (size_t)k * m * lat, x + (size_t)i0 * lat, (size_t)m * lat);
            for (int i = 0; i < m && !rc; i++) {
                const float *c = k ? cond + (size_t)ctx_of[i0 + i] * ctx : s->uncond;
                rc = spo_dev_upload(s->dev, dctx + ((size_t)k * m + i) * ctx, c, ctx);
                if (!rc && E) {
                    const float *p = k ? ad->pooled + (size_t)ctx_of[i0 + i] * E : ad->uncond_pooled;
                    rc = spo_dev_upload(s->dev, dte + ((size_t)k * m + i) * E, p, (size_t)E);
                }
                ht[k * m + i] = t[i0 + i];
            }
        }
        if (!rc) rc = spo_dev_upload(s->dev, dt, ht, (size_t)2 * m);
        if (!rc) rc = spo_unet_forward_added(s->unet, dout, dx, dt, dctx, dte, dti, 2 * m, h, w, L, 0);
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
    if (dte) spo_dev_free(s->dev, dte);
    if (dti) spo_dev_free(s->dev, dti);
    free(hout), free(ht);
    return rc;
}

int spo_inner_count(int step, int num_steps, int N)
{
    if (N <= 0) return 0;
    int end = step + 1 + N;
    if (end >= num_steps - 1) end = num_steps; /* the official loop's last step runs every chain to the end */
    return end - step - 1 > 0 ? end - step - 1 : 0;
}

/* nk latents from x with eps, by the DDIM step t -> prev: out[i] = mu +
 * sigma z, z = Philox(seed, pid, step, k0 + i). mu and z are lat floats of scratch. */
static void draw(const spo_sampler *s, int t, int prev, const float *x, const float *eps, uint64_t seed, uint32_t pid,
                 int step, int k0, int nk, float *out, float *mu, float *z, size_t lat)
{
    float sigma;
    spo_ddim_mean(&s->sched, t, prev, s->eta, x, eps, NULL, mu, &sigma, lat);
    for (int i = 0; i < nk; i++) {
        spo_normal_fill(z, lat, seed, pid, (uint32_t)step, (uint32_t)(k0 + i));
        spo_ddim_add_noise(out + (size_t)i * lat, mu, sigma, z, lat);
    }
}

/* the guided eps of the n chains cur (each with its prompt's context) at timestep t */
static int chains_eps(spo_sampler *s, const spo_pool_shape *ps, const float *cur, int t, const float *cond, int *ctx_of,
                      float *tt, float *eps)
{
    int n = ps->B * ps->K;
    for (int i = 0; i < n; i++) ctx_of[i] = i / ps->K, tt[i] = (float)t;
    return spo_guided_eps(s, cur, tt, cond, ctx_of, n, ps->h, ps->w, eps);
}

int spo_pool_step(spo_sampler *s, const spo_pool_shape *ps, const float *x, const float *eps_in, const float *cond,
                  float *parent_eps, float *children, float *inner, float *x0, float *eps_out, int *child_t,
                  int *end_t, int *final)
{
    int B = ps->B, K = ps->K, N = ps->inner;
    size_t lat = (size_t)ps->C * ps->h * ps->w, nl = (size_t)B * K * lat;
    int p = spo_ddim_prev(&s->sched, ps->t);
    if (N > 0 && p < 0) return spo_err(SPO_EINVAL, "inner steps after the last step");
    int *ctx_of = malloc((size_t)B * K * sizeof *ctx_of);
    float *t = malloc((size_t)B * K * sizeof *t), *mu = malloc(lat * sizeof *mu), *z = malloc(lat * sizeof *z);
    float *cur = N ? malloc(nl * sizeof *cur) : children, *nxt = N ? malloc(nl * sizeof *nxt) : NULL;
    int rc = (!ctx_of || !t || !mu || !z || !cur || (N && !nxt)) ? spo_err(SPO_EIO, "out of memory") : SPO_OK;
    int ct = p; /* the chains' current timestep (< 0: final latents) */
    s->done = 0;
    s->total = (eps_in ? 0 : B) + (long)B * K * (N + (ps->step + 1 + N >= s->sched.num_steps ? 0 : 1));
    for (int b = 0; b < B && !rc; b++) ctx_of[b] = b, t[b] = (float)ps->t;
    if (!rc) {
        if (eps_in) memcpy(parent_eps, eps_in, (size_t)B * lat * sizeof *parent_eps);
        else rc = spo_guided_eps(s, x, t, cond, ctx_of, B, ps->h, ps->w, parent_eps);
    }
    for (int b = 0; b < B && !rc; b++)
        draw(s, ps->t, p, x + b * lat, parent_eps + b * lat, ps->seed, ps->pid[b], ps->step, 0, K,
             children + (size_t)b * K * lat, mu, z, lat);
    if (!rc && N) memcpy(cur, children, nl * sizeof *cur);
    for (int j = 1; j <= N && !rc; j++) { /* inner step j: from step index ps->step + j */
        int prev = spo_ddim_prev(&s->sched, ct);
        if ((rc = chains_eps(s, ps, cur, ct, cond, ctx_of, t, eps_out))) break;
        for (int i = 0; i < B * K; i++)
            draw(s, ct, prev, cur + i * lat, eps_out + i * lat, ps->seed, ps->pid[i / K], ps->step + j, i % K, 1,
                 nxt + i * lat, mu, z, lat);
        for (int i = 0; i < B * K; i++)
            memcpy(inner + ((size_t)i * N + j - 1) * lat, nxt + i * lat, lat * sizeof *nxt);
        float *sw = cur;
        cur = nxt, nxt = sw, ct = prev;
    }
    *final = ct < 0;
    *child_t = p < 0 ? 0 : p;
    *end_t = ct < 0 ? 0 : ct;
    if (!rc && *final) memcpy(x0, cur, nl * sizeof *x0);
    else if (!rc && !(rc = chains_eps(s, ps, cur, ct, cond, ctx_of, t, eps_out))) {
        float a = spo_ddim_abar(&s->sched, ct), sa = sqrtf(a), sb = sqrtf(1.0f - a);
        for (size_t i = 0; i < nl; i++) x0[i] = (cur[i] - sb * eps_out[i]) / sa;
    }
    if (N) free(cur), free(nxt);
    free(ctx_of), free(t), free(mu), free(z);
    return rc;
}
