/* cpu_vexp.c — exp of a float array less a shift, the softmax's inner loop:
 * y[i] = exp(x[i] - s). The same algorithm and constants as spo_expf
 * (lib/ops/cpu/cpu_math.h), so the same results where FMA contracts both; with
 * AVX-512 the loop is written with intrinsics (vscalefps scales by 2^k in
 * one instruction, overflow and subnormals included), else it is the
 * vectorisable C loop. */
#include "ops/cpu/cpu_math.h"
#include "ops/ops_impl.h"

#if defined(__AVX512F__)
#include <immintrin.h>

static inline __m512 exp16(__m512 x)
{
    const __m512 shifter = _mm512_set1_ps(12582912.0f);
    x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x); /* a NaN x is returned as it is */
    x = _mm512_min_ps(_mm512_set1_ps(89.0f), x);
    const __m512 kf = _mm512_sub_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), shifter), shifter);
    __m512 r = _mm512_fnmadd_ps(kf, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(kf, _mm512_set1_ps(1.428606820309417232e-6f), r);
    __m512 p = _mm512_set1_ps(0.001394110843f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.008375126398f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.0416663529f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.1666641551f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5000000047f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.000000038f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, kf);
}

void spo_cpu_exp_shift_n(float *y, const float *x, float s, size_t n)
{
    const __m512 vs = _mm512_set1_ps(s);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), vs)));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(y + i, m, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vs)));
    }
}

#else

void spo_cpu_exp_shift_n(float *y, const float *x, float s, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = spo_expf(x[i] - s);
}

#endif

void spo_cpu_expf_n(float *y, const float *x, size_t n) { spo_cpu_exp_shift_n(y, x, 0.0f, n); }
