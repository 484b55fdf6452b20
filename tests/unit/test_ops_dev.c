/* test_ops_dev.c — the device handle: open/close, thread counts, CUDA
 * without CUDA (or without a GPU), aligned zeroed allocation, overflow, and
 * upload/download/copy/zero (on the device of SPO_TEST_DEVICE, opcheck.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "opcheck.h"
#include "ops/ops_impl.h"

static void test_open(void **state)
{
    (void)state;
    spo_dev *d = NULL;
    for (int th = 0; th <= 2; th++) {
        OK(spo_dev_open(&d, SPO_DEV_CPU, th));
        assert_non_null(d);
        assert_int_equal(spo_dev_kind(d), SPO_DEV_CPU);
        OK(spo_dev_sync(d));
        spo_dev_close(d);
    }
    assert_int_equal(spo_dev_open(&d, SPO_DEV_CPU, -1), SPO_EINVAL);
    assert_null(d);
    assert_int_equal(spo_dev_open(NULL, SPO_DEV_CPU, 1), SPO_EINVAL);
    assert_int_equal(spo_dev_open(&d, (spo_devkind)5, 1), SPO_EINVAL);
    spo_dev_close(NULL);
}

/* without CUDA: SPO_EINVAL "built without CUDA"; with it: a GPU, or SPO_EIO */
static void test_cuda(void **state)
{
    (void)state;
    spo_dev *d = NULL;
    int rc = spo_dev_open(&d, SPO_DEV_CUDA, 1);
#ifndef SPO_HAVE_CUDA
    assert_int_equal(rc, SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "built without CUDA"));
    assert_null(d);
#else
    if (rc) {
        assert_int_equal(rc, SPO_EIO);
        assert_null(d);
        return;
    }
    assert_int_equal(spo_dev_kind(d), SPO_DEV_CUDA);
    const float h[5] = {1, 2, 3, 4, 5};
    float back[5] = {0};
    float *p = spo_dev_alloc(d, 5), *q = spo_dev_alloc(d, 5);
    assert_non_null(p), assert_non_null(q);
    OK(spo_dev_upload(d, p, h, 5));
    OK(spo_dev_copy(d, q, p, 5));
    OK(spo_dev_download(d, back, q, 5));
    assert_memory_equal(back, h, sizeof h);
    OK(spo_dev_sync(d));
    spo_dev_free(d, p), spo_dev_free(d, q);
    spo_dev_close(d);
#endif
}

static void test_alloc(void **state)
{
    spo_dev *d = *state;
    const size_t sizes[] = {0, 1, 3, 16, 1000, 100003};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        float *p = spo_dev_alloc(d, sizes[k]);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 64, 0);
        if (sizes[k]) { /* read back, so that it holds for device memory too */
            float *h = dget(d, p, sizes[k]);
            for (size_t i = 0; i < sizes[k]; i++) assert_true(h[i] == 0.0f);
            free(h);
        }
        spo_dev_free(d, p);
    }
    spo_err_clear();
    assert_null(spo_dev_alloc(d, SIZE_MAX / 2));
    assert_non_null(strstr(spo_errmsg(), "overflow"));
#ifndef __SANITIZE_ADDRESS__ /* ASan reports a huge request instead of failing it */
    assert_null(spo_dev_alloc(d, SIZE_MAX / 8)); /* fits size_t, not memory */
#endif
    assert_null(spo_dev_alloc(NULL, 4));
    spo_dev_free(d, NULL);
}

static void test_memory(void **state)
{
    spo_dev *d = *state;
    const size_t n = 37;
    float *h = hrand(n), back[37];
    float *p = dput(d, h, n), *q = dput(d, NULL, n);
    OK(spo_dev_download(d, back, p, n));
    assert_memory_equal(back, h, n * sizeof *h);
    OK(spo_dev_copy(d, q, p, n));
    OK(spo_dev_download(d, back, q, n));
    assert_memory_equal(back, h, n * sizeof *h);
    OK(spo_dev_copy(d, q, q, n));
    OK(spo_dev_zero(d, q + 5, 10));
    OK(spo_dev_download(d, back, q, n));
    for (size_t i = 0; i < n; i++) assert_true(back[i] == (i >= 5 && i < 15 ? 0.0f : h[i]));
    /* overlapping copies (allowed: "may overlap"), forward and backward */
    OK(spo_dev_upload(d, p, h, n));
    OK(spo_dev_copy(d, p + 3, p, 30));
    OK(spo_dev_download(d, back, p, n));
    for (size_t i = 0; i < n; i++) assert_true(back[i] == (i >= 3 && i < 33 ? h[i - 3] : h[i]));
    OK(spo_dev_upload(d, p, h, n));
    OK(spo_dev_copy(d, p, p + 4, 30));
    OK(spo_dev_download(d, back, p, n));
    for (size_t i = 0; i < n; i++) assert_true(back[i] == (i < 30 ? h[i + 4] : h[i]));
    OK(spo_dev_upload(d, p, NULL, 0)); /* nothing to move */
    assert_int_equal(spo_dev_upload(d, p, NULL, 3), SPO_EINVAL);
    assert_int_equal(spo_dev_download(NULL, back, p, 3), SPO_EINVAL);
    free(h);
    spo_dev_free(d, p), spo_dev_free(d, q);
}

/* the op list fills every slot of the CPU table; a slot left NULL (a
 * backend without that op) fails the public function, naming the backend */
static void test_table(void **state)
{
    spo_dev *d = *state;
#define SLOT_FILLED(name, params, args) assert_non_null(spo_cpu_ops.name);
    SPO_OPS(SLOT_FILLED)
#undef SLOT_FILLED
#ifdef SPO_HAVE_CUDA /* every op has its kernel (checked without a GPU too) */
#define CUDA_FILLED(name, params, args) assert_non_null(spo_cuda_ops.name);
    SPO_OPS(CUDA_FILLED)
    SPO_DEV_MEM(CUDA_FILLED)
#undef CUDA_FILLED
    assert_non_null(spo_cuda_ops.open), assert_non_null(spo_cuda_ops.close);
#endif
    const spo_ops_table *keep = d->ops;
    spo_ops_table t = *keep;
    t.scale = NULL;
    d->ops = &t;
    float *p = dput(d, NULL, 4);
    assert_int_equal(spo_scale(d, p, p, 2.0f, 4), SPO_EINVAL);
    char want[64];
    snprintf(want, sizeof want, "spo_scale: not implemented on %s", t.name);
    assert_string_equal(spo_errmsg(), want);
    OK(spo_axpy(d, p, 1.0f, p, 4)); /* the other slots still work */
    d->ops = keep;
    OK(spo_scale(d, p, p, 2.0f, 4));
    spo_dev_free(d, p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open),
        cmocka_unit_test(test_cuda),
        cmocka_unit_test(test_alloc),
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_table),
    };
    OPCHECK_MAIN(tests);
}
