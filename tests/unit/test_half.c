/* test_half.c — fp16/bf16 conversion: exact known values, rounding ties,
 * subnormals, inf/NaN, exhaustive fp16 round trip, and (where the compiler
 * has _Float16) agreement with the compiler's own conversion. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/half.h"

static float f(uint32_t u) { return spo_bits_f32(u); }

static void test_f16_known(void **s)
{
    (void)s;
    assert_true(spo_half_to_float(0x3c00) == 1.0f);
    assert_true(spo_half_to_float(0xc000) == -2.0f);
    assert_true(spo_half_to_float(0x7bff) == 65504.0f);
    assert_true(spo_half_to_float(0x0001) == 0x1p-24f);   /* smallest subnormal */
    assert_true(spo_half_to_float(0x03ff) == 1023 * 0x1p-24f); /* largest subnormal */
    assert_true(spo_half_to_float(0x0400) == 0x1p-14f);   /* smallest normal */
    assert_int_equal(spo_f32_bits(spo_half_to_float(0x8000)), 0x80000000u); /* -0 */
    assert_int_equal(spo_f32_bits(spo_half_to_float(0x0000)), 0);
    assert_true(spo_half_to_float(0x7c00) == INFINITY);
    assert_true(spo_half_to_float(0xfc00) == -INFINITY);
    assert_true(isnan(spo_half_to_float(0x7e00)));
    assert_true(isnan(spo_half_to_float(0x7c01))); /* signalling NaN stays NaN */
    assert_true(spo_half_to_float(0x3555) == 0x1.554p-2f); /* ~1/3 */
}

static void test_f32_to_f16_known(void **s)
{
    (void)s;
    assert_int_equal(spo_float_to_half(1.0f), 0x3c00);
    assert_int_equal(spo_float_to_half(-2.0f), 0xc000);
    assert_int_equal(spo_float_to_half(65504.0f), 0x7bff);
    assert_int_equal(spo_float_to_half(65519.99f), 0x7bff); /* below the tie */
    assert_int_equal(spo_float_to_half(65520.0f), 0x7c00);  /* tie to even: inf */
    assert_int_equal(spo_float_to_half(1e10f), 0x7c00);
    assert_int_equal(spo_float_to_half(-1e10f), 0xfc00);
    assert_int_equal(spo_float_to_half(INFINITY), 0x7c00);
    assert_int_equal(spo_float_to_half(-INFINITY), 0xfc00);
    assert_int_equal(spo_float_to_half(-0.0f), 0x8000);
    assert_int_equal(spo_float_to_half(0.0f), 0x0000);
    uint16_t n = spo_float_to_half(NAN);
    assert_true((n & 0x7c00) == 0x7c00 && (n & 0x3ff) != 0);
    n = spo_float_to_half(f(0x7f800001)); /* NaN with only low payload bits */
    assert_true((n & 0x7c00) == 0x7c00 && (n & 0x3ff) != 0);
    /* ties to even at 1.0: ulp 2^-10 */
    assert_int_equal(spo_float_to_half(1.0f + 0x1p-11f), 0x3c00);          /* tie, even below */
    assert_int_equal(spo_float_to_half(1.0f + 3 * 0x1p-11f), 0x3c02);      /* tie, even above */
    assert_int_equal(spo_float_to_half(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01); /* above the tie */
    assert_int_equal(spo_float_to_half(2047.0f / 1024 + 0x1p-11f), 0x4000); /* carry into exponent */
    /* subnormals */
    assert_int_equal(spo_float_to_half(0x1p-24f), 0x0001);
    assert_int_equal(spo_float_to_half(0x1p-25f), 0x0000);              /* tie with 0: even */
    assert_int_equal(spo_float_to_half(-0x1p-25f), 0x8000);
    assert_int_equal(spo_float_to_half(0x1p-25f * 1.0000001f), 0x0001); /* just above the tie */
    assert_int_equal(spo_float_to_half(3 * 0x1p-25f), 0x0002);          /* 1.5 ulp: tie, even up */
    assert_int_equal(spo_float_to_half(5 * 0x1p-25f), 0x0002);          /* 2.5 ulp: tie, even down */
    assert_int_equal(spo_float_to_half(1023 * 0x1p-24f), 0x03ff);
    assert_int_equal(spo_float_to_half(1023.5f * 0x1p-24f), 0x0400);    /* rounds up to the smallest normal */
    assert_int_equal(spo_float_to_half(0x1p-14f), 0x0400);
    assert_int_equal(spo_float_to_half(1e-30f), 0x0000);
    assert_int_equal(spo_float_to_half(f(0x00000001)), 0x0000);         /* fp32 subnormal */
}

static void test_f16_roundtrip_all(void **s)
{
    (void)s;
    for (uint32_t h = 0; h < 65536; h++) {
        float x = spo_half_to_float((uint16_t)h);
        uint16_t back = spo_float_to_half(x);
        int nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        if (nan) assert_int_equal(back, h | 0x200); /* quiet bit set, payload kept */
        else assert_int_equal(back, h);
        if (!nan && (h & 0x7fff) < 0x7bff) { /* midpoint to the next value rounds to the even one */
            float y = spo_half_to_float((uint16_t)(h + 1));
            double mid = ((double)x + y) / 2;
            uint16_t r = spo_float_to_half((float)mid);
            assert_int_equal(r, (h & 1) ? h + 1 : h);
        }
    }
}

#ifdef __FLT16_MAX__
static void test_f16_vs_compiler(void **s)
{
    (void)s;
    uint32_t x = 12345;
    for (int i = 0; i < 2000000; i++) {
        x = x * 1664525u + 1013904223u;
        /* bias toward the fp16 range: exponents 90..150 */
        uint32_t u = (x & 0x807fffffu) | ((90 + (x >> 8) % 61) << 23);
        if (i & 1) u = x;
        float v = f(u);
        if (isnan(v)) continue;
        _Float16 c = (_Float16)v;
        uint16_t cb;
        memcpy(&cb, &c, 2);
        assert_int_equal(spo_float_to_half(v), cb);
    }
}
#endif

static void test_bf16(void **s)
{
    (void)s;
    assert_int_equal(spo_float_to_bf16(1.0f), 0x3f80);
    assert_true(spo_bf16_to_float(0x3f80) == 1.0f);
    assert_true(spo_bf16_to_float(0xc040) == -3.0f);
    assert_int_equal(spo_float_to_bf16(f(0x3f808000)), 0x3f80); /* tie, even below */
    assert_int_equal(spo_float_to_bf16(f(0x3f818000)), 0x3f82); /* tie, even above */
    assert_int_equal(spo_float_to_bf16(f(0x3f808001)), 0x3f81);
    assert_int_equal(spo_float_to_bf16(f(0x7f7fffff)), 0x7f80); /* FLT_MAX rounds to inf */
    assert_int_equal(spo_float_to_bf16(INFINITY), 0x7f80);
    assert_int_equal(spo_float_to_bf16(-INFINITY), 0xff80);
    assert_int_equal(spo_float_to_bf16(-0.0f), 0x8000);
    assert_int_equal(spo_float_to_bf16(f(0x00010000)), 0x0001); /* subnormal kept */
    assert_int_equal(spo_float_to_bf16(f(0x00008000)), 0x0000); /* subnormal tie to even */
    uint16_t n = spo_float_to_bf16(f(0x7f800001)); /* NaN whose payload is only in low bits */
    assert_true((n & 0x7f80) == 0x7f80 && (n & 0x7f));
    assert_true(isnan(spo_bf16_to_float(0x7fc0)));
    for (uint32_t b = 0; b < 65536; b++) {
        float v = spo_bf16_to_float((uint16_t)b);
        if (isnan(v)) continue;
        assert_int_equal(spo_float_to_bf16(v), b);
    }
}

static void test_arrays(void **s)
{
    (void)s;
    float src[5] = {1.0f, -2.0f, 65504.0f, 0x1p-24f, 0.5f}, back[5];
    uint16_t h[5], b[5];
    spo_f32_to_f16(h, src, 5);
    assert_int_equal(h[0], 0x3c00);
    assert_int_equal(h[2], 0x7bff);
    assert_int_equal(h[3], 0x0001);
    spo_f16_to_f32(back, h, 5);
    for (int i = 0; i < 5; i++) assert_true(back[i] == src[i]);
    spo_f32_to_bf16(b, src, 5);
    assert_int_equal(b[0], 0x3f80);
    assert_int_equal(b[4], 0x3f00);
    spo_bf16_to_f32(back, b, 5);
    assert_true(back[1] == -2.0f && back[4] == 0.5f);
    assert_true(back[2] == 65536.0f); /* 65504 needs 11 significant bits: bf16 rounds */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_known),
        cmocka_unit_test(test_f32_to_f16_known),
        cmocka_unit_test(test_f16_roundtrip_all),
#ifdef __FLT16_MAX__
        cmocka_unit_test(test_f16_vs_compiler),
#endif
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_arrays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
