/* cpu_norm.c — group norm and layer norm on the CPU.
 *
 * As PyTorch: biased variance, rstd = 1/sqrt(var + eps), y = xhat * gamma +
 * beta with xhat = (x - mean) * rstd. Mean and variance are computed in
 * double with two passes. gamma NULL means 1, beta NULL means 0 (no affine).
 * Backward, for one normalised set of L elements with g = dy * gamma:
 *   dx += rstd * (g - mean(g) - xhat * mean(g * xhat))
 *   dgamma += sum dy * xhat, dbeta += sum dy (over the set's other dims). */
#include <math.h>
#include <stdlib.h>

#include "ops_impl.h"

/* mean and rstd of v (len), two-pass in double. The mean is returned as
 * mean + *lo, so that (x - mean) - lo is accurate even when the mean is
 * large against the spread. */
static void moments(const float *v, size_t len, float eps, float *mean, float *rstd, float *lo)
{
    double s = 0.0;
    for (size_t i = 0; i < len; i++) s += v[i];
    double m = s / (double)len, q = 0.0;
    for (size_t i = 0; i < len; i++) {
        double t = v[i] - m;
        q += t * t;
    }
    *mean = (float)m;
    *lo = (float)(m - (double)*mean);
    *rstd = (float)(1.0 / sqrt(q / (double)len + (double)eps));
}

/* ---- group norm: x (n,c,hw), gamma/beta (c), mean/rstd (n,g) ---- */
int spo_cpu_groupnorm_fwd(spo_dev *d, float *y, float *mean, float *rstd, const float *x, const float *gamma,
                          const float *beta, int n, int c, int hw, int g, float eps)
{
    (void)d;
    const int cpg = c / g;
    for (int i = 0; i < n; i++)
        for (int gi = 0; gi < g; gi++) {
            const size_t off = ((size_t)i * c + (size_t)gi * cpg) * hw;
            const size_t ng = (size_t)i * g + gi;
            float lo;
            moments(x + off, (size_t)cpg * hw, eps, &mean[ng], &rstd[ng], &lo);
            const float mu = mean[ng];
            for (int cc = 0; cc < cpg; cc++) {
                const int ch = gi * cpg + cc;
                const float a = rstd[ng] * (gamma ? gamma[ch] : 1.0f), sh = beta ? beta[ch] : 0.0f;
                const float *xr = x + off + (size_t)cc * hw;
                float *yr = y + off + (size_t)cc * hw;
                for (int j = 0; j < hw; j++) yr[j] = ((xr[j] - mu) - lo) * a + sh;
            }
        }
    return SPO_OK;
}

int spo_cpu_groupnorm_bwd(spo_dev *d, float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                          const float *mean, const float *rstd, const float *gamma, int n, int c, int hw, int g)
{
    (void)d;
    const int cpg = c / g;
    const double len = (double)cpg * hw;
    for (int i = 0; i < n; i++)
        for (int gi = 0; gi < g; gi++) {
            const size_t off = ((size_t)i * c + (size_t)gi * cpg) * hw;
            const size_t ng = (size_t)i * g + gi;
            const float mu = mean[ng], rs = rstd[ng];
            double sg = 0.0, sgx = 0.0; /* sum g, sum g * xhat over the group */
            for (int cc = 0; cc < cpg; cc++) {
                const int ch = gi * cpg + cc;
                const float *xr = x + off + (size_t)cc * hw, *dr = dy + off + (size_t)cc * hw;
                double sdy = 0.0, sdyx = 0.0;
                for (int j = 0; j < hw; j++) {
                    sdy += dr[j];
                    sdyx += (double)dr[j] * ((xr[j] - mu) * rs);
                }
                if (dgamma) dgamma[ch] += (float)sdyx;
                if (dbeta) dbeta[ch] += (float)sdy;
                const double gm = gamma ? gamma[ch] : 1.0;
                sg += gm * sdy;
                sgx += gm * sdyx;
            }
            if (!dx) continue;
            const float mg = (float)(sg / len), mgx = (float)(sgx / len);
            for (int cc = 0; cc < cpg; cc++) {
                const int ch = gi * cpg + cc;
                const float gm = gamma ? gamma[ch] : 1.0f;
                const float *xr = x + off + (size_t)cc * hw, *dr = dy + off + (size_t)cc * hw;
                float *o = dx + off + (size_t)cc * hw;
                for (int j = 0; j < hw; j++) {
                    const float xh = (xr[j] - mu) * rs;
                    o[j] += rs * (dr[j] * gm - mg - xh * mgx);
                }
            }
        }
    return SPO_OK;
}

/* ---- layer norm: x (m,c), gamma/beta (c), mean/rstd (m) ---- */
int spo_cpu_layernorm_fwd(spo_dev *d, float *y, float *mean, float *rstd, const float *x, const float *gamma,
                          const float *beta, int m, int c, float eps)
{
    (void)d;
    for (int i = 0; i < m; i++) {
        const float *xr = x + (size_t)i * c;
        float *yr = y + (size_t)i * c;
        float lo;
        moments(xr, (size_t)c, eps, &mean[i], &rstd[i], &lo);
        const float mu = mean[i], rs = rstd[i];
        for (int j = 0; j < c; j++) {
            float v = ((xr[j] - mu) - lo) * rs;
            if (gamma) v *= gamma[j];
            if (beta) v += beta[j];
            yr[j] = v;
        }
    }
    return SPO_OK;
}

int spo_cpu_layernorm_bwd(spo_dev *d, float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                          const float *mean, const float *rstd, const float *gamma, int m, int c)
{
    (void)d;
    double *acc = NULL; /* (2,c): sums for dgamma and dbeta */
    if (dgamma || dbeta) {
        acc = calloc(2 * (size_t)c, sizeof *acc);
        if (!acc) return spo_err(SPO_EIO, "layernorm backward: out of memory");
    }
    for (int i = 0; i < m; i++) {
        const float *xr = x + (size_t)i * c, *dr = dy + (size_t)i * c;
        const float mu = mean[i], rs = rstd[i];
        double sg = 0.0, sgx = 0.0;
        for (int j = 0; j < c; j++) {
            const float xh = (xr[j] - mu) * rs;
            const float gj = dr[j] * (gamma ? gamma[j] : 1.0f);
            sg += gj;
            sgx += (double)gj * xh;
            if (acc) {
                acc[j] += (double)dr[j] * xh;
                acc[c + j] += dr[j];
            }
        }
        if (!dx) continue;
        const float mg = (float)(sg / c), mgx = (float)(sgx / c);
        float *o = dx + (size_t)i * c;
        for (int j = 0; j < c; j++) {
            const float xh = (xr[j] - mu) * rs;
            o[j] += rs * (dr[j] * (gamma ? gamma[j] : 1.0f) - mg - xh * mgx);
        }
    }
    if (acc) {
        for (int j = 0; j < c; j++) {
            if (dgamma) dgamma[j] += (float)acc[j];
            if (dbeta) dbeta[j] += (float)acc[c + j];
        }
        free(acc);
    }
    return SPO_OK;
}
