/* cpu_math.h — private to lib/cpu_*.c: exp and erf for float that the
 * compiler can vectorise (no branches, no calls, no tables), and the
 * lane width of the explicit reductions.
 *
 * spo_expf: exp(x) = 2^k exp(r), k = round(x / ln 2), r = x - k ln 2 in
 * [-ln2/2, ln2/2] (Cody-Waite: ln 2 split in a high part with few bits, so
 * k * hi is exact, and a low part); exp(r) by a degree-6 polynomial (a
 * Chebyshev fit, error 2e-9); 2^k built from its bits in two factors so
 * that subnormal results are rounded once. Within 2 ulp of expf over the
 * whole float range (tests/unit/test_ops_math.c), exp(0) = 1 exactly,
 * exp(-inf) = 0, exp(+inf) = +inf, NaN in gives NaN out.
 *
 * spo_erff: |x| < 1: x + x P(x^2), P of degree 6 (fit error 1e-9);
 * 1 <= |x| < 4: 1 - exp(-x^2 + Q(t)), t = (|x| - 2.5) / 1.5, Q of degree 9
 * fitting log(erfc(x)) + x^2 (error 1e-8); |x| >= 4: +-1 (erfc(4) is below
 * half an ulp of 1). Both branches are computed and one selected. Within
 * 2 ulp of erff; NaN in gives NaN out. The polynomial coefficients were
 * fitted with mpmath.chebyfit (Chebyshev interpolation) for this file. */
#ifndef SPO_CPU_MATH_H
#define SPO_CPU_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* reductions keep SPO_LANES independent partial sums (a vector register's
 * worth), combined in a fixed order: results do not depend on the thread
 * count or on the compiler's choice to vectorise */
#define SPO_LANES 16

static inline uint32_t spo_f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float spo_u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline float spo_expf(float x)
{
    const float shifter = 12582912.0f; /* 1.5 * 2^23: x + shifter rounds x to an integer */
    /* below -104 the result rounds to 0, above 89 it overflows; NaN passes both */
    x = x < -104.0f ? -104.0f : x;
    x = x > 89.0f ? 89.0f : x;
    const float kf0 = x * 1.44269504088896341f + shifter;
    const uint32_t kb = spo_f2u(kf0) - spo_f2u(shifter); /* k, two's complement */
    const float kf = kf0 - shifter;
    float r = x - kf * 0.693145751953125f; /* ln 2 high part: exact product */
    r = r - kf * 1.428606820309417232e-6f; /* ln 2 low part */
    float p = 0.001394110843f;
    p = p * r + 0.008375126398f;
    p = p * r + 0.0416663529f;
    p = p * r + 0.1666641551f;
    p = p * r + 0.5000000047f;
    p = p * r + 1.000000038f;
    p = p * r + 1.0f;
    /* 2^k = 2^k1 2^k2, k1 = floor(k/2), k2 = k - k1: k in [-151, 129] keeps
     * both factors normal (the bits are garbage only when x is NaN, and then
     * p is NaN) */
    const uint32_t k1 = (uint32_t)((int32_t)kb >> 1), k2 = kb - k1;
    return p * spo_u2f((k1 + 127u) << 23) * spo_u2f((k2 + 127u) << 23);
}

static inline float spo_erff(float x)
{
    const float a = fabsf(x), u = a * a;
    float ps = 7.875875063e-5f; /* erf(a)/a - 1 as a polynomial in a^2 on [0, 1] */
    ps = ps * u - 0.0008016864287f;
    ps = ps * u + 0.005189087423f;
    ps = ps * u - 0.02685421201f;
    ps = ps * u + 0.1128359472f;
    ps = ps * u - 0.3761262667f;
    ps = ps * u + 0.128379166f; /* 2/sqrt(pi) - 1: a + a ps rounds once */
    const float small = a + a * ps;
    const float ac = a > 4.0f ? 4.0f : a; /* NaN stays NaN */
    const float t = (ac - 2.5f) * (1.0f / 1.5f);
    float q = -2.91503768e-6f; /* log(erfc(a)) + a^2 on [1, 4] */
    q = q * t + 4.140557777e-5f;
    q = q * t - 0.0002208476318f;
    q = q * t + 0.0008814931726f;
    q = q * t - 0.003195386597f;
    q = q * t + 0.01096117247f;
    q = q * t - 0.03664613116f;
    q = q * t + 0.1262392998f;
    q = q * t - 0.5290211238f;
    q = q * t - 1.556815277f;
    const float large = 1.0f - spo_expf(q - ac * ac);
    const float r = a < 1.0f ? small : large;
    return copysignf(r, x);
}

/* sums in double of x (n), x * y (n) and (x - m)^2 (n), each over
 * SPO_LANES partial sums added in a fixed order at the end */
static inline double spo_sum_d(const float *x, size_t n)
{
    double s[SPO_LANES] = {0};
    size_t j = 0;
    for (; j + SPO_LANES <= n; j += SPO_LANES)
        for (int l = 0; l < SPO_LANES; l++) s[l] += x[j + l];
    for (int l = 0; j < n; j++, l++) s[l] += x[j];
    double t = 0.0;
    for (int l = 0; l < SPO_LANES; l++) t += s[l];
    return t;
}

static inline double spo_dot_d(const float *x, const float *y, size_t n)
{
    double s[SPO_LANES] = {0};
    size_t j = 0;
    for (; j + SPO_LANES <= n; j += SPO_LANES)
        for (int l = 0; l < SPO_LANES; l++) s[l] += (double)x[j + l] * y[j + l];
    for (int l = 0; j < n; j++, l++) s[l] += (double)x[j] * y[j];
    double t = 0.0;
    for (int l = 0; l < SPO_LANES; l++) t += s[l];
    return t;
}

static inline double spo_sqdev_d(const float *x, size_t n, double m)
{
    double s[SPO_LANES] = {0};
    size_t j = 0;
    for (; j + SPO_LANES <= n; j += SPO_LANES)
        for (int l = 0; l < SPO_LANES; l++) {
            double t = x[j + l] - m;
            s[l] += t * t;
        }
    for (int l = 0; j < n; j++, l++) {
        double t = x[j] - m;
        s[l] += t * t;
    }
    double t = 0.0;
    for (int l = 0; l < SPO_LANES; l++) t += s[l];
    return t;
}

#endif
