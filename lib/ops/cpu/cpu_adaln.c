/* cpu_adaln.c — adaLN modulation on the CPU (DiT blocks of the step-aware
 * preference model): modulate and the gated residual, host loops over
 * (b, t, c) with per-sample rows of stride ld. Arguments were checked by
 * lib/ops/ops.c. */
#include "ops/ops_impl.h"

int spo_cpu_modulate_fwd(spo_dev *d, float *y, const float *x, const float *shift, const float *scale, int ld, int b,
                         int t, int c)
{
    (void)d;
    for (int i = 0; i < b; i++) {
        const float *sh = shift + (size_t)i * ld, *sc = scale + (size_t)i * ld;
        for (int j = 0; j < t; j++) {
            size_t r = ((size_t)i * t + j) * c;
            for (int k = 0; k < c; k++) y[r + k] = x[r + k] * (1.0f + sc[k]) + sh[k];
        }
    }
    return SPO_OK;
}

int spo_cpu_gate_add_fwd(spo_dev *d, float *x, const float *y, const float *gate, int ld, int b, int t, int c)
{
    (void)d;
    for (int i = 0; i < b; i++) {
        const float *g = gate + (size_t)i * ld;
        for (int j = 0; j < t; j++) {
            size_t r = ((size_t)i * t + j) * c;
            for (int k = 0; k < c; k++) x[r + k] += g[k] * y[r + k];
        }
    }
    return SPO_OK;
}
