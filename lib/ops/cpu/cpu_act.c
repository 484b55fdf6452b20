/* cpu_act.c — elementwise activations on the CPU.
 *   silu(x)       = x * sigmoid(x)                  silu'  = s (1 + x (1 - s))
 *   gelu(x)       = x/2 (1 + erf(x / sqrt 2))       gelu'  = Phi(x) + x phi(x)
 *   quick_gelu(x) = x * sigmoid(1.702 x)            qgelu' = s + 1.702 x s (1 - s)
 *   geglu: x (m, 2c) -> y (m, c) = x[:, :c] * gelu(x[:, c:])  (diffusers GEGLU:
 *   hidden, gate = proj(x).chunk(2, -1); hidden * gelu(gate))
 * exp and erf are the vectorisable ones of lib/ops/cpu/cpu_math.h; the loops run in
 * chunks on the device's threads (lib/ops/cpu/cpu_pool.c). */
#include <math.h>

#include "ops/cpu/cpu_math.h"
#include "ops/ops_impl.h"

#define INV_SQRT2 0.70710678118654752f
#define INV_SQRT_2PI 0.39894228040143268f
#define QUICK 1.702f

static inline float sigmoid(float x) { return 1.0f / (1.0f + spo_expf(-x)); }
static inline float gelu(float x) { return 0.5f * x * (1.0f + spo_erff(x * INV_SQRT2)); }
static inline float gelu_grad(float x)
{
    return 0.5f * (1.0f + spo_erff(x * INV_SQRT2)) + x * INV_SQRT_2PI * spo_expf(-0.5f * x * x);
}

void spo_cpu_erff_n(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = spo_erff(x[i]);
}

typedef struct {
    spo_act a;
    float *y;
    const float *x, *dy;
    int c; /* geglu */
} act_job;

static void fwd_task(void *ctx, size_t lo, size_t hi, int worker)
{
    const act_job *j = ctx;
    float *y = j->y;
    const float *x = j->x;
    switch (j->a) {
    case SPO_ACT_SILU:
        for (size_t i = lo; i < hi; i++) y[i] = x[i] * sigmoid(x[i]);
        break;
    case SPO_ACT_GELU:
        for (size_t i = lo; i < hi; i++) y[i] = gelu(x[i]);
        break;
    case SPO_ACT_QUICK_GELU:
        for (size_t i = lo; i < hi; i++) y[i] = x[i] * sigmoid(QUICK * x[i]);
        break;
    }
}

int spo_cpu_act_fwd(spo_dev *d, spo_act a, float *y, const float *x, size_t n)
{
    act_job j = {.a = a, .y = y, .x = x};
    spo_cpu_parallel_for(d, n, SPO_CPU_CHUNK, fwd_task, &j);
    return SPO_OK;
}

static void bwd_task(void *ctx, size_t lo, size_t hi, int worker)
{
    const act_job *j = ctx;
    float *dx = j->y;
    const float *x = j->x, *dy = j->dy;
    switch (j->a) {
    case SPO_ACT_SILU:
        for (size_t i = lo; i < hi; i++) {
            float s = sigmoid(x[i]);
            dx[i] += dy[i] * s * (1.0f + x[i] * (1.0f - s));
        }
        break;
    case SPO_ACT_GELU:
        for (size_t i = lo; i < hi; i++) dx[i] += dy[i] * gelu_grad(x[i]);
        break;
    case SPO_ACT_QUICK_GELU:
        for (size_t i = lo; i < hi; i++) {
            float s = sigmoid(QUICK * x[i]);
            dx[i] += dy[i] * (s + QUICK * x[i] * s * (1.0f - s));
        }
        break;
    }
}

int spo_cpu_act_bwd(spo_dev *d, spo_act a, float *dx, const float *dy, const float *x, size_t n)
{
    act_job j = {.a = a, .y = dx, .x = x, .dy = dy};
    spo_cpu_parallel_for(d, n, SPO_CPU_CHUNK, bwd_task, &j);
    return SPO_OK;
}

/* row i */
static void geglu_fwd_row(const void *ctx, size_t i)
{
    const act_job *j = ctx;
    const int c = j->c;
    const float *h = j->x + i * 2 * c, *g = h + c;
    float *yr = j->y + i * c;
    for (int k = 0; k < c; k++) yr[k] = h[k] * gelu(g[k]);
}

int spo_cpu_geglu_fwd(spo_dev *d, float *y, const float *x, int m, int c)
{
    act_job j = {.y = y, .x = x, .c = c};
    return spo_cpu_rows(d, (size_t)m, (size_t)c, geglu_fwd_row, &j);
}

/* dx[:, :c] += dy * gelu(gate); dx[:, c:] += dy * hidden * gelu'(gate), row i */
static void geglu_bwd_row(const void *ctx, size_t i)
{
    const act_job *j = ctx;
    const int c = j->c;
    const float *h = j->x + i * 2 * c, *g = h + c, *dr = j->dy + i * c;
    float *dh = j->y + i * 2 * c, *dg = dh + c;
    for (int k = 0; k < c; k++) { /* Phi(g) = (1 + erf(g / sqrt 2)) / 2 once for both */
        const float phi = 0.5f * (1.0f + spo_erff(g[k] * INV_SQRT2));
        dh[k] += dr[k] * (g[k] * phi);
        dg[k] += dr[k] * h[k] * (phi + g[k] * INV_SQRT_2PI * spo_expf(-0.5f * g[k] * g[k]));
    }
}

int spo_cpu_geglu_bwd(spo_dev *d, float *dx, const float *dy, const float *x, int m, int c)
{
    act_job j = {.y = dx, .x = x, .dy = dy, .c = c};
    return spo_cpu_rows(d, (size_t)m, (size_t)c, geglu_bwd_row, &j);
}
