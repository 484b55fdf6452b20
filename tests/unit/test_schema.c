/* test_schema.c — schema parsing and validation on synthetic listings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "io/schema.h"

static const char *js =
    "{\"name\":\"t\",\"version\":2,\"attributes\":[{\"name\":\"step\",\"type\":\"int\"},"
    "{\"name\":\"g\",\"type\":\"float\"}],\"datasets\":["
    "{\"name\":\"/x\",\"dtype\":[\"f32\",\"f16\"],\"shape\":[\"B\",4,\"h\"],\"finite\":true},"
    "{\"name\":\"/y\",\"dtype\":[\"i64\"],\"shape\":[\"B\"]},"
    "{\"name\":\"/m/*/a\",\"dtype\":[\"f32\"],\"shape\":[\"r\",\"_\"]},"
    "{\"name\":\"/opt\",\"dtype\":[\"f32\"],\"shape\":[],\"optional\":true}]}";

static spo_dsinfo ds(const char *name, spo_dtype_t t, int nd, int64_t a, int64_t b, int64_t c)
{
    spo_dsinfo d = {.type = t, .ndim = nd, .shape = {a, b, c}, .nonfinite = 0};
    strcpy(d.name, name);
    return d;
}

static void test_builtin_all_parse(void **state)
{
    const char *names[] = {"embeds", "state", "pool", "scores", "pairs", "lora", "grads"};
    for (int i = 0; i < 7; i++) {
        const spo_schema *s = spo_schema_builtin(names[i]);
        assert_non_null(s);
        assert_int_equal(spo_schema_version(s), strcmp(names[i], "pairs") ? 1 : 2); /* pairs/2; pairs/1 still read */
        assert_true(strlen(spo_schema_description(s)) > 20);
    }
    assert_non_null(spo_schema_builtin("pool/1"));
    assert_non_null(spo_schema_builtin("pairs/1"));
    assert_null(spo_schema_builtin("pool/2"));
    assert_null(spo_schema_builtin("nope"));
}

static void test_validate(void **state)
{
    spo_schema *s;
    assert_int_equal(spo_schema_parse(&s, js, strlen(js)), SPO_OK);
    spo_dsinfo d[4] = {ds("/x", SPO_T_F16, 3, 5, 4, 7), ds("/y", SPO_T_I64, 1, 5, 0, 0),
                       ds("/m/q.k/a", SPO_T_F32, 2, 3, 9, 0), ds("/m/v/a", SPO_T_F32, 2, 3, 2, 0)};
    spo_attrinfo at[2] = {{"step", SPO_A_INT}, {"g", SPO_A_INT}};
    spo_fileinfo fi = {.schema = "t/2", .ds = d, .nds = 4, .at = at, .nat = 2};
    assert_int_equal(spo_schema_check(s, &fi, "f.h5", NULL), SPO_OK);

    d[1].shape[0] = 6; /* B mismatch */
    assert_int_equal(spo_schema_check(s, &fi, "f.h5", NULL), SPO_EINVAL);
    assert_string_equal(spo_errmsg(), "f.h5: /y is [6], expected [B] = [5]");
    d[1].shape[0] = 5;

    d[3].shape[0] = 4; /* r mismatch across pattern matches */
    assert_int_equal(spo_schema_check(s, &fi, "f.h5", NULL), SPO_EINVAL);
    d[3].shape[0] = 3;

    spo_dimbind pre[] = {{"h", 8}, {NULL, 0}}; /* the model says h = 8 */
    assert_int_equal(spo_schema_check(s, &fi, "f.h5", pre), SPO_EINVAL);
    assert_string_equal(spo_errmsg(), "f.h5: /x is [5,4,7], expected [B,4,h] = [B,4,8]");

    d[0].nonfinite = 2;
    assert_int_equal(spo_schema_check(s, &fi, "f.h5", NULL), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "/x has 2 NaN/Inf values"));
    d[0].nonfinite = 0;

    fi.nds = 2; /* no /m/<star>/a at all */
    assert_int_equal(spo_schema_check(s, &fi, "f.h5", NULL), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "missing dataset /m/*/a"));
    fi.nds = 4;

    strcpy(fi.schema, "t/1");
    assert_int_equal(spo_schema_check(s, &fi, "f.h5", NULL), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "version 't/1' is not supported"));
    strcpy(fi.schema, "u/2");
    assert_int_equal(spo_schema_check(s, &fi, "f.h5", NULL), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "is a 'u/2' file"));
    strcpy(fi.schema, "t/2");

    at[0].type = SPO_A_FLOAT;
    assert_int_equal(spo_schema_check(s, &fi, "f.h5", NULL), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "'step' is float, expected int"));
    spo_schema_free(s);
}

static void test_parse_errors(void **state)
{
    const char *bad[] = {
        "", "{", "[]", "{\"name\":\"x\"}", "{\"name\":\"x\",\"version\":1}",
        "{\"name\":\"x\",\"version\":1,\"datasets\":[{\"name\":\"y\",\"dtype\":[\"f32\"],\"shape\":[]}]}",
        "{\"name\":\"x\",\"version\":1,\"datasets\":[{\"name\":\"/y\",\"dtype\":[\"f64\"],\"shape\":[]}]}",
        "{\"name\":\"x\",\"version\":1,\"datasets\":[{\"name\":\"/y\",\"dtype\":[\"f32\"],\"shape\":[-1]}]}",
        "{\"name\":\"x\",\"version\":1,\"datasets\":[{\"name\":\"/a*b\",\"dtype\":[\"f32\"],\"shape\":[]}]}",
        "{\"name\":\"x\",\"version\":1,\"datasets\":[{\"name\":\"/y\",\"dtype\":[\"f32\"],\"shape\":[1,2,3,4,5,6,7,8,9]}]}",
        "{\"name\":\"x\",\"version\":1,\"datasets\":[],\"attributes\":[{\"name\":\"a\",\"type\":\"blob\"}]}",
        "{\"name\":\"x/y\",\"version\":1,\"datasets\":[]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        spo_schema *s = NULL;
        assert_int_equal(spo_schema_parse(&s, bad[i], strlen(bad[i])), SPO_EINVAL);
        assert_null(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_all_parse),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_parse_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
