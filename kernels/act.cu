// act.cu — elementwise activations on CUDA (mirrors lib/ops/cpu/cpu_act.c).
//   silu(x)       = x * sigmoid(x)                  silu'  = s (1 + x (1 - s))
//   gelu(x)       = x/2 (1 + erf(x / sqrt 2))       gelu'  = Phi(x) + x phi(x)
//   quick_gelu(x) = x * sigmoid(1.702 x)            qgelu' = s + 1.702 x s (1 - s)
//   geglu: x (m, 2c) -> y (m, c) = x[:, :c] * gelu(x[:, c:])
// expf and erff are CUDA's accurate ones (no fast-math). act_fwd's y may
// equal x; the backward ops accumulate into dx.
#include "cuda_common.cuh"

#define INV_SQRT2 0.70710678118654752f
#define INV_SQRT_2PI 0.39894228040143268f
#define QUICK 1.702f

static __device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
static __device__ __forceinline__ float gelu(float x) { return 0.5f * x * (1.0f + erff(x * INV_SQRT2)); }
static __device__ __forceinline__ float gelu_grad(float x)
{
    return 0.5f * (1.0f + erff(x * INV_SQRT2)) + x * INV_SQRT_2PI * expf(-0.5f * x * x);
}

static __global__ void k_act_fwd(spo_act a, float *y, const float *x, size_t n)
{
    SPO_CU_FOR(i, n)
    {
        const float v = x[i];
        float r;
        switch (a) {
        case SPO_ACT_SILU: r = v * sigmoid(v); break;
        case SPO_ACT_GELU: r = gelu(v); break;
        default: r = v * sigmoid(QUICK * v); break; // SPO_ACT_QUICK_GELU (checked by lib/ops/ops.c)
        }
        y[i] = r;
    }
}

static __global__ void k_act_bwd(spo_act a, float *dx, const float *dy, const float *x, size_t n)
{
    SPO_CU_FOR(i, n)
    {
        const float v = x[i];
        float g;
        switch (a) {
        case SPO_ACT_SILU: {
            const float s = sigmoid(v);
            g = s * (1.0f + v * (1.0f - s));
            break;
        }
        case SPO_ACT_GELU: g = gelu_grad(v); break;
        default: {
            const float s = sigmoid(QUICK * v);
            g = s + QUICK * v * s * (1.0f - s);
            break;
        }
        }
        dx[i] += dy[i] * g;
    }
}

extern "C" int spo_cuda_act_fwd(spo_dev *d, spo_act a, float *y, const float *x, size_t n)
{
    (void)d;
    k_act_fwd<<<spo_cu_blocks(n), SPO_CU_THREADS>>>(a, y, x, n);
    SPO_CU_LAUNCHED("spo_act_fwd");
    return SPO_OK;
}

extern "C" int spo_cuda_act_bwd(spo_dev *d, spo_act a, float *dx, const float *dy, const float *x, size_t n)
{
    (void)d;
    k_act_bwd<<<spo_cu_blocks(n), SPO_CU_THREADS>>>(a, dx, dy, x, n);
    SPO_CU_LAUNCHED("spo_act_bwd");
    return SPO_OK;
}

// one thread per output element (row i, column k)
static __global__ void k_geglu_fwd(float *y, const float *x, size_t m, int c)
{
    SPO_CU_FOR(e, m * (size_t)c)
    {
        const size_t i = e / (size_t)c, k = e % (size_t)c;
        const float *h = x + i * 2 * c;
        y[e] = h[k] * gelu(h[c + k]);
    }
}

// dx[:, :c] += dy * gelu(gate); dx[:, c:] += dy * hidden * gelu'(gate)
static __global__ void k_geglu_bwd(float *dx, const float *dy, const float *x, size_t m, int c)
{
    SPO_CU_FOR(e, m * (size_t)c)
    {
        const size_t i = e / (size_t)c, k = e % (size_t)c;
        const float *h = x + i * 2 * c;
        float *dh = dx + i * 2 * c;
        const float gk = h[c + k], dr = dy[e];
        const float phi = 0.5f * (1.0f + erff(gk * INV_SQRT2));
        dh[k] += dr * (gk * phi);
        dh[c + k] += dr * h[k] * (phi + gk * INV_SQRT_2PI * expf(-0.5f * gk * gk));
    }
}

extern "C" int spo_cuda_geglu_fwd(spo_dev *d, float *y, const float *x, int m, int c)
{
    (void)d;
    k_geglu_fwd<<<spo_cu_blocks((size_t)m * c), SPO_CU_THREADS>>>(y, x, (size_t)m, c);
    SPO_CU_LAUNCHED("spo_geglu_fwd");
    return SPO_OK;
}

extern "C" int spo_cuda_geglu_bwd(spo_dev *d, float *dx, const float *dy, const float *x, int m, int c)
{
    (void)d;
    k_geglu_bwd<<<spo_cu_blocks((size_t)m * c), SPO_CU_THREADS>>>(dx, dy, x, (size_t)m, c);
    SPO_CU_LAUNCHED("spo_geglu_bwd");
    return SPO_OK;
}
