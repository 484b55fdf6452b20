/* test_ops_conv.c — spo_conv2d_fwd/bwd against a direct double loop and
 * finite differences: 3x3 stride 1 and 2 with padding 1, 1x1 (the sgemm
 * shortcut and the strided general path), no padding, 5x5, odd sizes, the
 * banded im2col path (spo_cpu_col_max lowered), and the shifted-product
 * path of lib/ops/cpu/cpu_convs.c for these small images (spo_cpu_shift_force;
 * its backward serves dx alone, which check_backward compares with the
 * im2col backward's). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "opcheck.h"
#include "ops/ops_impl.h"

typedef struct {
    fdcase c; /* in: x (n,cin,h,w), w (cout,cin,k,k), b (cout) */
    spo_conv cv;
    int bias;
    spo_dev *d;
    float *dy, *x, *w;
} conv;

static void conv_ref(const fdcase *c, double *y)
{
    const conv *t = (const conv *)c;
    const spo_conv *p = &t->cv;
    const int ho = spo_conv_ho(p), wo = spo_conv_wo(p), k = p->k;
    const double *x = c->in[0], *w = c->in[1], *b = c->in[2];
    for (int n = 0; n < p->n; n++)
        for (int co = 0; co < p->cout; co++)
            for (int oh = 0; oh < ho; oh++)
                for (int ow = 0; ow < wo; ow++) {
                    double s = t->bias ? b[co] : 0.0;
                    for (int ci = 0; ci < p->cin; ci++)
                        for (int ki = 0; ki < k; ki++)
                            for (int kj = 0; kj < k; kj++) {
                                int ih = oh * p->stride - p->pad + ki, iw = ow * p->stride - p->pad + kj;
                                if (ih < 0 || ih >= p->h || iw < 0 || iw >= p->w) continue;
                                s += x[((n * p->cin + ci) * p->h + ih) * p->w + iw] *
                                     w[((co * p->cin + ci) * k + ki) * k + kj];
                            }
                    y[((n * p->cout + co) * ho + oh) * wo + ow] = s;
                }
}

static int conv_bwd(void *self, float **g)
{
    conv *t = self;
    return spo_conv2d_bwd(t->d, g[0], g[1], t->bias ? g[2] : NULL, t->dy, t->x, t->w, &t->cv);
}

static void run_conv(spo_dev *d, spo_conv cv, int bias)
{
    conv t = {.cv = cv, .bias = bias, .d = d};
    size_t nx = (size_t)cv.n * cv.cin * cv.h * cv.w, nw = (size_t)cv.cout * cv.cin * cv.k * cv.k;
    size_t ny = (size_t)cv.n * cv.cout * spo_conv_ho(&cv) * spo_conv_wo(&cv);
    float *hx = hrand(nx), *hw = hrand(nw), *hb = hrand(cv.cout), *hdy = hrand(ny);
    t.c = (fdcase){.nin = 3, .in = {todouble(hx, nx), todouble(hw, nw), todouble(hb, cv.cout)},
                   .nel = {nx, nw, cv.cout}, .ny = ny, .dy = todouble(hdy, ny), .fwd = conv_ref};
    t.x = dput(d, hx, nx), t.w = dput(d, hw, nw), t.dy = dput(d, hdy, ny);
    float *b = dput(d, hb, cv.cout), *y = dput(d, NULL, ny);
    OK(spo_conv2d_fwd(d, y, t.x, t.w, bias ? b : NULL, &cv));
    double *ref = ref_forward(&t.c);
    char name[96];
    snprintf(name, sizeof name, "conv k%d s%d p%d %dx%d", cv.k, cv.stride, cv.pad, cv.h, cv.w);
    check_dev(d, name, y, ref, ny, FWD_TOL);
    int which[3] = {0, 1, 2};
    check_backward(d, name, &t.c, bias ? 3 : 2, which, conv_bwd, &t);
    free(ref), free(hx), free(hw), free(hb), free(hdy);
    spo_dev_free(d, y), spo_dev_free(d, b), spo_dev_free(d, t.x), spo_dev_free(d, t.w), spo_dev_free(d, t.dy);
    fdcase_free(&t.c);
}

/* spo_conv fields: n, cin, h, w, cout, k, stride, pad */
static void test_conv3x3(void **state)
{
    run_conv(*state, (spo_conv){2, 3, 7, 6, 4, 3, 1, 1}, 1);
    run_conv(*state, (spo_conv){1, 2, 5, 5, 3, 3, 1, 0}, 1);
    run_conv(*state, (spo_conv){1, 1, 1, 1, 1, 3, 1, 1}, 0);
}

static void test_conv_stride2(void **state)
{
    run_conv(*state, (spo_conv){2, 3, 7, 9, 5, 3, 2, 1}, 1);
    run_conv(*state, (spo_conv){1, 4, 8, 8, 3, 3, 2, 1}, 0);
    run_conv(*state, (spo_conv){1, 2, 6, 5, 2, 2, 2, 0}, 1);
}

static void test_conv1x1(void **state)
{
    run_conv(*state, (spo_conv){2, 5, 4, 3, 6, 1, 1, 0}, 1); /* sgemm shortcut */
    run_conv(*state, (spo_conv){2, 3, 5, 4, 2, 1, 2, 0}, 1); /* general path */
    run_conv(*state, (spo_conv){1, 3, 3, 3, 2, 1, 1, 1}, 0); /* padded 1x1 */
}

static void test_conv5x5(void **state) { run_conv(*state, (spo_conv){1, 2, 6, 7, 3, 5, 1, 2}, 1); }

/* the column buffer limited to 1 row, then 2 rows with a remainder band */
static void test_conv_banded(void **state)
{
    size_t keep = spo_cpu_col_max;
    spo_cpu_col_max = 1;
    run_conv(*state, (spo_conv){2, 3, 7, 6, 4, 3, 1, 1}, 1);
    spo_cpu_col_max = 3 * 9 * 5 * 2; /* cin*k*k * wo * 2 rows, ho = 4 */
    run_conv(*state, (spo_conv){2, 3, 7, 9, 5, 3, 2, 1}, 1);
    spo_cpu_col_max = 2 * 9 * 6 * 3;
    run_conv(*state, (spo_conv){1, 2, 7, 6, 3, 3, 1, 1}, 0); /* 7 rows in bands of 3 */
    spo_cpu_col_max = keep;
}

static void test_conv_shift(void **state)
{
    size_t keep_col = spo_cpu_col_max;
    spo_cpu_shift_force = 1;
    run_conv(*state, (spo_conv){2, 3, 7, 6, 4, 3, 1, 1}, 1);
    run_conv(*state, (spo_conv){1, 2, 5, 5, 3, 3, 1, 0}, 1);
    run_conv(*state, (spo_conv){1, 1, 1, 1, 1, 3, 1, 1}, 0);
    run_conv(*state, (spo_conv){1, 2, 6, 7, 3, 5, 1, 2}, 1);
    run_conv(*state, (spo_conv){1, 3, 4, 5, 2, 2, 1, 1}, 1); /* even k */
    spo_cpu_col_max = 1; /* one output row a band */
    run_conv(*state, (spo_conv){2, 3, 7, 6, 4, 3, 1, 1}, 1);
    spo_cpu_col_max = (3 + 4) * 8 * 3 + 3 * (2 * 8 + 3); /* bands of 3 rows, remainder 1 */
    run_conv(*state, (spo_conv){1, 3, 7, 6, 4, 3, 1, 1}, 1);
    spo_cpu_shift_force = 0, spo_cpu_col_max = keep_col;
}

static void test_conv_args(void **state)
{
    spo_dev *d = *state;
    float *a = dput(d, NULL, 64);
    assert_int_equal(spo_conv2d_fwd(d, a, a, a, NULL, NULL), SPO_EINVAL);
    assert_int_equal(spo_conv2d_fwd(d, a, a, a, NULL, &(spo_conv){1, 1, 2, 2, 1, 3, 1, 0}), SPO_EINVAL);
    assert_int_equal(spo_conv2d_fwd(d, a, a, a, NULL, &(spo_conv){1, 1, 4, 4, 1, 3, 0, 1}), SPO_EINVAL);
    assert_int_equal(spo_conv2d_fwd(d, a, a, a, NULL, &(spo_conv){1, 1, 4, 4, 1, 3, 1, -1}), SPO_EINVAL);
    assert_int_equal(spo_conv2d_fwd(d, a, a, a, NULL, &(spo_conv){0, 1, 4, 4, 1, 3, 1, 1}), SPO_EINVAL);
    assert_int_equal(spo_conv2d_fwd(d, a, a, a, NULL, &(spo_conv){1 << 30, 1 << 30, 1 << 30, 4, 1, 1, 1, 0}),
                     SPO_EINVAL);
    assert_int_equal(spo_conv2d_bwd(d, a, a, a, NULL, a, a, &(spo_conv){1, 1, 4, 4, 1, 3, 1, 1}), SPO_EINVAL);
    /* nothing to compute: fine */
    OK(spo_conv2d_bwd(d, NULL, NULL, NULL, a, NULL, NULL, &(spo_conv){1, 1, 4, 4, 1, 3, 1, 1}));
    spo_dev_free(d, a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv3x3), cmocka_unit_test(test_conv_stride2), cmocka_unit_test(test_conv1x1),
        cmocka_unit_test(test_conv5x5), cmocka_unit_test(test_conv_banded),  cmocka_unit_test(test_conv_shift),
        cmocka_unit_test(test_conv_args),
    };
    OPCHECK_MAIN(tests);
}
