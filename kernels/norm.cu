// norm.cu — group norm and layer norm on CUDA (mirrors lib/ops/cpu/cpu_norm.c).
//
// As PyTorch: biased variance, rstd = 1/sqrt(var + eps), y = xhat * gamma +
// beta with xhat = (x - mean) * rstd; mean and variance in double, two
// passes, the mean kept as mean + lo as the CPU does. gamma NULL means 1,
// beta NULL means 0. Backward, for one normalised set of L elements with
// g = dy * gamma:
//   dx += rstd * (g - mean(g) - xhat * mean(g * xhat))
//   dgamma += sum dy * xhat, dbeta += sum dy (over the set's other dims).
// One block of NT threads per normalised set (group or row); the sums over
// the batch for dgamma and dbeta run in a fixed order, so results do not
// change from run to run.
#include <math.h>

#include "cuda_common.cuh"

#define NT 256 // threads per block (a multiple of 32)

// mean, rstd and lo of v (len) with the whole block (every thread gets them)
static __device__ void moments(const float *v, size_t len, float eps, float *mean, float *rstd, float *lo)
{
    double s = 0.0;
    for (size_t i = threadIdx.x; i < len; i += blockDim.x) s += v[i];
    const double m = spo_cu_block_sum(s) / (double)len;
    double q = 0.0;
    for (size_t i = threadIdx.x; i < len; i += blockDim.x) {
        const double t = (double)v[i] - m;
        q += t * t;
    }
    q = spo_cu_block_sum(q);
    *mean = (float)m;
    *lo = (float)(m - (double)*mean);
    *rstd = (float)(1.0 / sqrt(q / (double)len + (double)eps));
}

// ---- group norm: x (n,c,hw), gamma/beta (c), mean/rstd (n,g) ----

// one block per (i, gi), item ng = i * g + gi; the group's channels are contiguous
static __global__ void k_gn_fwd(float *y, float *mean, float *rstd, const float *x, const float *gamma,
                                const float *beta, int c, int hw, int g, float eps)
{
    const size_t ng = blockIdx.x;
    const int i = (int)(ng / (size_t)g), gi = (int)(ng % (size_t)g), cpg = c / g;
    const size_t off = ((size_t)i * c + (size_t)gi * cpg) * hw, len = (size_t)cpg * hw;
    float mu, rs, lo;
    moments(x + off, len, eps, &mu, &rs, &lo);
    if (threadIdx.x == 0) mean[ng] = mu, rstd[ng] = rs;
    for (size_t e = threadIdx.x; e < len; e += blockDim.x) {
        const int ch = gi * cpg + (int)(e / (size_t)hw);
        const float a = rs * (gamma ? gamma[ch] : 1.0f), sh = beta ? beta[ch] : 0.0f;
        y[off + e] = ((x[off + e] - mu) - lo) * a + sh;
    }
}

extern "C" int spo_cuda_groupnorm_fwd(spo_dev *d, float *y, float *mean, float *rstd, const float *x,
                                      const float *gamma, const float *beta, int n, int c, int hw, int g, float eps)
{
    (void)d;
    k_gn_fwd<<<(unsigned)((size_t)n * g), NT>>>(y, mean, rstd, x, gamma, beta, c, hw, g, eps);
    SPO_CU_LAUNCHED("spo_groupnorm_fwd");
    return SPO_OK;
}

// per (i, ch), one block each (item i * c + ch): sdy = sum dy, sdyx = sum dy * xhat over hw, in double
static __global__ void k_gn_chan_sums(double *sdy, double *sdyx, const float *dy, const float *x, const float *mean,
                                      const float *rstd, int c, int hw, int g)
{
    const size_t ic = blockIdx.x;
    const int i = (int)(ic / (size_t)c), ch = (int)(ic % (size_t)c), gi = ch / (c / g);
    const size_t ng = (size_t)i * g + gi, off = ic * hw;
    const float mu = mean[ng], rs = rstd[ng];
    double s = 0.0, sx = 0.0;
    for (int k = threadIdx.x; k < hw; k += blockDim.x) {
        const float dr = dy[off + k];
        s += dr;
        sx += (double)dr * ((x[off + k] - mu) * rs);
    }
    s = spo_cu_block_sum(s);
    sx = spo_cu_block_sum(sx);
    if (threadIdx.x == 0) sdy[ic] = s, sdyx[ic] = sx;
}

// dgamma[ch] += sdyx[i, ch], dbeta[ch] += sdy[i, ch], images in order (as floats, as the CPU)
static __global__ void k_gn_dgb(float *dgamma, float *dbeta, const double *sdy, const double *sdyx, int n, int c)
{
    const int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    float ag = dgamma ? dgamma[ch] : 0.0f, ab = dbeta ? dbeta[ch] : 0.0f;
    for (int i = 0; i < n; i++) {
        ag += (float)sdyx[(size_t)i * c + ch];
        ab += (float)sdy[(size_t)i * c + ch];
    }
    if (dgamma) dgamma[ch] = ag;
    if (dbeta) dbeta[ch] = ab;
}

// dx of one group (i, gi) per block
static __global__ void k_gn_dx(float *dx, const float *dy, const float *x, const float *mean, const float *rstd,
                               const float *gamma, const double *sdy, const double *sdyx, int c, int hw, int g)
{
    const size_t ng = blockIdx.x;
    const int i = (int)(ng / (size_t)g), gi = (int)(ng % (size_t)g), cpg = c / g;
    const size_t off = ((size_t)i * c + (size_t)gi * cpg) * hw, len = (size_t)cpg * hw;
    __shared__ float smg, smgx;
    if (threadIdx.x == 0) {
        double sg = 0.0, sgx = 0.0;
        for (int cc = 0; cc < cpg; cc++) {
            const int ch = gi * cpg + cc;
            const double gm = gamma ? gamma[ch] : 1.0;
            sg += gm * sdy[(size_t)i * c + ch];
            sgx += gm * sdyx[(size_t)i * c + ch];
        }
        smg = (float)(sg / (double)len), smgx = (float)(sgx / (double)len);
    }
    __syncthreads();
    const float mu = mean[ng], rs = rstd[ng], mg = smg, mgx = smgx;
    for (size_t e = threadIdx.x; e < len; e += blockDim.x) {
        const int ch = gi * cpg + (int)(e / (size_t)hw);
        const float gm = gamma ? gamma[ch] : 1.0f, xh = (x[off + e] - mu) * rs;
        dx[off + e] += rs * (dy[off + e] * gm - mg - xh * mgx);
    }
}

extern "C" int spo_cuda_groupnorm_bwd(spo_dev *d, float *dx, float *dgamma, float *dbeta, const float *dy,
                                      const float *x, const float *mean, const float *rstd, const float *gamma, int n,
                                      int c, int hw, int g)
{
    static const char fn[] = "spo_groupnorm_bwd";
    if (!dx && !dgamma && !dbeta) return SPO_OK;
    const size_t nc = (size_t)n * c;
    double *sdy = (double *)spo_cu_scratch(d, 2 * nc * sizeof(double), fn), *sdyx = sdy ? sdy + nc : NULL;
    if (!sdy) return SPO_EIO;
    k_gn_chan_sums<<<(unsigned)nc, NT>>>(sdy, sdyx, dy, x, mean, rstd, c, hw, g);
    SPO_CU_LAUNCHED(fn);
    if (dgamma || dbeta) {
        k_gn_dgb<<<(c + NT - 1) / NT, NT>>>(dgamma, dbeta, sdy, sdyx, n, c);
        SPO_CU_LAUNCHED(fn);
    }
    if (dx) {
        k_gn_dx<<<(unsigned)((size_t)n * g), NT>>>(dx, dy, x, mean, rstd, gamma, sdy, sdyx, c, hw, g);
        SPO_CU_LAUNCHED(fn);
    }
    return SPO_OK;
}

// ---- layer norm: x (m,c), gamma/beta (c), mean/rstd (m) ----

// one block per row
static __global__ void k_ln_fwd(float *y, float *mean, float *rstd, const float *x, const float *gamma,
                                const float *beta, int c, float eps)
{
    const size_t i = blockIdx.x;
    const float *xr = x + i * c;
    float *yr = y + i * c;
    float mu, rs, lo;
    moments(xr, (size_t)c, eps, &mu, &rs, &lo);
    if (threadIdx.x == 0) mean[i] = mu, rstd[i] = rs;
    for (int k = threadIdx.x; k < c; k += blockDim.x) {
        if (gamma && beta)
            yr[k] = ((xr[k] - mu) - lo) * rs * gamma[k] + beta[k];
        else {
            float v = ((xr[k] - mu) - lo) * rs;
            if (gamma) v *= gamma[k];
            if (beta) v += beta[k];
            yr[k] = v;
        }
    }
}

extern "C" int spo_cuda_layernorm_fwd(spo_dev *d, float *y, float *mean, float *rstd, const float *x,
                                      const float *gamma, const float *beta, int m, int c, float eps)
{
    (void)d;
    k_ln_fwd<<<(unsigned)m, NT>>>(y, mean, rstd, x, gamma, beta, c, eps);
    SPO_CU_LAUNCHED("spo_layernorm_fwd");
    return SPO_OK;
}

// dx, one block per row
static __global__ void k_ln_dx(float *dx, const float *dy, const float *x, const float *mean, const float *rstd,
                               const float *gamma, int c)
{
    const size_t i = blockIdx.x;
    const float *xr = x + i * c, *dr = dy + i * c;
    const float mu = mean[i], rs = rstd[i];
    double s = 0.0, sx = 0.0;
    for (int k = threadIdx.x; k < c; k += blockDim.x) {
        const float gj = dr[k] * (gamma ? gamma[k] : 1.0f);
        s += gj;
        sx += (double)gj * ((xr[k] - mu) * rs);
    }
    s = spo_cu_block_sum(s);
    sx = spo_cu_block_sum(sx);
    const float mg = (float)(s / c), mgx = (float)(sx / c);
    float *o = dx + i * c;
    for (int k = threadIdx.x; k < c; k += blockDim.x) {
        const float xh = (xr[k] - mu) * rs;
        o[k] += rs * (dr[k] * (gamma ? gamma[k] : 1.0f) - mg - xh * mgx);
    }
}

// dgamma, dbeta: one thread per column, rows in order, in double (as the CPU)
static __global__ void k_ln_dgb(float *dgamma, float *dbeta, const float *dy, const float *x, const float *mean,
                                const float *rstd, int m, int c)
{
    const int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= c) return;
    double ag = 0.0, ab = 0.0;
    for (int i = 0; i < m; i++) {
        const size_t e = (size_t)i * c + k;
        const float dr = dy[e];
        ag += (double)dr * ((x[e] - mean[i]) * rstd[i]);
        ab += dr;
    }
    if (dgamma) dgamma[k] += (float)ag;
    if (dbeta) dbeta[k] += (float)ab;
}

extern "C" int spo_cuda_layernorm_bwd(spo_dev *d, float *dx, float *dgamma, float *dbeta, const float *dy,
                                      const float *x, const float *mean, const float *rstd, const float *gamma, int m,
                                      int c)
{
    (void)d;
    static const char fn[] = "spo_layernorm_bwd";
    if (dx) {
        k_ln_dx<<<(unsigned)m, NT>>>(dx, dy, x, mean, rstd, gamma, c);
        SPO_CU_LAUNCHED(fn);
    }
    if (dgamma || dbeta) {
        k_ln_dgb<<<(c + NT - 1) / NT, NT>>>(dgamma, dbeta, dy, x, mean, rstd, m, c);
        SPO_CU_LAUNCHED(fn);
    }
    return SPO_OK;
}
