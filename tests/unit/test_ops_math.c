/* test_ops_math.c — the vectorisable exp and erf of the CPU kernels
 * against double exp and erf: at most 2 ulp over the whole float range
 * (every 997th float), and the special values. Twice: through
 * spo_cpu_expf_n / spo_cpu_erff_n (compiled with the kernels' flags, the
 * AVX-512 loop of lib/ops/cpu/cpu_vexp.c where the CPU has it), and the inline
 * spo_expf / spo_erff of lib/ops/cpu/cpu_math.h compiled here with the tests'
 * flags (plain C, as in a NATIVE=0 build). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opcheck.h"
#include "ops/cpu/cpu_math.h"
#include "ops/ops_impl.h"

#define MAX_ULP 2.0
#define BATCH 4096
#define STRIDE 997 /* test every STRIDE-th float */

static float u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* |got - ref| in units of the last place of the float nearest ref */
static double ulps(float got, double ref)
{
    if (isnan(ref)) return isnan(got) ? 0.0 : INFINITY;
    const float rf = (float)ref;
    if (isinf(rf)) return got == rf ? 0.0 : INFINITY;
    if (isnan(got) || isinf(got)) return INFINITY;
    double ulp;
    if (fabs(ref) < FLT_MIN)
        ulp = ldexp(1.0, -149);
    else {
        int e;
        frexp(fabs(ref), &e);
        ulp = ldexp(1.0, e - 24);
    }
    return fabs((double)got - ref) / ulp;
}

typedef void (*vecfn)(float *y, const float *x, size_t n);

/* the worst error of f against ref over every 997th float (both signs) */
static double sweep(vecfn f, double (*ref)(double), float *worst)
{
    float *x = malloc(BATCH * sizeof *x), *y = malloc(BATCH * sizeof *y);
    assert_non_null(x), assert_non_null(y);
    double me = 0.0;
    size_t n = 0;
    for (uint64_t u = 0; u <= UINT32_MAX; u += STRIDE) {
        float v = u2f((uint32_t)u);
        if (isnan(v)) continue;
        x[n++] = v;
        if (n < BATCH && u + STRIDE <= UINT32_MAX) continue;
        f(y, x, n);
        for (size_t i = 0; i < n; i++) {
            double e = ulps(y[i], ref((double)x[i]));
            if (e > me) me = e, *worst = x[i];
        }
        n = 0;
    }
    free(x), free(y);
    return me;
}

static void test_exp_range(void **state)
{
    (void)state;
    float at = 0;
    double e = sweep(spo_cpu_expf_n, exp, &at);
    printf("  exp: max %.3f ulp (at %a)\n", e, at);
    if (!(e <= MAX_ULP)) fail_msg("exp: %.3f ulp at %a", e, at);
}

static void test_erf_range(void **state)
{
    (void)state;
    float at = 0;
    double e = sweep(spo_cpu_erff_n, erf, &at);
    printf("  erf: max %.3f ulp (at %a)\n", e, at);
    if (!(e <= MAX_ULP)) fail_msg("erf: %.3f ulp at %a", e, at);
}

static void exp_here(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = spo_expf(x[i]);
}

static void erf_here(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = spo_erff(x[i]);
}

static void test_generic_range(void **state)
{
    (void)state;
    float at = 0;
    double e = sweep(exp_here, exp, &at);
    printf("  exp (plain C): max %.3f ulp (at %a)\n", e, at);
    if (!(e <= MAX_ULP)) fail_msg("exp: %.3f ulp at %a", e, at);
    e = sweep(erf_here, erf, &at);
    printf("  erf (plain C): max %.3f ulp (at %a)\n", e, at);
    if (!(e <= MAX_ULP)) fail_msg("erf: %.3f ulp at %a", e, at);
}

static void test_special(void **state)
{
    (void)state;
    const float x[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, 88.72283f, 88.7229f, -87.33654f, -103.97208f,
                       -103.98f, -200.0f, 1e-30f, -1e-30f, 4.0f, -4.0f, 1.0f, -1.0f, 3.9f};
    const size_t n = sizeof x / sizeof x[0];
    float e[sizeof x / sizeof x[0]], r[sizeof x / sizeof x[0]];
    spo_cpu_expf_n(e, x, n);
    spo_cpu_erff_n(r, x, n);
    for (size_t i = 0; i < n; i++) {
        assert_true(ulps(e[i], exp((double)x[i])) <= MAX_ULP);
        assert_true(ulps(r[i], erf((double)x[i])) <= MAX_ULP);
        float g = spo_expf(x[i]), h = spo_erff(x[i]);
        assert_true(ulps(g, exp((double)x[i])) <= MAX_ULP);
        assert_true(ulps(h, erf((double)x[i])) <= MAX_ULP);
    }
    /* exp(x - s) */
    float xs[3] = {3.0f, 2.0f, -INFINITY}, ys[3];
    spo_cpu_exp_shift_n(ys, xs, 3.0f, 3);
    assert_true(ys[0] == 1.0f && ulps(ys[1], exp(-1.0)) <= MAX_ULP && ys[2] == 0.0f);
    assert_true(e[0] == 1.0f && e[1] == 1.0f); /* exp(0) = 1 exactly: the softmax's largest term */
    assert_true(isinf(e[2]) && e[2] > 0 && e[3] == 0.0f && isnan(e[4]) && isnan(e[5]));
    assert_true(r[0] == 0.0f && !signbit(r[0]) && r[1] == 0.0f && signbit(r[1]));
    assert_true(r[2] == 1.0f && r[3] == -1.0f && isnan(r[4]) && isnan(r[5]));
    /* in place */
    float z[3] = {1.0f, -2.0f, 0.5f};
    spo_cpu_expf_n(z, z, 3);
    assert_true(ulps(z[1], exp(-2.0)) <= MAX_ULP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exp_range),
        cmocka_unit_test(test_erf_range),
        cmocka_unit_test(test_generic_range),
        cmocka_unit_test(test_special),
    };
    OPCHECK_MAIN_CPU(tests, NULL, NULL);
}
