/* test_philox.c — Philox 4x32-10 known answers (Random123 kat_vectors), the
 * normal stream's mapping, accuracy, statistics and independence. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/philox.h"

/* Random123 tests/kat_vectors, the three "philox4x32 10" lines:
 * counter[4] key[2] -> output[4] */
static void test_kat(void **state)
{
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
         0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
         0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int t = 0; t < 3; t++) {
        uint32_t out[4];
        spo_philox4x32_10(kat[t], kat[t] + 4, out);
        for (int i = 0; i < 4; i++) assert_int_equal(out[i], kat[t][6 + i]);
        /* out may alias ctr */
        uint32_t c[4] = {kat[t][0], kat[t][1], kat[t][2], kat[t][3]};
        spo_philox4x32_10(c, kat[t] + 4, c);
        assert_memory_equal(c, out, sizeof out);
    }
}

static void test_unit_range(void **state)
{
    assert_true(spo_u32_to_unit(0) > 0.0f);
    assert_true(spo_u32_to_unit(0xffffffffu) < 1.0f);
    assert_true(spo_u32_to_unit(0) == ldexpf(1.0f, -24));
    assert_true(spo_u32_to_unit(0xffffffffu) == 1.0f - ldexpf(1.0f, -24));
    assert_true(spo_u32_to_unit(0x80000000u) == 0.5f + ldexpf(1.0f, -24));
}

/* our log and sin/cos against libm in double, over the whole input range */
static void test_accuracy(void **state)
{
    double worst_log = 0, worst_sc = 0;
    for (uint32_t k = 0; k < (1u << 23); k += 997) {
        double u = (2.0 * k + 1.0) * ldexp(1.0, -24);
        double lg = spo_philox_log_unit(2u * k + 1u);
        double err = fabs(lg - log(u)) / fmax(fabs(log(u)), 1e-30);
        if (err > worst_log) worst_log = err;
        float c, s;
        spo_philox_sincos_unit(k, &c, &s);
        double a = 2.0 * M_PI * u;
        double e2 = fmax(fabs(c - cos(a)), fabs(s - sin(a)));
        if (e2 > worst_sc) worst_sc = e2;
    }
    /* about one float ulp (measured over all k: 1.5e-7 and 9.7e-8) */
    assert_true(worst_log < 3e-7);
    assert_true(worst_sc < 2e-7);
    /* the extremes */
    uint32_t kmax = (1u << 23) - 1;
    assert_true(spo_philox_log_unit(1) < 0.0f);
    assert_true(spo_philox_log_unit(2u * kmax + 1u) < 0.0f);
    assert_true(fabs(spo_philox_log_unit(1) - log(ldexp(1.0, -24))) < 1e-5);
}

/* The mapping in philox.h, recomputed here in double from the raw words. */
static void test_mapping(void **state)
{
    const uint64_t seed = 0x0123456789abcdefull;
    float z[10];
    spo_normal_fill(z, 10, seed, 7, 3, 2);
    for (uint32_t b = 0; b < 3; b++) {
        uint32_t key[2] = {0x89abcdefu, 0x01234567u}, ctr[4] = {b, 7, 3, 2}, w[4];
        spo_philox4x32_10(ctr, key, w);
        for (int p = 0; p < 2; p++) {
            double u0 = (2.0 * (w[2 * p] >> 9) + 1) * ldexp(1.0, -24);
            double u1 = (2.0 * (w[2 * p + 1] >> 9) + 1) * ldexp(1.0, -24);
            double r = sqrt(-2.0 * log(u0));
            size_t i = 4 * b + 2 * p;
            if (i < 10) assert_true(fabs(z[i] - r * cos(2 * M_PI * u1)) < 2e-6);
            if (i + 1 < 10) assert_true(fabs(z[i + 1] - r * sin(2 * M_PI * u1)) < 2e-6);
        }
        for (int j = 0; j < 4; j++) assert_int_equal(spo_uniform_u32(seed, 7, 3, 2, 4 * b + j), w[j]);
    }
    /* frozen values (seed 42, stream (0,0,0); an independent Python
     * Philox + Box-Muller in double gives -0.9701897, 0.1940190, -1.2356201,
     * 1.9239270, -0.0731815, 0.1391375, -1.1066650, 0.3266829): the
     * mapping must never change, saved noise and the GPU depend on it */
    static const uint32_t frozen[8] = {0xbf785e59, 0x3e46acec, 0xbf9e28cd, 0x3ff6433e,
                                       0xbd95e033, 0x3e0e7a13, 0xbf8da733, 0x3ea742fd};
    float f[8];
    spo_normal_fill(f, 8, 42, 0, 0, 0);
    for (int i = 0; i < 8; i++) {
        uint32_t bits;
        memcpy(&bits, &f[i], 4);
        if (bits != frozen[i]) print_error("z[%d] = %.9g bits 0x%08x\n", i, f[i], bits);
        assert_int_equal(bits, frozen[i]);
    }
}

static void test_stats(void **state)
{
    size_t n = 1000000;
    float *z = malloc(n * sizeof *z);
    assert_non_null(z);
    spo_normal_fill(z, n, 1234, 0, 0, 0);
    double s = 0, s2 = 0, s4 = 0;
    size_t tail = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(isfinite(z[i]));
        s += z[i];
        s2 += (double)z[i] * z[i];
        s4 += (double)z[i] * z[i] * z[i] * z[i];
        if (fabsf(z[i]) > 2.0f) tail++;
    }
    double mean = s / n, var = s2 / n - mean * mean, kurt = s4 / n / (var * var);
    /* bounds are about 5 standard errors */
    assert_true(fabs(mean) < 0.005);
    assert_true(fabs(var - 1.0) < 0.01);
    assert_true(fabs(kurt - 3.0) < 0.05);
    assert_true(fabs((double)tail / n - 0.0455) < 0.0015);
    /* each lane of a block on its own (cos and sin halves) */
    for (int lane = 0; lane < 4; lane++) {
        double m = 0, v = 0;
        for (size_t i = lane; i < n; i += 4) m += z[i];
        m /= n / 4;
        for (size_t i = lane; i < n; i += 4) v += (z[i] - m) * (z[i] - m);
        v /= n / 4;
        assert_true(fabs(m) < 0.01);
        assert_true(fabs(v - 1.0) < 0.02);
    }
    free(z);
}

static double corr(const float *a, const float *b, size_t n)
{
    double sab = 0, saa = 0, sbb = 0;
    for (size_t i = 0; i < n; i++) {
        sab += (double)a[i] * b[i];
        saa += (double)a[i] * a[i];
        sbb += (double)b[i] * b[i];
    }
    return sab / sqrt(saa * sbb);
}

static void test_streams(void **state)
{
    enum { N = 100000 };
    static float a[N], b[N];
    /* deterministic */
    spo_normal_fill(a, N, 99, 5, 6, 7);
    spo_normal_fill(b, N, 99, 5, 6, 7);
    assert_memory_equal(a, b, sizeof a);
    /* any change of seed (either half), prompt, step or child: another stream */
    const uint64_t seeds[] = {100, 99 | (1ull << 32), 99, 99, 99};
    const uint32_t pr[] = {5, 5, 4, 5, 5}, st[] = {6, 6, 6, 7, 6}, ch[] = {7, 7, 7, 7, 8};
    for (int k = 0; k < 5; k++) {
        spo_normal_fill(b, N, seeds[k], pr[k], st[k], ch[k]);
        size_t same = 0;
        for (size_t i = 0; i < N; i++) same += a[i] == b[i];
        assert_true(same < 10);
        assert_true(fabs(corr(a, b, N)) < 0.02); /* 6 sigma */
    }
    /* neighbouring elements inside one stream are uncorrelated too */
    assert_true(fabs(corr(a, a + 1, N - 1)) < 0.02);
    assert_true(fabs(corr(a, a + 4, N - 4)) < 0.02);
}

/* element i does not depend on n (nor on where a fill starts) */
static void test_prefix(void **state)
{
    float ref[64], z[64];
    spo_normal_fill(ref, 64, 7, 1, 2, 3);
    for (size_t n = 0; n <= 64; n++) {
        memset(z, 0xff, sizeof z);
        spo_normal_fill(z, n, 7, 1, 2, 3);
        assert_memory_equal(z, ref, n * sizeof *z);
        for (size_t i = n; i < 64; i++) assert_int_equal(((uint32_t *)z)[i], 0xffffffffu);
    }
    float q[4];
    spo_philox_normal4(7, 1, 2, 3, 5, q);
    assert_memory_equal(q, ref + 20, sizeof q);
}

static void test_uniform(void **state)
{
    /* counts of u % 4 over the choice child: near uniform */
    size_t cnt[4] = {0};
    for (uint64_t i = 0; i < 40000; i++) cnt[spo_uniform_u32(5, 1, 2, SPO_PHILOX_CHILD_CHOICE, i) % 4]++;
    for (int k = 0; k < 4; k++) assert_true(cnt[k] > 9500 && cnt[k] < 10500);
    assert_int_equal(spo_uniform_u32(5, 1, 2, 3, 17), spo_uniform_u32(5, 1, 2, 3, 17));
}

#ifdef SPO_HAVE_CUDA
#include <cuda_runtime_api.h>

/* the GPU kernel gives the CPU's numbers bit for bit (skipped without a GPU) */
static void test_cuda(void **state)
{
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
        print_message("no CUDA device: skipped\n");
        skip();
    }
    static const size_t sizes[] = {1, 3, 4, 5, 4097, 1000003};
    static const uint64_t seeds[] = {0, 42, 0xfedcba9876543210ull};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        size_t n = sizes[k];
        float *cpu = malloc(n * sizeof *cpu), *gpu = malloc(n * sizeof *gpu), *dev = NULL;
        assert_true(cpu && gpu);
        assert_int_equal(cudaMalloc((void **)&dev, n * sizeof *dev), cudaSuccess);
        uint64_t seed = seeds[k % 3];
        spo_normal_fill(cpu, n, seed, (uint32_t)k, 7, 3);
        assert_int_equal(spo_cuda_normal_fill(dev, n, seed, (uint32_t)k, 7, 3), 0);
        assert_int_equal(cudaMemcpy(gpu, dev, n * sizeof *gpu, cudaMemcpyDeviceToHost), cudaSuccess);
        size_t diff = 0;
        for (size_t i = 0; i < n; i++) diff += memcmp(&cpu[i], &gpu[i], sizeof(float)) != 0;
        if (diff) print_error("n=%zu: %zu of %zu differ\n", n, diff, n);
        assert_int_equal(diff, 0);
        cudaFree(dev);
        free(cpu);
        free(gpu);
    }
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kat),      cmocka_unit_test(test_unit_range), cmocka_unit_test(test_accuracy),
        cmocka_unit_test(test_mapping),  cmocka_unit_test(test_stats),      cmocka_unit_test(test_streams),
        cmocka_unit_test(test_prefix),   cmocka_unit_test(test_uniform),
#ifdef SPO_HAVE_CUDA
        cmocka_unit_test(test_cuda),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
