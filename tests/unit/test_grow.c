/* test_grow.c — lib/core/grow: the capacity doubles from the first one,
 * an array with room is returned as it is, and a size that overflows is
 * "out of memory" with the array and its capacity untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/grow.h"

static void test_doubling(void **state)
{
    (void)state;
    size_t cap = 0;
    int *a = spo_grow(NULL, &cap, 0, sizeof *a, 4); /* never allocated: first, even for 0 */
    assert_non_null(a);
    assert_int_equal(cap, 4);
    for (int i = 0; i < 4; i++) a[i] = i;
    assert_ptr_equal(spo_grow(a, &cap, 4, sizeof *a, 4), a); /* room: as it is */
    assert_int_equal(cap, 4);
    a = spo_grow(a, &cap, 5, sizeof *a, 4);
    assert_non_null(a);
    assert_int_equal(cap, 8);
    a = spo_grow(a, &cap, 33, sizeof *a, 4);
    assert_non_null(a);
    assert_int_equal(cap, 64);
    for (int i = 0; i < 4; i++) assert_int_equal(a[i], i); /* contents kept */
    free(a);
}

static void test_overflow(void **state)
{
    (void)state;
    size_t cap = 0;
    char *a = spo_grow(NULL, &cap, 10, 1, 16);
    assert_non_null(a);
    spo_err_clear();
    assert_null(spo_grow(a, &cap, SIZE_MAX / 2, 8, 16));
    assert_string_equal(spo_errmsg(), "out of memory");
    assert_int_equal(cap, 16);
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doubling),
        cmocka_unit_test(test_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
