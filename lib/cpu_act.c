/* cpu_act.c — elementwise activations on the CPU.
 *   silu(x)       = x * sigmoid(x)                  silu'  = s (1 + x (1 - s))
 *   gelu(x)       = x/2 (1 + erf(x / sqrt 2))       gelu'  = Phi(x) + x phi(x)
 *   quick_gelu(x) = x * sigmoid(1.702 x)            qgelu' = s + 1.702 x s (1 - s)
 *   geglu: x (m, 2c) -> y (m, c) = x[:, :c] * gelu(x[:, c:])  (diffusers GEGLU:
 *   hidden, gate = proj(x).chunk(2, -1); hidden * gelu(gate)) */
#include <math.h>

#include "ops_impl.h"

#define INV_SQRT2 0.70710678118654752f
#define INV_SQRT_2PI 0.39894228040143268f
#define QUICK 1.702f

static inline float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
static inline float gelu(float x) { return 0.5f * x * (1.0f + erff(x * INV_SQRT2)); }
static inline float gelu_grad(float x)
{
    return 0.5f * (1.0f + erff(x * INV_SQRT2)) + x * INV_SQRT_2PI * expf(-0.5f * x * x);
}

int spo_cpu_act_fwd(spo_dev *d, spo_act a, float *y, const float *x, size_t n)
{
    (void)d;
    switch (a) {
    case SPO_ACT_SILU:
        for (size_t i = 0; i < n; i++) y[i] = x[i] * sigmoid(x[i]);
        break;
    case SPO_ACT_GELU:
        for (size_t i = 0; i < n; i++) y[i] = gelu(x[i]);
        break;
    case SPO_ACT_QUICK_GELU:
        for (size_t i = 0; i < n; i++) y[i] = x[i] * sigmoid(QUICK * x[i]);
        break;
    }
    return SPO_OK;
}

int spo_cpu_act_bwd(spo_dev *d, spo_act a, float *dx, const float *dy, const float *x, size_t n)
{
    (void)d;
    switch (a) {
    case SPO_ACT_SILU:
        for (size_t i = 0; i < n; i++) {
            float s = sigmoid(x[i]);
            dx[i] += dy[i] * s * (1.0f + x[i] * (1.0f - s));
        }
        break;
    case SPO_ACT_GELU:
        for (size_t i = 0; i < n; i++) dx[i] += dy[i] * gelu_grad(x[i]);
        break;
    case SPO_ACT_QUICK_GELU:
        for (size_t i = 0; i < n; i++) {
            float s = sigmoid(QUICK * x[i]);
            dx[i] += dy[i] * (s + QUICK * x[i] * s * (1.0f - s));
        }
        break;
    }
    return SPO_OK;
}

int spo_cpu_geglu_fwd(spo_dev *d, float *y, const float *x, int m, int c)
{
    (void)d;
    for (int i = 0; i < m; i++) {
        const float *h = x + (size_t)i * 2 * c, *g = h + c;
        float *yr = y + (size_t)i * c;
        for (int j = 0; j < c; j++) yr[j] = h[j] * gelu(g[j]);
    }
    return SPO_OK;
}

/* dx[:, :c] += dy * gelu(gate); dx[:, c:] += dy * hidden * gelu'(gate) */
int spo_cpu_geglu_bwd(spo_dev *d, float *dx, const float *dy, const float *x, int m, int c)
{
    (void)d;
    for (int i = 0; i < m; i++) {
        const float *h = x + (size_t)i * 2 * c, *g = h + c, *dr = dy + (size_t)i * c;
        float *dh = dx + (size_t)i * 2 * c, *dg = dh + c;
        for (int j = 0; j < c; j++) {
            dh[j] += dr[j] * gelu(g[j]);
            dg[j] += dr[j] * h[j] * gelu_grad(g[j]);
        }
    }
    return SPO_OK;
}
