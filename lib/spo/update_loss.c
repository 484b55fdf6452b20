/* update_loss.c — the SPO loss of one pair and its gradient in the policy's
 * guided eps, for a shared parent and for trajectory pairs whose loser has
 * its own (see update.h). Everything per element is in double. */
#include <math.h>

#include "spo/update.h"

/* -log sigmoid(z), without overflow */
static double softplus_neg(double z) { return z > 0 ? log1p(exp(-z)) : -z + log1p(exp(z)); }

/* clamp exp(d) to [1 - clip, 1 + clip]; *lr its log, 1 when clamped */
static int clamp_ratio(double d, double clip, double *r, double *lr)
{
    double e = exp(d);
    if (e < 1 - clip) return *r = 1 - clip, *lr = log(1 - clip), 1;
    if (e > 1 + clip) return *r = 1 + clip, *lr = log(1 + clip), 1;
    *r = e, *lr = d; /* log(exp(d)) */
    return 0;
}

/* the DDIM step t -> prev (clamped to 0, as the official training step)
 * and the Gaussian's mean mu(x, eps) = sap (x - sb eps) / sa + dir eps */
typedef struct {
    float sb, sa, sap, dir;
    double s2, dmu; /* sigma^2; d mu / d eps = dir - sap sb / sa */
} step_k;

static step_k step_of(const spo_ddim *s, int t, float eta)
{
    int p = spo_ddim_prev(s, t);
    if (p < 0) p = 0;
    float a = spo_ddim_abar(s, t), ap = spo_ddim_abar(s, p);
    step_k k = {.sb = sqrtf(1.0f - a), .sa = sqrtf(a), .sap = sqrtf(ap)};
    float sd = spo_ddim_sigma(s, t, p, eta);
    k.dir = sqrtf(1.0f - ap - sd * sd);
    k.s2 = (double)sd * sd, k.dmu = (double)k.dir - (double)k.sap * k.sb / k.sa;
    return k;
}

static inline double mean(const step_k *k, float x, float e)
{
    return (double)(k->sap * ((x - k->sb * e) / k->sa) + k->dir * e);
}

/* From the sums of (ref residual^2 - policy residual^2) of the winner and
 * the loser: log p_pol - log p_ref (the constants cancel), the clamped
 * ratios, the loss; *gw, *gl the loss's derivatives by the two log
 * ratios (0 where clamped); returns d log p / d mu's factor times weight. */
static double finish(const spo_loss_cfg *c, const step_k *k, double dw, double dl, size_t n, double weight,
                     spo_pair_loss *out, double *gw, double *gl)
{
    dw /= 2 * k->s2 * (double)n, dl /= 2 * k->s2 * (double)n;
    double lw, ll;
    out->clamped_w = clamp_ratio(dw, c->clip, &out->rw, &lw);
    out->clamped_l = clamp_ratio(dl, c->clip, &out->rl, &ll);
    double z = c->beta * (lw - ll);
    out->loss = softplus_neg(z);
    double dz = -1.0 / (1.0 + exp(z)); /* d(-log sigmoid z)/dz = -sigmoid(-z) */
    *gw = out->clamped_w ? 0 : c->beta * dz, *gl = out->clamped_l ? 0 : -c->beta * dz;
    /* d log p(x) / d mu_i = (x_i - mu_i) / (sigma^2 n) */
    return weight * k->dmu / (k->s2 * (double)n);
}

void spo_pair_loss_eval(const spo_ddim *s, int t, float eta, const spo_loss_cfg *c, const float *x, const float *win,
                        const float *lose, const float *eps, const float *eps_ref, size_t n, double weight,
                        spo_pair_loss *out, float *g_eps)
{
    step_k k = step_of(s, t, eta);
    double dw = 0, dl = 0, gw, gl;
    for (size_t i = 0; i < n; i++) {
        double mu = mean(&k, x[i], eps[i]), mr = mean(&k, x[i], eps_ref[i]);
        double ew = win[i] - mu, rw = win[i] - mr, el = lose[i] - mu, rl = lose[i] - mr;
        dw += rw * rw - ew * ew;
        dl += rl * rl - el * el;
    }
    double f = finish(c, &k, dw, dl, n, weight, out, &gw, &gl);
    for (size_t i = 0; g_eps && i < n; i++) {
        double mu = mean(&k, x[i], eps[i]);
        g_eps[i] = (float)(f * (gw * (win[i] - mu) + gl * (lose[i] - mu)));
    }
}

void spo_pair_loss_eval2(const spo_ddim *s, int t, float eta, const spo_loss_cfg *c, const float *x, const float *xl,
                         const float *win, const float *lose, const float *eps, const float *eps_l,
                         const float *eps_ref, const float *eps_ref_l, size_t n, double weight, spo_pair_loss *out,
                         float *g_eps, float *g_eps_l)
{
    step_k k = step_of(s, t, eta);
    double dw = 0, dl = 0, gw, gl;
    for (size_t i = 0; i < n; i++) {
        double ew = win[i] - mean(&k, x[i], eps[i]), rw = win[i] - mean(&k, x[i], eps_ref[i]);
        double el = lose[i] - mean(&k, xl[i], eps_l[i]), rl = lose[i] - mean(&k, xl[i], eps_ref_l[i]);
        dw += rw * rw - ew * ew;
        dl += rl * rl - el * el;
    }
    double f = finish(c, &k, dw, dl, n, weight, out, &gw, &gl);
    for (size_t i = 0; g_eps && g_eps_l && i < n; i++) {
        g_eps[i] = (float)(f * gw * (win[i] - mean(&k, x[i], eps[i])));
        g_eps_l[i] = (float)(f * gl * (lose[i] - mean(&k, xl[i], eps_l[i])));
    }
}
