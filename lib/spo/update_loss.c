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

void spo_pair_loss_eval(const spo_ddim *s, int t, float eta, const spo_loss_cfg *c, const float *x, const float *win,
                        const float *lose, const float *eps, const float *eps_ref, size_t n, double weight,
                        spo_pair_loss *out, float *g_eps)
{
    int p = spo_ddim_prev(s, t);
    if (p < 0) p = 0; /* as the official training step: clamped to the first timestep */
    float a = spo_ddim_abar(s, t), ap = spo_ddim_abar(s, p);
    float sb = sqrtf(1.0f - a), sa = sqrtf(a), sap = sqrtf(ap);
    float sd = spo_ddim_sigma(s, t, p, eta), dir = sqrtf(1.0f - ap - sd * sd);
    /* mu = sap (x - sb eps) / sa + dir eps: d mu / d eps = dir - sap sb / sa */
    double s2 = (double)sd * sd, dmu = (double)dir - (double)sap * sb / sa;
    double dw = 0, dl = 0;
    for (size_t i = 0; i < n; i++) {
        double mu = (double)(sap * ((x[i] - sb * eps[i]) / sa) + dir * eps[i]);
        double mr = (double)(sap * ((x[i] - sb * eps_ref[i]) / sa) + dir * eps_ref[i]);
        double ew = win[i] - mu, rw = win[i] - mr, el = lose[i] - mu, rl = lose[i] - mr;
        dw += rw * rw - ew * ew;
        dl += rl * rl - el * el;
    }
    /* log p_pol - log p_ref: the constants cancel */
    dw /= 2 * s2 * (double)n, dl /= 2 * s2 * (double)n;
    double lw, ll;
    out->clamped_w = clamp_ratio(dw, c->clip, &out->rw, &lw);
    out->clamped_l = clamp_ratio(dl, c->clip, &out->rl, &ll);
    double z = c->beta * (lw - ll);
    out->loss = softplus_neg(z);
    if (!g_eps) return;
    double dz = -1.0 / (1.0 + exp(z)); /* d(-log sigmoid z)/dz = -sigmoid(-z) */
    double gw = out->clamped_w ? 0 : c->beta * dz, gl = out->clamped_l ? 0 : -c->beta * dz;
    /* d log p(x) / d mu_i = (x_i - mu_i) / (sigma^2 n) */
    double k = weight * dmu / (s2 * (double)n);
    for (size_t i = 0; i < n; i++) {
        double mu = (double)(sap * ((x[i] - sb * eps[i]) / sa) + dir * eps[i]);
        g_eps[i] = (float)(k * (gw * (win[i] - mu) + gl * (lose[i] - mu)));
    }
}

void spo_pair_loss_eval2(const spo_ddim *s, int t, float eta, const spo_loss_cfg *c, const float *x, const float *xl,
                         const float *win, const float *lose, const float *eps, const float *eps_l,
                         const float *eps_ref, const float *eps_ref_l, size_t n, double weight, spo_pair_loss *out,
                         float *g_eps, float *g_eps_l)
{
    int p = spo_ddim_prev(s, t);
    if (p < 0) p = 0;
    float a = spo_ddim_abar(s, t), ap = spo_ddim_abar(s, p);
    float sb = sqrtf(1.0f - a), sa = sqrtf(a), sap = sqrtf(ap);
    float sd = spo_ddim_sigma(s, t, p, eta), dir = sqrtf(1.0f - ap - sd * sd);
    double s2 = (double)sd * sd, dmu = (double)dir - (double)sap * sb / sa;
    double dw = 0, dl = 0;
    for (size_t i = 0; i < n; i++) {
        double mw = (double)(sap * ((x[i] - sb * eps[i]) / sa) + dir * eps[i]);
        double rmw = (double)(sap * ((x[i] - sb * eps_ref[i]) / sa) + dir * eps_ref[i]);
        double ml = (double)(sap * ((xl[i] - sb * eps_l[i]) / sa) + dir * eps_l[i]);
        double rml = (double)(sap * ((xl[i] - sb * eps_ref_l[i]) / sa) + dir * eps_ref_l[i]);
        double ew = win[i] - mw, rw = win[i] - rmw, el = lose[i] - ml, rl = lose[i] - rml;
        dw += rw * rw - ew * ew;
        dl += rl * rl - el * el;
    }
    dw /= 2 * s2 * (double)n, dl /= 2 * s2 * (double)n;
    double lw, ll;
    out->clamped_w = clamp_ratio(dw, c->clip, &out->rw, &lw);
    out->clamped_l = clamp_ratio(dl, c->clip, &out->rl, &ll);
    double z = c->beta * (lw - ll);
    out->loss = softplus_neg(z);
    if (!g_eps || !g_eps_l) return;
    double dz = -1.0 / (1.0 + exp(z));
    double gw = out->clamped_w ? 0 : c->beta * dz, gl = out->clamped_l ? 0 : -c->beta * dz;
    double k = weight * dmu / (s2 * (double)n);
    for (size_t i = 0; i < n; i++) {
        double mw = (double)(sap * ((x[i] - sb * eps[i]) / sa) + dir * eps[i]);
        double ml = (double)(sap * ((xl[i] - sb * eps_l[i]) / sa) + dir * eps_l[i]);
        g_eps[i] = (float)(k * gw * (win[i] - mw));
        g_eps_l[i] = (float)(k * gl * (lose[i] - ml));
    }
}
