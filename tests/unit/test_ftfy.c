/* test_ftfy.c — the ftfy port (text/ftfy.h) and the tokenizer modes
 * (text/tokenizer.h) against ftfy 6.2.0 and transformers 4.40.1 on the
 * corpus of tests/fixtures/ftfy (tests/reference/ftfy_fixture.py):
 * fix_text byte for byte, is_bad, the slow CLIPTokenizer with ftfy
 * (SPO_TOK_FTFY) and CLIPTokenizerFast (SPO_TOK_FAST) id for id. It also
 * prints how many prompts the path without ftfy (SPO_TOK_BASIC) gets wrong
 * against each, the "before" of issue 12. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <cJSON.h>
#include <cmocka.h>

#include "core/err.h"
#include "text/ftfy.h"
#include "text/tokenizer.h"
#include "text/unicode.h"

#define NTOK 77

static spo_tok *tok;

static const char *root(void)
{
    const char *r = getenv("SPO_ROOT");
    return r ? r : ".";
}

static int setup(void **state)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/clip-tokenizer", root());
    if (spo_tok_load(&tok, dir)) {
        print_error("%s\n", spo_errmsg());
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    spo_tok_free(tok);
    return 0;
}

/* the whole of a gzipped fixture, NUL-terminated (libarchive's raw format) */
static char *read_fixture(const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/ftfy/%s", root(), name);
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    archive_read_support_filter_gzip(a);
    archive_read_support_format_raw(a);
    if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK || archive_read_next_header(a, &e) != ARCHIVE_OK) {
        print_error("%s: %s (run tests/reference/ftfy_fixture.py)\n", path, archive_error_string(a));
        fail();
    }
    size_t n = 0, cap = 1 << 20;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        if (cap - n < (1 << 16)) {
            buf = realloc(buf, cap *= 2);
            assert_non_null(buf);
        }
        la_ssize_t r = archive_read_data(a, buf + n, cap - n - 1);
        assert_true(r >= 0);
        if (!r) break;
        n += (size_t)r;
    }
    buf[n] = 0;
    archive_read_free(a);
    return buf;
}

static int is_bad_utf8(const char *s)
{
    size_t len = strlen(s);
    uint32_t *cp = malloc((len + 1) * sizeof *cp);
    assert_non_null(cp);
    size_t n = spo_utf8_decode(s, len, cp);
    int b = spo_ftfy_is_bad(cp, n);
    free(cp);
    return b;
}

/* fix_text of s equals want (or s when want is not a string); 1 if equal */
static int check_fix(const char *s, const cJSON *want, int line)
{
    const char *w = cJSON_IsString(want) ? want->valuestring : s;
    char *got;
    size_t n;
    assert_int_equal(spo_ftfy_fix_utf8(s, strlen(s), &got, &n), SPO_OK);
    int ok = n == strlen(w) && !memcmp(got, w, n);
    if (!ok) {
        cJSON *a = cJSON_CreateString(s), *b = cJSON_CreateString(w), *c = cJSON_CreateString(got);
        char *pa = cJSON_PrintUnformatted(a), *pb = cJSON_PrintUnformatted(b), *pc = cJSON_PrintUnformatted(c);
        print_error("line %d: fix_text(%s)\n  want %s\n  got  %s\n", line, pa, pb, pc);
        free(pa), free(pb), free(pc);
        cJSON_Delete(a), cJSON_Delete(b), cJSON_Delete(c);
    }
    free(got);
    return ok;
}

/* ids of s in mode equal the array want (padded with 49407 to 77) */
static int check_ids(int mode, const char *s, const cJSON *want, int line, int report)
{
    int32_t w[NTOK], got[NTOK];
    int n = cJSON_GetArraySize(want);
    assert_true(n >= 2 && n <= NTOK);
    for (int i = 0; i < NTOK; i++) w[i] = i < n ? (int32_t)cJSON_GetArrayItem(want, i)->valuedouble : 49407;
    assert_int_equal(spo_tok_set_mode(tok, mode), SPO_OK);
    int n_real;
    assert_int_equal(spo_tok_encode(tok, s, got, NTOK, &n_real), SPO_OK);
    int ok = !memcmp(got, w, sizeof w);
    if (!ok && report) {
        print_error("line %d (%s): want", line, spo_tok_mode_name(mode));
        for (int i = 0; i < n; i++) print_error(" %d", w[i]);
        print_error("\n  got ");
        for (int i = 0; i < n_real; i++) print_error(" %d", got[i]);
        print_error("\n");
    }
    return ok;
}

static void test_corpus(void **state)
{
    char *text = read_fixture("corpus.jsonl.gz"), *save = NULL;
    int n = 0, bad_fix = 0, bad_isbad = 0, bad_slow = 0, bad_fast = 0, basic_slow = 0, basic_fast = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        n++;
        cJSON *j = cJSON_Parse(line);
        assert_true(cJSON_IsArray(j) && cJSON_GetArraySize(j) == 5);
        const char *p = cJSON_GetArrayItem(j, 0)->valuestring;
        int report = bad_fix + bad_slow + bad_fast + bad_isbad < 12;
        bad_fix += !check_fix(p, cJSON_GetArrayItem(j, 1), n);
        int want_bad = (int)cJSON_GetArrayItem(j, 4)->valuedouble;
        if (is_bad_utf8(p) != want_bad) {
            bad_isbad++;
            if (report) print_error("line %d: is_bad %d, want %d\n", n, !want_bad, want_bad);
        }
        bad_slow += !check_ids(SPO_TOK_FTFY, p, cJSON_GetArrayItem(j, 2), n, report);
        bad_fast += !check_ids(SPO_TOK_FAST, p, cJSON_GetArrayItem(j, 3), n, report);
        basic_slow += !check_ids(SPO_TOK_BASIC, p, cJSON_GetArrayItem(j, 2), n, 0);
        basic_fast += !check_ids(SPO_TOK_BASIC, p, cJSON_GetArrayItem(j, 3), n, 0);
        cJSON_Delete(j);
    }
    free(text);
    print_message("corpus: %d prompts; fix_text differs on %d, is_bad on %d; ids differ: ftfy mode vs slow+ftfy %d, "
                  "fast mode vs CLIPTokenizerFast %d\n",
                  n, bad_fix, bad_isbad, bad_slow, bad_fast);
    print_message("before (the path without ftfy, SPO_TOK_BASIC): %d differ from slow+ftfy, %d from the fast tokenizer\n",
                  basic_slow, basic_fast);
    assert_true(n >= 1000);
    assert_int_equal(bad_fix, 0);
    assert_int_equal(bad_isbad, 0);
    assert_int_equal(bad_slow, 0);
    assert_int_equal(bad_fast, 0);
}

static void test_noise(void **state)
{
    char *text = read_fixture("noise.jsonl.gz"), *save = NULL;
    int n = 0, bad_fix = 0, bad_isbad = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        n++;
        cJSON *j = cJSON_Parse(line);
        assert_true(cJSON_IsArray(j) && cJSON_GetArraySize(j) == 3);
        const char *p = cJSON_GetArrayItem(j, 0)->valuestring;
        bad_fix += !check_fix(p, cJSON_GetArrayItem(j, 1), n);
        bad_isbad += is_bad_utf8(p) != (int)cJSON_GetArrayItem(j, 2)->valuedouble;
        cJSON_Delete(j);
    }
    free(text);
    print_message("noise: %d strings; fix_text differs on %d, is_bad on %d\n", n, bad_fix, bad_isbad);
    assert_true(n >= 1000);
    assert_int_equal(bad_fix, 0);
    assert_int_equal(bad_isbad, 0);
}

/* a few of ftfy's own documented examples */
static void test_examples(void **state)
{
    static const char *cases[][2] = {
        {"&lt;tag&gt;", "<tag>"},
        {"P&EACUTE;REZ", "P\xc3\x89REZ"},
        {"BUNDESSTRA&SZLIG;E", "BUNDESSTRASSE"},
        {"&ntilde; &Ntilde; &NTILDE; &nTILDE;", "\xc3\xb1 \xc3\x91 \xc3\x91 &nTILDE;"},
        {"<b>&amp;</b>", "<b>&amp;</b>"}, /* a '<' turns unescaping off */
        {"\xef\xac\x82u\xef\xac\x83" "e\xef\xac\x86", "fluffiest"},
        {"\xef\xbc\xac\xef\xbc\xaf\xef\xbc\xb5\xef\xbc\xa4\xe3\x80\x80\xef\xbc\xae", "LOUD N"},
        {"\xe2\x80\x9chere\xe2\x80\x99s a test\xe2\x80\x9d", "\"here's a test\""},
        {"\x1b[36;44mI'm blue\x1b[0m", "I'm blue"},
        {"a\r\nb\rc\xe2\x80\xa8" "d", "a\nb\nc\nd"},
        {"sur \xc3\x83\xc2\xa9t\xc3\x83\xc2\xa9", "sur \xc3\xa9t\xc3\xa9"}, /* double mojibake */
        {"\xc3\xa2\xe2\x82\xac\xc5\x93mismatched quotes\xe2\x80\xa6\xe2\x80\x9d", "\"mismatched quotes\xe2\x80\xa6\""},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *got;
        size_t n;
        assert_int_equal(spo_ftfy_fix_utf8(cases[i][0], strlen(cases[i][0]), &got, &n), SPO_OK);
        if (strcmp(got, cases[i][1])) print_error("case %zu: got '%s' want '%s'\n", i, got, cases[i][1]);
        assert_string_equal(got, cases[i][1]);
        free(got);
    }
}

static void test_modes(void **state)
{
    int m;
    assert_int_equal(spo_tok_mode_parse("ftfy", &m), SPO_OK), assert_int_equal(m, SPO_TOK_FTFY);
    assert_int_equal(spo_tok_mode_parse("basic", &m), SPO_OK), assert_int_equal(m, SPO_TOK_BASIC);
    assert_int_equal(spo_tok_mode_parse("fast", &m), SPO_OK), assert_int_equal(m, SPO_TOK_FAST);
    assert_int_equal(spo_tok_mode_parse("FTFY", &m), SPO_EINVAL);
    assert_int_equal(spo_tok_set_mode(tok, 7), SPO_EINVAL);
    assert_string_equal(spo_tok_mode_name(SPO_TOK_FAST), "fast");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_examples), cmocka_unit_test(test_modes), cmocka_unit_test(test_noise),
        cmocka_unit_test(test_corpus),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
