/* test_image.c — bicubic resize and the SPM preprocessing against PyTorch
 * (tests/fixtures/resize.h5, written by tests/reference/resize_fixture.py). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "io/h5io.h"
#include "nn/image.h"

#define FIX "tests/fixtures/resize.h5"

static spo_h5 *fix;

static int setup(void **state)
{
    const char *root = getenv("SPO_ROOT");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root ? root : ".", FIX);
    if (spo_h5_open(&fix, path, NULL, NULL)) {
        fprintf(stderr, "cannot open %s: %s (run from the repository root)\n", path, spo_errmsg());
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    spo_h5_close(fix);
    return 0;
}

static float *read_f32(const char *name, size_t *n, spo_dsinfo *info)
{
    assert_int_equal(spo_h5_info(fix, name, info), SPO_OK);
    *n = 1;
    for (int i = 0; i < info->ndim; i++) *n *= (size_t)info->shape[i];
    float *v = malloc(*n * sizeof *v);
    assert_non_null(v);
    assert_int_equal(spo_h5_read_f32(fix, name, v, *n), SPO_OK);
    return v;
}

static int32_t *read_i32(const char *name, size_t *n)
{
    spo_dsinfo info;
    assert_int_equal(spo_h5_info(fix, name, &info), SPO_OK);
    *n = (size_t)info.shape[0];
    int32_t *v = malloc(*n * sizeof *v);
    assert_non_null(v);
    assert_int_equal(spo_h5_read_i32(fix, name, v, *n), SPO_OK);
    return v;
}

/* |a - b| <= tol * max(1, |b|): relative, absolute near zero */
static double worst(const float *got, const float *want, const int32_t *idx, size_t n)
{
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double g = got[idx ? (size_t)idx[i] : i], r = want[i];
        double e = fabs(g - r) / fmax(1.0, fabs(r));
        if (!(e <= w)) w = e; /* NaN counts as worst */
    }
    return w;
}

static void check_sampled(const float *out, const char *idxname, const char *valname, double tol)
{
    size_t ni, nv;
    int32_t *idx = read_i32(idxname, &ni);
    spo_dsinfo info;
    float *val = read_f32(valname, &nv, &info);
    assert_int_equal(ni, nv);
    double w = worst(out, val, idx, nv);
    printf("  %s: %zu samples, worst rel err %.3g\n", valname, nv, w);
    assert_true(w <= tol);
    free(idx);
    free(val);
}

static void test_resize_224(void **state)
{
    size_t n;
    spo_dsinfo info;
    float *x = read_f32("/input", &n, &info);
    assert_int_equal(info.ndim, 4);
    int N = (int)info.shape[0], C = (int)info.shape[1], H = (int)info.shape[2], W = (int)info.shape[3];
    int oh, ow;
    spo_clip_resize_size(H, W, SPO_CLIP_SIZE, &oh, &ow);
    assert_int_equal(oh, 224);
    assert_int_equal(ow, 336);
    float *out = malloc((size_t)N * C * oh * ow * sizeof *out);
    assert_int_equal(spo_resize_bicubic(x, N, C, H, W, oh, ow, out), SPO_OK);
    check_sampled(out, "/resize_idx", "/resize_val", 1e-5);
    free(out);
    free(x);
}

static void test_small_up_down(void **state)
{
    size_t n, nu, nd;
    spo_dsinfo info, iu, id;
    float *x = read_f32("/small/input", &n, &info);
    float *up = read_f32("/small/up", &nu, &iu), *down = read_f32("/small/down", &nd, &id);
    float *out = malloc(nu * sizeof *out);
    assert_int_equal(spo_resize_bicubic(x, 1, 3, 9, 13, (int)iu.shape[2], (int)iu.shape[3], out), SPO_OK);
    double w = worst(out, up, NULL, nu);
    printf("  up 9x13 -> 20x31: worst rel err %.3g\n", w);
    assert_true(w <= 1e-5);
    assert_int_equal(spo_resize_bicubic(x, 1, 3, 9, 13, (int)id.shape[2], (int)id.shape[3], out), SPO_OK);
    w = worst(out, down, NULL, nd);
    printf("  down 9x13 -> 5x7: worst rel err %.3g\n", w);
    assert_true(w <= 1e-5);
    free(out), free(x), free(up), free(down);
}

static void run_pre(const char *in_name, const char *idx, const char *val)
{
    size_t n;
    spo_dsinfo info;
    float *x = read_f32(in_name, &n, &info);
    int N = (int)info.shape[0], H = (int)info.shape[2], W = (int)info.shape[3];
    float *out = malloc((size_t)N * 3 * 224 * 224 * sizeof *out);
    assert_int_equal(spo_clip_preprocess(x, N, H, W, SPO_CLIP_SIZE, out), SPO_OK);
    check_sampled(out, idx, val, 1e-5);
    free(out);
    free(x);
}

static void test_preprocess(void **state) { run_pre("/input", "/pre_idx", "/pre_val"); }

/* 32x47 -> 224x329: crop left round(52.5) = 52 (half to even), and transposed */
static void test_preprocess_odd(void **state)
{
    int top, left;
    spo_center_crop_origin(224, 329, 224, 224, &top, &left);
    assert_int_equal(top, 0);
    assert_int_equal(left, 52);
    spo_center_crop_origin(227, 224, 224, 224, &top, &left);
    assert_int_equal(top, 2); /* round(1.5) = 2 */
    run_pre("/odd/input", "/odd/pre_idx", "/odd/pre_val");
    run_pre("/odd2/input", "/odd2/pre_idx", "/odd2/pre_val");
}

/* the window variant equals cropping the full resize */
static void test_window(void **state)
{
    float in[2 * 5 * 7], full[2 * 12 * 9], win[2 * 4 * 3];
    for (int i = 0; i < 2 * 5 * 7; i++) in[i] = sinf((float)i * 0.7f);
    assert_int_equal(spo_resize_bicubic(in, 1, 2, 5, 7, 12, 9, full), SPO_OK);
    assert_int_equal(spo_resize_bicubic_window(in, 1, 2, 5, 7, 12, 9, 3, 5, 4, 3, win), SPO_OK);
    for (int c = 0; c < 2; c++)
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 3; x++) assert_true(win[(c * 4 + y) * 3 + x] == full[(c * 12 + y + 3) * 9 + x + 5]);
    /* identity size: copies */
    assert_int_equal(spo_resize_bicubic(in, 1, 2, 5, 7, 5, 7, full), SPO_OK);
    for (int i = 0; i < 2 * 5 * 7; i++) assert_true(fabsf(full[i] - in[i]) <= 1e-6f);
}

static void test_bad_args(void **state)
{
    float x[4] = {0}, y[4];
    assert_int_equal(spo_resize_bicubic(x, 1, 1, 0, 2, 2, 2, y), SPO_EINVAL);
    assert_int_equal(spo_resize_bicubic_window(x, 1, 1, 2, 2, 2, 2, 1, 0, 2, 2, y), SPO_EINVAL);
    assert_int_equal(spo_clip_preprocess(x, 0, 2, 2, 224, y), SPO_EINVAL);
    assert_int_equal(spo_clip_preprocess(x, 1, 2, 2, 0, y), SPO_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resize_224), cmocka_unit_test(test_small_up_down), cmocka_unit_test(test_preprocess),
        cmocka_unit_test(test_preprocess_odd), cmocka_unit_test(test_window), cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
