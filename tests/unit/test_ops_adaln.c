/* test_ops_adaln.c — the ops that joined the op table from ops_extra.h:
 * the embedding gather (host ids) and the adaLN modulate / gated residual,
 * against double references on the device of SPO_TEST_DEVICE (opcheck.h),
 * in place where allowed, and their argument checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "opcheck.h"

static void test_embed(void **state)
{
    spo_dev *d = *state;
    enum { V = 7, D = 5, N = 6 };
    const int32_t ids[N] = {3, 0, 6, 3, 1, 5};
    float *ht = hrand((size_t)V * D);
    double want[N * D];
    for (int i = 0; i < N; i++)
        for (int k = 0; k < D; k++) want[i * D + k] = ht[ids[i] * D + k];
    float *t = dput(d, ht, (size_t)V * D), *y = dput(d, NULL, (size_t)N * D);
    OK(spo_embed_fwd(d, y, t, ids, N, D, V));
    check_dev(d, "embed", y, want, (size_t)N * D, 0.0); /* a gather: exact */
    OK(spo_embed_fwd(d, NULL, NULL, NULL, 0, D, V));   /* no tokens: nothing to do */
    const int32_t bad[2] = {1, V};
    assert_int_equal(spo_embed_fwd(d, y, t, bad, 2, D, V), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "token id 7 at position 1"));
    const int32_t neg[1] = {-1};
    assert_int_equal(spo_embed_fwd(d, y, t, neg, 1, D, V), SPO_EINVAL);
    assert_int_equal(spo_embed_fwd(d, y, t, ids, -1, D, V), SPO_EINVAL);
    assert_int_equal(spo_embed_fwd(d, y, t, ids, N, 0, V), SPO_EINVAL);
    assert_int_equal(spo_embed_fwd(d, y, NULL, ids, N, D, V), SPO_EINVAL);
    assert_int_equal(spo_embed_fwd(NULL, y, t, ids, N, D, V), SPO_EINVAL);
    free(ht);
    spo_dev_free(d, t), spo_dev_free(d, y);
}

/* modulate and gate_add with per-sample rows of stride ld > c */
static void test_modulate(void **state)
{
    spo_dev *d = *state;
    enum { B = 2, T = 3, C = 4, LD = 3 * C };
    const size_t nx = (size_t)B * T * C;
    float *hx = hrand(nx), *hy = hrand(nx), *hm = hrand((size_t)B * LD);
    double mod[B * T * C], gate[B * T * C];
    for (int i = 0; i < B; i++)
        for (int j = 0; j < T; j++)
            for (int k = 0; k < C; k++) {
                const size_t r = ((size_t)i * T + j) * C + k;
                const float *m = hm + (size_t)i * LD;
                mod[r] = (double)hx[r] * (1.0 + m[C + k]) + m[k]; /* shift m[0..C), scale m[C..2C) */
                gate[r] = hx[r] + (double)m[2 * C + k] * hy[r];   /* gate m[2C..3C) */
            }
    float *x = dput(d, hx, nx), *y = dput(d, hy, nx), *m = dput(d, hm, (size_t)B * LD), *o = dput(d, NULL, nx);
    OK(spo_modulate_fwd(d, o, x, m, m + C, LD, B, T, C));
    check_dev(d, "modulate", o, mod, nx, FWD_TOL);
    OK(spo_gate_add_fwd(d, x, y, m + 2 * C, LD, B, T, C));
    check_dev(d, "gate_add", x, gate, nx, FWD_TOL);
    OK(spo_dev_upload(d, x, hx, nx));
    OK(spo_modulate_fwd(d, x, x, m, m + C, LD, B, T, C)); /* in place */
    check_dev(d, "modulate in place", x, mod, nx, FWD_TOL);
    assert_int_equal(spo_modulate_fwd(d, o, x, m, m + C, C - 1, B, T, C), SPO_EINVAL); /* ld < c */
    assert_int_equal(spo_modulate_fwd(d, o, x, m, NULL, LD, B, T, C), SPO_EINVAL);
    assert_int_equal(spo_gate_add_fwd(d, x, y, m, LD, 0, T, C), SPO_EINVAL);
    assert_int_equal(spo_gate_add_fwd(d, x, NULL, m, LD, B, T, C), SPO_EINVAL);
    free(hx), free(hy), free(hm);
    spo_dev_free(d, x), spo_dev_free(d, y), spo_dev_free(d, m), spo_dev_free(d, o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embed),
        cmocka_unit_test(test_modulate),
    };
    OPCHECK_MAIN(tests);
}
