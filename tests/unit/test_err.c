/* test_err.c — lib/core/err: messages are one line and carry no control
 * characters (file-supplied text is escaped), prefixes, spo_escape. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"

static void test_escape_in_messages(void **state)
{
    (void)state;
    assert_int_equal(spo_err(SPO_EINVAL, "f.h5: model_id '%s'", "a\x1b]0;t\x07\x1b[2J"), SPO_EINVAL);
    assert_string_equal(spo_errmsg(), "f.h5: model_id 'a\\x1b]0;t\\x07\\x1b[2J'");
    spo_err(SPO_EIO, "two\nlines\r\tand\x7f");
    assert_string_equal(spo_errmsg(), "two lines  and\\x7f");
    /* UTF-8 text is kept; C1 controls and invalid bytes are escaped */
    spo_err(SPO_EINVAL, "%s", "caf\xc3\xa9 \xe2\x82\xac \xc2\x9b[31m \xff\xc3");
    assert_string_equal(spo_errmsg(), "caf\xc3\xa9 \xe2\x82\xac \\xc2\\x9b[31m \\xff\\xc3");
    spo_err_prefix(SPO_EINVAL, "member %s", "x\x1b");
    assert_string_equal(spo_errmsg(), "member x\\x1b: caf\xc3\xa9 \xe2\x82\xac \\xc2\\x9b[31m \\xff\\xc3");
}

static void test_escape_bounds(void **state)
{
    (void)state;
    char b[8];
    assert_int_equal(spo_escape(b, sizeof b, "abc\x01" "def", 7), 7);
    assert_string_equal(b, "abc\\x01");
    /* an escape or a UTF-8 character that does not fit is left out whole */
    assert_int_equal(spo_escape(b, sizeof b, "abcde\x01", 6), 5);
    assert_string_equal(b, "abcde");
    assert_int_equal(spo_escape(b, sizeof b, "abcdef\xe2\x82\xac", 9), 6);
    assert_string_equal(b, "abcdef");
    /* stops at NUL and at n */
    assert_int_equal(spo_escape(b, sizeof b, "ab\0cd", 5), 2);
    assert_int_equal(spo_escape(b, sizeof b, "abcd", 2), 2);
    assert_string_equal(b, "ab");
    /* a long message is cut, still NUL-terminated */
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    spo_err(SPO_EINVAL, "%s", big);
    assert_true(strlen(spo_errmsg()) < 1024);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_in_messages),
        cmocka_unit_test(test_escape_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
