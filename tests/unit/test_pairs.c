/* test_pairs.c — the pure parts of the loop tools: the pair rule (softmax
 * gap, best/worst ties), merging by key, the resampling choice, LoRA tags,
 * the initial noise stream, and row-wise HDF5 access. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/err.h"
#include "io/h5io.h"
#include "io/h5rows.h"
#include "nn/lora.h"
#include "spo/loop_state.h"
#include "spo/pairs.h"
#include "core/philox.h"
#include "spo/resample.h"

/* softmax over two scores, the long way, in double */
static double softmax_gap(double a, double b)
{
    double m = a > b ? a : b, ea = exp(a - m), eb = exp(b - m);
    return ea / (ea + eb) - eb / (ea + eb);
}

static void test_gap(void **state)
{
    double v[][2] = {{1, 0}, {3, 0}, {21.7, 18.2}, {0.5, 0.45}, {-3, -4}, {2.7, 2}, {0, 0}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        assert_true(fabs(spo_pair_gap(v[i][0], v[i][1]) - softmax_gap(v[i][0], v[i][1])) < 1e-12);
    assert_true(spo_pair_gap(1e4, -1e4) == 1.0); /* no overflow, no NaN */
    assert_true(spo_pair_gap(5, 5) == 0.0);
    assert_true(fabs(spo_pair_gap(2, 1) + spo_pair_gap(1, 2)) < 1e-15);
    /* the threshold 0.3 sits at a score difference of 2 atanh(0.3) = 0.6190 */
    float keep[2] = {1.62f, 1.0f}, drop[2] = {1.61f, 1.0f};
    int b, w;
    assert_int_equal(spo_pair_select(keep, 2, 0.3, &b, &w), 1);
    assert_int_equal(spo_pair_select(drop, 2, 0.3, &b, &w), 0);
    /* strictly greater: a gap equal to the threshold is dropped */
    float s[2] = {1, 0};
    assert_int_equal(spo_pair_select(s, 2, spo_pair_gap(1, 0), &b, &w), 0);
    assert_int_equal(spo_pair_select(s, 2, 0, &b, &w), 1);
}

static void test_pick_ties(void **state)
{
    int b, w;
    float a[] = {1, 1, 1, 1};
    spo_pair_pick(a, 4, &b, &w);
    assert_int_equal(b, 0), assert_int_equal(w, 3); /* torch.sort(descending=True) on CPU: 0 1 2 3 */
    assert_int_equal(spo_pair_select(a, 4, 0, &b, &w), 0); /* equal scores: never a pair */
    float c[] = {0, 2, 2, 0};
    spo_pair_pick(c, 4, &b, &w);
    assert_int_equal(b, 1), assert_int_equal(w, 3); /* sorted 1 2 0 3 */
    float d[] = {3, 1, 3, 1};
    spo_pair_pick(d, 4, &b, &w);
    assert_int_equal(b, 0), assert_int_equal(w, 3); /* sorted 0 2 1 3 */
    float e[] = {-1, 5, -2, 4, -2, 5};
    spo_pair_pick(e, 6, &b, &w);
    assert_int_equal(b, 1), assert_int_equal(w, 4); /* sorted 1 5 3 0 2 4 */
    float one[] = {7};
    spo_pair_pick(one, 1, &b, &w);
    assert_int_equal(b, 0), assert_int_equal(w, 0);
    assert_int_equal(spo_pair_select(one, 1, 0, &b, &w), 0);
    /* the hand-computed case of tests/cmd/loop.bats */
    float h[] = {1, 3, 2, 0, 0.5f, 0.5f, 0.6f, 0.5f, 2, 2.7f, 2, 2.7f, 5, 4.45f, 5, 4.45f};
    int want[4][3] = {{1, 3, 1}, {2, 3, 0}, {1, 2, 1}, {0, 3, 0}};
    for (int p = 0; p < 4; p++) {
        int k = spo_pair_select(h + 4 * p, 4, 0.3, &b, &w);
        assert_int_equal(b, want[p][0]), assert_int_equal(w, want[p][1]), assert_int_equal(k, want[p][2]);
    }
}

static void test_key_cmp(void **state)
{
    int64_t a[4] = {1, 2, 3, 4}, b[4] = {1, 2, 3, 5}, c[4] = {0, 9, 9, 9}, d[4] = {1, -2, 3, 4};
    assert_int_equal(spo_key_cmp(a, a), 0);
    assert_int_equal(spo_key_cmp(a, b), -1);
    assert_int_equal(spo_key_cmp(b, a), 1);
    assert_int_equal(spo_key_cmp(c, a), -1);
    assert_int_equal(spo_key_cmp(d, a), -1); /* signed */
}

static void test_plan(void **state)
{
    /* source 0: keys 5, 1, 3 ; source 1: 3, 2, 2, 9 ; source 2: empty ; source 3: 1 */
    int64_t k0[] = {0, 5, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0};
    int64_t k1[] = {0, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 9, 0, 0};
    int64_t k3[] = {0, 1, 0, 0};
    const int64_t *keys[] = {k0, k1, NULL, k3};
    int64_t n[] = {3, 4, 0, 1}, N;
    spo_pairref *r;
    assert_int_equal(spo_pairs_plan(keys, n, 4, &r, &N), SPO_OK);
    assert_int_equal(N, 5);
    /* sorted: 1 (src 0 row 1, not src 3), 2 (src 1 row 1), 3 (src 0 row 2), 5, 9 */
    spo_pairref want[] = {{0, 1}, {1, 1}, {0, 2}, {0, 0}, {1, 3}};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(r[i].src, want[i].src);
        assert_int_equal(r[i].row, want[i].row);
    }
    free(r);
    /* the same source twice: each key once, from the first copy */
    const int64_t *twice[] = {k1, k1};
    int64_t n2[] = {4, 4};
    assert_int_equal(spo_pairs_plan(twice, n2, 2, &r, &N), SPO_OK);
    assert_int_equal(N, 3);
    for (int i = 0; i < 3; i++) assert_int_equal(r[i].src, 0);
    free(r);
    /* nothing at all */
    assert_int_equal(spo_pairs_plan(keys + 2, n + 2, 1, &r, &N), SPO_OK);
    assert_int_equal(N, 0);
    free(r);
    /* the order of the keys' fields: seed first, then prompt, step, lora step */
    int64_t k4[] = {2, 0, 0, 0, 1, 9, 9, 9, 1, 9, 8, 9, 1, 9, 8, 1};
    const int64_t *one[] = {k4};
    int64_t n4[] = {4};
    assert_int_equal(spo_pairs_plan(one, n4, 1, &r, &N), SPO_OK);
    assert_int_equal(N, 4);
    int64_t rows[] = {3, 2, 1, 0};
    for (int i = 0; i < 4; i++) assert_int_equal(r[i].row, rows[i]);
    free(r);
}

static void test_choose_child(void **state)
{
    /* power of two: exactly the first word mod K */
    for (uint32_t p = 0; p < 200; p++) {
        uint32_t w = spo_uniform_u32(42, p, 7, SPO_PHILOX_CHILD_CHOICE, 0);
        assert_int_equal(spo_choose_child(42, p, 7, 4), w % 4);
        assert_int_equal(spo_choose_child(42, p, 7, 1), 0);
        assert_int_equal(spo_choose_child(42, p, 7, 8), w % 8);
    }
    /* other K: in range, deterministic, and roughly uniform */
    int cnt[5] = {0};
    const int n = 20000;
    for (uint32_t p = 0; p < (uint32_t)n; p++) {
        uint32_t c = spo_choose_child(3, p, 11, 5);
        assert_true(c < 5);
        assert_int_equal(c, spo_choose_child(3, p, 11, 5));
        cnt[c]++;
    }
    double chi = 0;
    for (int k = 0; k < 5; k++) chi += (cnt[k] - n / 5.0) * (cnt[k] - n / 5.0) / (n / 5.0);
    assert_true(chi < 25); /* 4 degrees of freedom */
    /* a K with a large rejection region still returns (2^31 + 1: almost half rejected) */
    uint32_t big = 0x80000001u;
    for (uint32_t p = 0; p < 50; p++) assert_true(spo_choose_child(9, p, 1, big) < big);
}

static void test_lora_tags(void **state)
{
    int64_t s = -1;
    assert_int_equal(spo_lora_step("none", &s), SPO_OK), assert_int_equal(s, 0);
    assert_int_equal(spo_lora_step("ab12@12", &s), SPO_OK), assert_int_equal(s, 12);
    assert_int_equal(spo_lora_step("a@b@4", &s), SPO_OK), assert_int_equal(s, 4);
    const char *bad[] = {"abc", "@3", "ab@", "ab@-1", "ab@1x", "ab@99999999999999999999", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_int_equal(spo_lora_step(bad[i], &s), SPO_EINVAL);
    char buf[32];
    assert_int_equal(spo_lora_tag(buf, sizeof buf, "3f9a", 7), SPO_OK);
    assert_string_equal(buf, "3f9a@7");
    assert_int_equal(spo_lora_step(buf, &s), SPO_OK), assert_int_equal(s, 7);
    assert_int_equal(spo_lora_tag(buf, sizeof buf, "none", 7), SPO_EINVAL);
    assert_int_equal(spo_lora_tag(buf, sizeof buf, "a@b", 7), SPO_EINVAL);
    assert_int_equal(spo_lora_tag(buf, 4, "abcdef", 7), SPO_EINVAL);
}

static void test_init_noise(void **state)
{
    float a[64], b[64], c[64];
    spo_init_noise(a, 64, 5, 17);
    spo_normal_fill(b, 64, 5, 17, SPO_STEP_INIT_NOISE, 0);
    assert_memory_equal(a, b, sizeof a);
    spo_init_noise(c, 64, 5, 18);
    assert_true(memcmp(a, c, sizeof a) != 0);
    spo_normal_fill(c, 64, 5, 17, 0, 0); /* step 0's children differ from x_T */
    assert_true(memcmp(a, c, sizeof a) != 0);
    spo_init_opts o;
    assert_int_equal(spo_init_defaults(&o, 20), SPO_OK);
    assert_int_equal(o.timestep, 951), assert_int_equal(o.C, 4), assert_int_equal(o.h, 64);
    assert_int_equal(spo_init_defaults(&o, 50), SPO_OK);
    assert_int_equal(o.timestep, 981);
    assert_int_equal(spo_init_defaults(&o, 0), SPO_EINVAL);
    assert_int_equal(spo_init_from_model(&o, "tests/fixtures/tiny-sd", 20), SPO_OK);
    assert_int_equal(o.h, 16), assert_int_equal(o.w, 16), assert_int_equal(o.C, 4), assert_int_equal(o.timestep, 951);
}

static void test_rows(void **state)
{
    char path[] = "/tmp/spo_test_rows_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    spo_h5 *f;
    assert_int_equal(spo_h5_create(&f, path, NULL, 1), SPO_OK);
    int64_t shape[3] = {5, 2, 3}, ishape[2] = {5, 4};
    assert_int_equal(spo_h5_create_rows(f, "/x", SPO_T_F16, 3, shape), SPO_OK);
    assert_int_equal(spo_h5_create_rows(f, "/g/k", SPO_T_I64, 2, ishape), SPO_OK);
    float row[12];
    int64_t key[8];
    for (int i = 0; i < 12; i++) row[i] = 0.5f * (float)i;
    for (int i = 0; i < 8; i++) key[i] = 100 + i;
    assert_int_equal(spo_h5_write_rows(f, "/x", SPO_T_F32, 3, 2, row), SPO_OK);
    assert_int_equal(spo_h5_write_rows(f, "/g/k", SPO_T_I64, 1, 2, key), SPO_OK);
    assert_int_equal(spo_h5_write_rows(f, "/x", SPO_T_F32, 4, 2, row), SPO_EINVAL); /* past the end */
    assert_int_equal(spo_h5_write_rows(f, "/x", SPO_T_F32, 5, 0, row), SPO_OK);     /* nothing */
    assert_int_equal(spo_h5_commit(f), SPO_OK);
    assert_int_equal(spo_h5_open(&f, path, NULL, NULL), SPO_OK);
    float got[12];
    assert_int_equal(spo_h5_read_rows(f, "/x", SPO_T_F32, 3, 2, got), SPO_OK);
    assert_memory_equal(got, row, sizeof row); /* halves of small integers are exact in f16 */
    assert_int_equal(spo_h5_read_rows(f, "/x", SPO_T_F32, 0, 1, got), SPO_OK);
    for (int i = 0; i < 6; i++) assert_true(got[i] == 0.0f); /* unwritten rows read as zeros */
    int32_t k32[4];
    assert_int_equal(spo_h5_read_rows(f, "/g/k", SPO_T_I32, 2, 1, k32), SPO_OK);
    assert_int_equal(k32[0], 104), assert_int_equal(k32[3], 107);
    assert_int_equal(spo_h5_read_rows(f, "/x", SPO_T_F32, -1, 1, got), SPO_EINVAL);
    assert_int_equal(spo_h5_read_rows(f, "/nothere", SPO_T_F32, 0, 1, got), SPO_EINVAL);
    spo_h5_close(f);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gap),          cmocka_unit_test(test_pick_ties),  cmocka_unit_test(test_key_cmp),
        cmocka_unit_test(test_plan),         cmocka_unit_test(test_choose_child), cmocka_unit_test(test_lora_tags),
        cmocka_unit_test(test_init_noise),   cmocka_unit_test(test_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
