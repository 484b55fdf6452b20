/* test_scorers.c — the built-in scorers on hand-computed images: pure
 * colours, grey, black, clamping, the red/cyan image at colourfulness's
 * optimum, and that random images stay below the documented optimum. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "spo/scorers.h"

/* [0,1] RGB -> the [-1,1] value the scorers take */
static float pm(double v) { return (float)(2 * v - 1); }

/* a 1 x w image (3,1,w) from w RGB triples in [0,1] */
static float *row_image(const double (*rgb)[3], int w)
{
    float *img = malloc(sizeof(float) * 3 * w);
    for (int i = 0; i < w; i++)
        for (int c = 0; c < 3; c++) img[c * w + i] = pm(rgb[i][c]);
    return img;
}

static double run1(const char *name, const double (*rgb)[3], int w)
{
    const spo_scorer *s = spo_scorer_find(name);
    assert_non_null(s);
    float *img = row_image(rgb, w), out = -1;
    assert_int_equal(spo_scorer_run(s, img, 1, 1, w, &out), SPO_OK);
    free(img);
    return out;
}

static void test_saturation(void **state)
{
    const double red[1][3] = {{1, 0, 0}}, grey[1][3] = {{0.5, 0.5, 0.5}}, black[1][3] = {{0, 0, 0}};
    assert_float_equal(run1("saturation", red, 1), 1.0, 1e-6);
    assert_float_equal(run1("saturation", grey, 1), 0.0, 1e-6);
    assert_float_equal(run1("saturation", black, 1), 0.0, 1e-6); /* max 0: saturation 0 */
    /* (0.5,0.25,0): (0.5-0)/0.5 = 1; (0.8,0.4,0.4): 0.4/0.8 = 0.5; (0.2,0.6,0.3): 0.4/0.6 */
    const double mix[3][3] = {{0.5, 0.25, 0}, {0.8, 0.4, 0.4}, {0.2, 0.6, 0.3}};
    assert_float_equal(run1("saturation", mix, 3), (1 + 0.5 + 2.0 / 3) / 3, 1e-6);
    /* values outside [-1,1] are clamped: (2, -3, 0.5) -> (1, 0, 0.75) -> 1 */
    const spo_scorer *s = spo_scorer_find("saturation");
    float img[3] = {2, -3, 0.5f}, out;
    assert_int_equal(spo_scorer_run(s, img, 1, 1, 1, &out), SPO_OK);
    assert_float_equal(out, 1.0, 1e-6);
    assert_float_equal(s->optimum, 1.0, 0);
}

/* the flipped preference: 1 - saturation on every image */
static void test_desaturation(void **state)
{
    const double red[1][3] = {{1, 0, 0}}, grey[1][3] = {{0.5, 0.5, 0.5}};
    const double mix[3][3] = {{0.5, 0.25, 0}, {0.8, 0.4, 0.4}, {0.2, 0.6, 0.3}};
    assert_float_equal(run1("desaturation", red, 1), 0.0, 1e-6);
    assert_float_equal(run1("desaturation", grey, 1), 1.0, 1e-6);
    assert_float_equal(run1("desaturation", mix, 3), 1 - run1("saturation", mix, 3), 1e-6);
    assert_float_equal(spo_scorer_find("desaturation")->optimum, 1.0, 0);
}

static void test_colorfulness(void **state)
{
    /* one red pixel: rg 1, yb 0.5, no spread: 0.3 sqrt(1.25) */
    const double red[1][3] = {{1, 0, 0}};
    assert_float_equal(run1("colorfulness", red, 1), 0.3 * sqrt(1.25), 1e-6);
    /* red and cyan: rg +-1, yb +-0.5, mean 0: sqrt(1 + 0.25) */
    const double rc[2][3] = {{1, 0, 0}, {0, 1, 1}};
    assert_float_equal(run1("colorfulness", rc, 2), sqrt(1.25), 1e-6);
    /* yellow and blue: rg 0, yb +-1: 1 */
    const double yb[2][3] = {{1, 1, 0}, {0, 0, 1}};
    assert_float_equal(run1("colorfulness", yb, 2), 1.0, 1e-6);
    const double grey[2][3] = {{0.2, 0.2, 0.2}, {0.9, 0.9, 0.9}};
    assert_float_equal(run1("colorfulness", grey, 2), 0.0, 1e-6);
    /* (0.5,0.25,0) and (0.2,0.6,0.3): rg 0.25, -0.4; yb 0.375, 0.1
     * sd_rg 0.325, sd_yb 0.1375, mean (-0.075, 0.2375) */
    const double two[2][3] = {{0.5, 0.25, 0}, {0.2, 0.6, 0.3}};
    double want = sqrt(0.325 * 0.325 + 0.1375 * 0.1375) + 0.3 * sqrt(0.075 * 0.075 + 0.2375 * 0.2375);
    assert_float_equal(run1("colorfulness", two, 2), want, 1e-6);
}

/* the optimum: red and cyan in the ratio 64.37 : 35.63 reaches it; random
 * images never pass it */
static void test_optimum(void **state)
{
    enum { W = 10000 };
    const spo_scorer *s = spo_scorer_find("colorfulness");
    assert_float_equal(s->optimum, sqrt(1.25 * 1.09), 1e-12);
    float *img = malloc(sizeof(float) * 3 * W), out;
    for (int i = 0; i < W; i++) {
        int r = i < 6437;
        img[i] = r ? 1 : -1, img[W + i] = r ? -1 : 1, img[2 * W + i] = r ? -1 : 1;
    }
    assert_int_equal(spo_scorer_run(s, img, 1, 1, W, &out), SPO_OK);
    assert_true(out <= s->optimum + 1e-6);
    assert_true(out >= s->optimum - 1e-4);
    uint64_t x = 88172645463325252ull;
    for (int k = 0; k < 200; k++) {
        int w = 1 + k % 17;
        for (int i = 0; i < 3 * w; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            img[i] = (k % 3 == 0) ? ((x >> 11) & 1 ? 1.0f : -1.0f) : (float)((double)(x >> 11) / 4503599627370496.0 - 1);
        }
        for (int j = 0; j < spo_scorer_count(); j++) {
            const spo_scorer *t = spo_scorer_get(j);
            assert_int_equal(spo_scorer_run(t, img, 1, 1, w, &out), SPO_OK);
            assert_true(out >= 0 && out <= t->optimum + 1e-6);
        }
    }
    free(img);
}

static void test_api(void **state)
{
    assert_int_equal(spo_scorer_count(), 3);
    assert_null(spo_scorer_find("pickscore"));
    assert_non_null(strstr(spo_errmsg(), "pickscore"));
    assert_null(spo_scorer_get(3));
    const spo_scorer *s = spo_scorer_get(0);
    float img[2 * 3 * 2 * 2], out[2];
    for (int i = 0; i < 24; i++) img[i] = i < 12 ? 0 : (i < 16 ? 1 : -1); /* grey, then red */
    assert_int_equal(spo_scorer_run(s, img, 2, 2, 2, out), SPO_OK);
    assert_float_equal(out[0], 0, 1e-6);
    assert_float_equal(out[1], 1, 1e-6);
    assert_int_equal(spo_scorer_run(s, img, 0, 2, 2, out), SPO_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_saturation),
        cmocka_unit_test(test_desaturation),
        cmocka_unit_test(test_colorfulness),
        cmocka_unit_test(test_optimum),
        cmocka_unit_test(test_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
