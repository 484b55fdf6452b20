/* cpu_norm.c — group norm and layer norm on the CPU.
 *
 * As PyTorch: biased variance, rstd = 1/sqrt(var + eps), y = xhat * gamma +
 * beta with xhat = (x - mean) * rstd. Mean and variance are computed in
 * double with two passes. gamma NULL means 1, beta NULL means 0 (no affine).
 * Backward, for one normalised set of L elements with g = dy * gamma:
 *   dx += rstd * (g - mean(g) - xhat * mean(g * xhat))
 *   dgamma += sum dy * xhat, dbeta += sum dy (over the set's other dims).
 *
 * Threads (lib/ops/cpu/cpu_pool.c): group norm runs its groups in parallel (the
 * backward one group's channels over the whole batch, in order, since
 * dgamma and dbeta sum over the batch); layer norm its rows, and its
 * backward sums dgamma and dbeta over the rows in a second pass split by
 * columns. Sums use fixed partial sums (lib/ops/cpu/cpu_math.h), so the results do
 * not depend on the thread count. */
#include <math.h>
#include <stdlib.h>

#include "ops/cpu/cpu_math.h"
#include "ops/ops_impl.h"


/* mean and rstd of v (len), two-pass in double. The mean is returned as
 * mean + *lo, so that (x - mean) - lo is accurate even when the mean is
 * large against the spread. */
static void moments(const float *v, size_t len, float eps, float *mean, float *rstd, float *lo)
{
    const double m = spo_sum_d(v, len) / (double)len, q = spo_sqdev_d(v, len, m);
    *mean = (float)m;
    *lo = (float)(m - (double)*mean);
    *rstd = (float)(1.0 / sqrt(q / (double)len + (double)eps));
}

typedef struct {
    float *y, *mean, *rstd, *dx, *dgamma, *dbeta;
    const float *x, *dy, *gamma, *beta, *cmean, *crstd;
    int n, c, hw, g, m;
    float eps;
} norm_job;

/* ---- group norm: x (n,c,hw), gamma/beta (c), mean/rstd (n,g) ---- */

/* items: (i, gi) pairs, i * g + gi */
static void gn_fwd_task(void *ctx, size_t lo_, size_t hi_, int worker)
{
    const norm_job *j = ctx;
    const int cpg = j->c / j->g, hw = j->hw;
    for (size_t ng = lo_; ng < hi_; ng++) {
        const int i = (int)(ng / (size_t)j->g), gi = (int)(ng % (size_t)j->g);
        const size_t off = ((size_t)i * j->c + (size_t)gi * cpg) * hw;
        float lo;
        moments(j->x + off, (size_t)cpg * hw, j->eps, &j->mean[ng], &j->rstd[ng], &lo);
        const float mu = j->mean[ng];
        for (int cc = 0; cc < cpg; cc++) {
            const int ch = gi * cpg + cc;
            const float a = j->rstd[ng] * (j->gamma ? j->gamma[ch] : 1.0f), sh = j->beta ? j->beta[ch] : 0.0f;
            const float *xr = j->x + off + (size_t)cc * hw;
            float *yr = j->y + off + (size_t)cc * hw;
            for (int k = 0; k < hw; k++) yr[k] = ((xr[k] - mu) - lo) * a + sh;
        }
    }
}

int spo_cpu_groupnorm_fwd(spo_dev *d, float *y, float *mean, float *rstd, const float *x, const float *gamma,
                          const float *beta, int n, int c, int hw, int g, float eps)
{
    norm_job j = {.y = y, .mean = mean, .rstd = rstd, .x = x, .gamma = gamma, .beta = beta, .n = n, .c = c, .hw = hw,
                  .g = g, .eps = eps};
    spo_cpu_parallel_for(d, (size_t)n * g, spo_cpu_grain(SPO_CPU_CHUNK, (size_t)(c / g) * hw), gn_fwd_task, &j);
    return SPO_OK;
}

/* items: groups gi, each over the whole batch */
static void gn_bwd_task(void *ctx, size_t lo, size_t hi, int worker)
{
    const norm_job *j = ctx;
    const int cpg = j->c / j->g, hw = j->hw;
    const double len = (double)cpg * hw;
    for (size_t gi = lo; gi < hi; gi++)
        for (int i = 0; i < j->n; i++) {
            const size_t off = ((size_t)i * j->c + gi * cpg) * hw, ng = (size_t)i * j->g + gi;
            const float mu = j->cmean[ng], rs = j->crstd[ng];
            double sg = 0.0, sgx = 0.0; /* sum g, sum g * xhat over the group */
            for (int cc = 0; cc < cpg; cc++) {
                const size_t ch = gi * cpg + cc;
                const float *xr = j->x + off + (size_t)cc * hw, *dr = j->dy + off + (size_t)cc * hw;
                double s[SPO_LANES] = {0}, sx[SPO_LANES] = {0};
                int k = 0;
                for (; k + SPO_LANES <= hw; k += SPO_LANES)
                    for (int l = 0; l < SPO_LANES; l++) {
                        s[l] += dr[k + l];
                        sx[l] += (double)dr[k + l] * ((xr[k + l] - mu) * rs);
                    }
                for (int l = 0; k < hw; k++, l++) {
                    s[l] += dr[k];
                    sx[l] += (double)dr[k] * ((xr[k] - mu) * rs);
                }
                double sdy = 0.0, sdyx = 0.0;
                for (int l = 0; l < SPO_LANES; l++) sdy += s[l], sdyx += sx[l];
                if (j->dgamma) j->dgamma[ch] += (float)sdyx;
                if (j->dbeta) j->dbeta[ch] += (float)sdy;
                const double gm = j->gamma ? j->gamma[ch] : 1.0;
                sg += gm * sdy;
                sgx += gm * sdyx;
            }
            if (!j->dx) continue;
            const float mg = (float)(sg / len), mgx = (float)(sgx / len);
            for (int cc = 0; cc < cpg; cc++) {
                const size_t ch = gi * cpg + cc;
                const float gm = j->gamma ? j->gamma[ch] : 1.0f;
                const float *xr = j->x + off + (size_t)cc * hw, *dr = j->dy + off + (size_t)cc * hw;
                float *o = j->dx + off + (size_t)cc * hw;
                for (int k = 0; k < hw; k++) {
                    const float xh = (xr[k] - mu) * rs;
                    o[k] += rs * (dr[k] * gm - mg - xh * mgx);
                }
            }
        }
}

int spo_cpu_groupnorm_bwd(spo_dev *d, float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                          const float *mean, const float *rstd, const float *gamma, int n, int c, int hw, int g)
{
    norm_job j = {.dx = dx, .dgamma = dgamma, .dbeta = dbeta, .dy = dy, .x = x, .cmean = mean, .crstd = rstd,
                  .gamma = gamma, .n = n, .c = c, .hw = hw, .g = g};
    spo_cpu_parallel_for(d, (size_t)g, spo_cpu_grain(SPO_CPU_CHUNK, (size_t)n * (c / g) * hw), gn_bwd_task, &j);
    return SPO_OK;
}

/* ---- layer norm: x (m,c), gamma/beta (c), mean/rstd (m) ---- */

/* row i */
static void ln_fwd_row(const void *ctx, size_t i)
{
    const norm_job *j = ctx;
    const int c = j->c;
    const float *xr = j->x + i * c;
    float *yr = j->y + i * c;
    float lo;
    moments(xr, (size_t)c, j->eps, &j->mean[i], &j->rstd[i], &lo);
    const float mu = j->mean[i], rs = j->rstd[i];
    if (j->gamma && j->beta)
        for (int k = 0; k < c; k++) yr[k] = ((xr[k] - mu) - lo) * rs * j->gamma[k] + j->beta[k];
    else
        for (int k = 0; k < c; k++) {
            float v = ((xr[k] - mu) - lo) * rs;
            if (j->gamma) v *= j->gamma[k];
            if (j->beta) v += j->beta[k];
            yr[k] = v;
        }
}

int spo_cpu_layernorm_fwd(spo_dev *d, float *y, float *mean, float *rstd, const float *x, const float *gamma,
                          const float *beta, int m, int c, float eps)
{
    norm_job j = {.y = y, .mean = mean, .rstd = rstd, .x = x, .gamma = gamma, .beta = beta, .m = m, .c = c,
                  .eps = eps};
    return spo_cpu_rows(d, (size_t)m, (size_t)c, ln_fwd_row, &j);
}

/* dx, row i */
static void ln_dx_row(const void *ctx, size_t i)
{
    const norm_job *j = ctx;
    const int c = j->c;
    const float *xr = j->x + i * c, *dr = j->dy + i * c;
    const float mu = j->cmean[i], rs = j->crstd[i];
    double s[SPO_LANES] = {0}, sx[SPO_LANES] = {0};
    int k = 0;
    for (; k + SPO_LANES <= c; k += SPO_LANES)
        for (int l = 0; l < SPO_LANES; l++) {
            const float gj = dr[k + l] * (j->gamma ? j->gamma[k + l] : 1.0f);
            s[l] += gj;
            sx[l] += (double)gj * ((xr[k + l] - mu) * rs);
        }
    for (int l = 0; k < c; k++, l++) {
        const float gj = dr[k] * (j->gamma ? j->gamma[k] : 1.0f);
        s[l] += gj;
        sx[l] += (double)gj * ((xr[k] - mu) * rs);
    }
    double sg = 0.0, sgx = 0.0;
    for (int l = 0; l < SPO_LANES; l++) sg += s[l], sgx += sx[l];
    const float mg = (float)(sg / c), mgx = (float)(sgx / c);
    float *o = j->dx + i * c;
    for (k = 0; k < c; k++) {
        const float xh = (xr[k] - mu) * rs;
        o[k] += rs * (dr[k] * (j->gamma ? j->gamma[k] : 1.0f) - mg - xh * mgx);
    }
}

#define COLS 64 /* columns per dgamma/dbeta task */

/* dgamma, dbeta: column blocks [lo, hi) of COLS columns, summed over every row in order */
static void ln_dgb_task(void *ctx, size_t lo, size_t hi, int worker)
{
    const norm_job *j = ctx;
    const size_t c = (size_t)j->c, c0 = lo * COLS, c1 = hi * COLS < c ? hi * COLS : c;
    double ag[COLS], ab[COLS];
    for (size_t b0 = c0; b0 < c1; b0 += COLS) {
        const size_t nb = c1 - b0 < COLS ? c1 - b0 : COLS;
        for (size_t k = 0; k < nb; k++) ag[k] = ab[k] = 0.0;
        for (int i = 0; i < j->m; i++) {
            const float *xr = j->x + i * c + b0, *dr = j->dy + i * c + b0;
            const float mu = j->cmean[i], rs = j->crstd[i];
            for (size_t k = 0; k < nb; k++) {
                ag[k] += (double)dr[k] * ((xr[k] - mu) * rs);
                ab[k] += dr[k];
            }
        }
        for (size_t k = 0; k < nb; k++) {
            if (j->dgamma) j->dgamma[b0 + k] += (float)ag[k];
            if (j->dbeta) j->dbeta[b0 + k] += (float)ab[k];
        }
    }
}

int spo_cpu_layernorm_bwd(spo_dev *d, float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                          const float *mean, const float *rstd, const float *gamma, int m, int c)
{
    norm_job j = {.dx = dx, .dgamma = dgamma, .dbeta = dbeta, .dy = dy, .x = x, .cmean = mean, .crstd = rstd,
                  .gamma = gamma, .m = m, .c = c};
    if (dx) spo_cpu_rows(d, (size_t)m, (size_t)c, ln_dx_row, &j);
    if (dgamma || dbeta)
        spo_cpu_parallel_for(d, ((size_t)c + COLS - 1) / COLS, spo_cpu_grain(SPO_CPU_CHUNK, (size_t)m * COLS),
                             ln_dgb_task, &j);
    return SPO_OK;
}
