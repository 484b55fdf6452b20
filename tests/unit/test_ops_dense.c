/* test_ops_dense.c — spo_linear_fwd/bwd against a double reference and
 * finite differences, with and without bias, odd shapes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "opcheck.h"

typedef struct {
    fdcase c; /* in: x (M,K), w (N,K), b (N) */
    int M, K, N, bias;
    spo_dev *d;
    float *dy, *x, *w, *b; /* device */
} lin;

/* y (M,N) = x w^T + b */
static void lin_ref(const fdcase *c, double *y)
{
    const lin *t = (const lin *)c;
    const double *x = c->in[0], *w = c->in[1], *b = c->in[2];
    for (int m = 0; m < t->M; m++)
        for (int n = 0; n < t->N; n++) {
            double s = t->bias ? b[n] : 0.0;
            for (int k = 0; k < t->K; k++) s += x[m * t->K + k] * w[n * t->K + k];
            y[m * t->N + n] = s;
        }
}

static int lin_bwd(void *self, float **g)
{
    lin *t = self;
    return spo_linear_bwd(t->d, g[0], g[1], t->bias ? g[2] : NULL, t->dy, t->x, t->w, t->M, t->K, t->N);
}

static void run_linear(spo_dev *d, int M, int K, int N, int bias)
{
    lin t = {.M = M, .K = K, .N = N, .bias = bias, .d = d};
    size_t nx = (size_t)M * K, nw = (size_t)N * K, ny = (size_t)M * N;
    float *hx = hrand(nx), *hw = hrand(nw), *hb = hrand(N), *hdy = hrand(ny);
    t.c = (fdcase){.nin = 3, .in = {todouble(hx, nx), todouble(hw, nw), todouble(hb, N)}, .nel = {nx, nw, N},
                   .ny = ny, .dy = todouble(hdy, ny), .fwd = lin_ref};
    t.x = dput(d, hx, nx), t.w = dput(d, hw, nw), t.b = dput(d, hb, N), t.dy = dput(d, hdy, ny);
    float *y = dput(d, NULL, ny);
    OK(spo_linear_fwd(d, y, t.x, t.w, bias ? t.b : NULL, M, K, N));
    double *ref = ref_forward(&t.c);
    check_dev(d, "linear forward", y, ref, ny, FWD_TOL);
    /* without bias there is no db to check: two slots */
    int which[3] = {0, 1, 2};
    check_backward(d, "linear", &t.c, bias ? 3 : 2, which, lin_bwd, &t);
    free(ref), free(hx), free(hw), free(hb), free(hdy);
    spo_dev_free(d, y), spo_dev_free(d, t.x), spo_dev_free(d, t.w), spo_dev_free(d, t.b), spo_dev_free(d, t.dy);
    fdcase_free(&t.c);
}

static void test_linear(void **state)
{
    spo_dev *d = *state;
    run_linear(d, 1, 1, 1, 1);
    run_linear(d, 5, 7, 3, 1);
    run_linear(d, 13, 9, 11, 0);
    run_linear(d, 4, 33, 17, 1);
}

/* bad arguments are refused with SPO_EINVAL before anything runs */
static void test_linear_args(void **state)
{
    spo_dev *d = *state;
    float *a = dput(d, NULL, 16);
    assert_int_equal(spo_linear_fwd(d, a, a, a, NULL, 0, 2, 2), SPO_EINVAL);
    assert_int_equal(spo_linear_fwd(d, NULL, a, a, NULL, 2, 2, 2), SPO_EINVAL);
    assert_int_equal(spo_linear_fwd(NULL, a, a, a, NULL, 2, 2, 2), SPO_EINVAL);
    assert_int_equal(spo_linear_bwd(d, a, NULL, NULL, NULL, a, a, 2, 2, 2), SPO_EINVAL);
    assert_int_equal(spo_linear_bwd(d, a, NULL, NULL, a, a, NULL, 2, 2, 2), SPO_EINVAL);
    spo_dev_free(d, a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_linear_args),
    };
    OPCHECK_MAIN(tests);
}
