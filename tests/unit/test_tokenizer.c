/* test_tokenizer.c — the CLIP tokenizer against transformers' CLIPTokenizer
 * (tests/fixtures/tokenizer*.txt, written by tests/reference/
 * tokenizer_fixture.py), plus truncation, invalid UTF-8 and errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>
#include <cmocka.h>

#include "core/err.h"
#include "text/tokenizer.h"

#define NTOK 77

static spo_tok *clip; /* tests/fixtures/clip-tokenizer, loaded once */

static const char *root(void)
{
    const char *r = getenv("SPO_ROOT");
    return r ? r : ".";
}

static int setup(void **state)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/clip-tokenizer", root());
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = spo_tok_load(&clip, dir);
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (!rc) rc = spo_tok_set_mode(clip, SPO_TOK_BASIC); /* these fixtures are the path without ftfy */
    if (rc) {
        print_error("%s\n", spo_errmsg());
        return -1;
    }
    print_message("clip tokenizer loaded in %.1f ms\n", (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6);
    return 0;
}

static int teardown(void **state)
{
    spo_tok_free(clip);
    return 0;
}

/* Compare every line of a fixture (JSON prompt, tab, 77 ids); returns the
 * number of lines checked. */
static int check_fixture(const spo_tok *t, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/%s", root(), name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char line[1 << 16];
    int n = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        char *tab = strchr(line, '\t');
        assert_non_null(tab);
        *tab = 0;
        cJSON *j = cJSON_Parse(line);
        assert_true(cJSON_IsString(j));
        int32_t want[NTOK], got[NTOK];
        char *p = tab + 1, *e;
        for (int i = 0; i < NTOK; i++, p = e) {
            want[i] = (int32_t)strtol(p, &e, 10);
            assert_true(e != p);
        }
        int n_real = -1;
        assert_int_equal(spo_tok_encode(t, j->valuestring, got, NTOK, &n_real), SPO_OK);
        if (memcmp(got, want, sizeof got) != 0) {
            if (bad++ < 5) {
                print_error("%s line %d: %s\n  want", name, n + 1, line);
                for (int i = 0; i < NTOK && want[i] != want[NTOK - 1]; i++) print_error(" %d", want[i]);
                print_error("\n  got ");
                for (int i = 0; i < NTOK && got[i] != got[NTOK - 1]; i++) print_error(" %d", got[i]);
                print_error("\n");
            }
        }
        /* n_real: eos at n_real - 1, padding after it */
        int32_t eos, pad;
        spo_tok_special_ids(t, NULL, &eos, &pad, NULL);
        assert_true(n_real >= 2 && n_real <= NTOK);
        assert_int_equal(got[n_real - 1], eos);
        for (int i = n_real; i < NTOK; i++) assert_int_equal(got[i], pad);
        cJSON_Delete(j);
        n++;
    }
    fclose(f);
    if (bad) print_error("%s: %d of %d prompts differ\n", name, bad, n);
    assert_int_equal(bad, 0);
    return n;
}

static void test_clip_fixture(void **state)
{
    int n = check_fixture(clip, "tokenizer.txt");
    assert_true(n >= 80);
}

static void test_basics(void **state)
{
    int32_t ids[NTOK], bos, eos, pad, unk;
    int n;
    spo_tok_special_ids(clip, &bos, &eos, &pad, &unk);
    assert_int_equal(bos, 49406);
    assert_int_equal(eos, 49407);
    assert_int_equal(pad, 49407);
    assert_int_equal(unk, 49407);
    assert_int_equal(spo_tok_max_length(clip), 77);
    assert_int_equal(spo_tok_vocab_size(clip), 49408);
    assert_int_equal(spo_tok_encode(clip, "a photo of a cat", ids, NTOK, &n), SPO_OK);
    static const int32_t want[] = {49406, 320, 1125, 539, 320, 2368, 49407, 49407};
    assert_memory_equal(ids, want, sizeof want);
    assert_int_equal(n, 7);
    assert_int_equal(spo_tok_encode(clip, "", ids, NTOK, &n), SPO_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 49406);
    for (int i = 1; i < NTOK; i++) assert_int_equal(ids[i], 49407);
}

static void test_truncation(void **state)
{
    int32_t ids[8];
    int n;
    assert_int_equal(spo_tok_encode(clip, "a photo of a cat", ids, 5, &n), SPO_OK);
    static const int32_t w5[] = {49406, 320, 1125, 539, 49407};
    assert_memory_equal(ids, w5, sizeof w5);
    assert_int_equal(n, 5);
    assert_int_equal(spo_tok_encode(clip, "a photo of a cat", ids, 2, &n), SPO_OK);
    assert_int_equal(ids[0], 49406);
    assert_int_equal(ids[1], 49407);
    assert_int_equal(n, 2);
    assert_int_equal(spo_tok_encode(clip, "a photo", ids, 1, &n), SPO_EINVAL);
    /* a long prompt keeps eos last */
    char text[4000] = "";
    for (int i = 0; i < 300; i++) strcat(text, "cat ");
    int32_t big[NTOK];
    assert_int_equal(spo_tok_encode(clip, text, big, NTOK, &n), SPO_OK);
    assert_int_equal(n, NTOK);
    assert_int_equal(big[1], 2368);
    assert_int_equal(big[75], 2368);
    assert_int_equal(big[76], 49407);
    /* max_len beyond 77 works too (no model limit here) */
    int32_t more[100];
    assert_int_equal(spo_tok_encode(clip, text, more, 100, &n), SPO_OK);
    assert_int_equal(n, 100);
    assert_int_equal(more[99], 49407);
}

static void same_ids(const char *a, const char *b)
{
    int32_t x[NTOK], y[NTOK];
    int nx, ny;
    assert_int_equal(spo_tok_encode(clip, a, x, NTOK, &nx), SPO_OK);
    assert_int_equal(spo_tok_encode(clip, b, y, NTOK, &ny), SPO_OK);
    assert_int_equal(nx, ny);
    assert_memory_equal(x, y, sizeof x);
}

/* invalid bytes become U+FFFD, which BasicTokenizer drops */
static void test_invalid_utf8(void **state)
{
    same_ids("a\xff" "b", "ab");
    same_ids("caf\xc3", "caf");
    same_ids("x\xc0\xaf y", "x y");               /* overlong '/' */
    same_ids("x\xed\xa0\x80y", "xy");             /* surrogate */
    same_ids("x\xf4\x90\x80\x80y", "xy");         /* > U+10FFFF */
    same_ids("\xe2\x82 \xe2\x82\xac", " \xe2\x82\xac"); /* truncated, then a valid euro sign */
    same_ids("\x80\x80\x80", "");
    same_ids("\xf0\x9f\x98", "");
    /* random bytes: never a crash, ids in range */
    uint32_t s = 12345;
    char buf[64];
    int32_t ids[NTOK];
    for (int k = 0; k < 3000; k++) {
        int len = (int)(s % 63);
        for (int i = 0; i < len; i++) {
            s = s * 1103515245u + 12345u;
            buf[i] = (char)((s >> 16) & 0xFF);
            if (!buf[i]) buf[i] = 'a';
        }
        buf[len] = 0;
        int n;
        assert_int_equal(spo_tok_encode(clip, buf, ids, NTOK, &n), SPO_OK);
        assert_true(n >= 2 && n <= NTOK);
        for (int i = 0; i < NTOK; i++) assert_true(ids[i] >= 0 && ids[i] < 49408);
        s = s * 1103515245u + 12345u;
    }
}

static void test_bytelevel(void **state)
{
    char dir[] = "/tmp/spo_tok_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sub[sizeof dir + 16];
    snprintf(sub, sizeof sub, "%s/tokenizer", dir);
    assert_int_equal(spo_tok_write_bytelevel(sub), SPO_OK); /* creates the directory */
    assert_int_equal(spo_tok_write_bytelevel(sub), SPO_OK); /* and overwrites */
    spo_tok *t;
    assert_int_equal(spo_tok_load(&t, sub), SPO_OK);
    assert_int_equal(spo_tok_mode(t), SPO_TOK_FTFY); /* the default */
    assert_int_equal(spo_tok_set_mode(t, SPO_TOK_BASIC), SPO_OK);
    assert_int_equal(spo_tok_vocab_size(t), 514);
    int32_t bos, eos, pad;
    spo_tok_special_ids(t, &bos, &eos, &pad, NULL);
    assert_int_equal(bos, 512);
    assert_int_equal(eos, 513);
    assert_int_equal(pad, 513);
    int n = check_fixture(t, "tokenizer_bytelevel.txt");
    assert_true(n >= 20);
    spo_tok_free(t);
    const char *files[] = {"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"};
    char path[sizeof sub + 32];
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", sub, files[i]);
        assert_int_equal(unlink(path), 0);
    }
    rmdir(sub);
    rmdir(dir);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_errors(void **state)
{
    spo_tok *t = (spo_tok *)1;
    assert_int_equal(spo_tok_load(&t, "/nonexistent/dir"), SPO_EINVAL);
    assert_null(t);
    assert_non_null(strstr(spo_errmsg(), "vocab.json"));
    char dir[] = "/tmp/spo_tok_XXXXXX";
    assert_non_null(mkdtemp(dir));
    write_file(dir, "merges.txt", "#version: 0.2\na b\n");
    write_file(dir, "vocab.json", "[1, 2]");
    assert_int_equal(spo_tok_load(&t, dir), SPO_EINVAL);
    write_file(dir, "vocab.json", "{\"a\": 0, \"b\": 1.5}");
    assert_int_equal(spo_tok_load(&t, dir), SPO_EINVAL);
    /* no special tokens in the vocabulary */
    write_file(dir, "vocab.json", "{\"a\": 0, \"b\": 1, \"ab</w>\": 2}");
    assert_int_equal(spo_tok_load(&t, dir), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "bos_token"));
    /* a custom pad token from special_tokens_map.json; unknown symbols -> unk */
    write_file(dir, "vocab.json",
               "{\"a\": 0, \"b</w>\": 1, \"ab</w>\": 2, \"<|startoftext|>\": 3, \"<|endoftext|>\": 4, \"!\": 5}");
    write_file(dir, "merges.txt", "#version: 0.2\na b</w>\n");
    write_file(dir, "special_tokens_map.json", "{\"pad_token\": \"!\"}");
    write_file(dir, "tokenizer_config.json", "{\"model_max_length\": 8, \"pad_token\": \"<|endoftext|>\"}");
    assert_int_equal(spo_tok_load(&t, dir), SPO_OK);
    assert_int_equal(spo_tok_max_length(t), 8);
    int32_t ids[8];
    int n;
    assert_int_equal(spo_tok_encode(t, "ab zz!b", ids, 8, &n), SPO_OK);
    /* "ab" -> ab</w>; "zz" -> unk unk; "!" added token -> 5; "b" -> b</w> */
    static const int32_t want[] = {3, 2, 4, 4, 5, 1, 4, 5};
    assert_memory_equal(ids, want, sizeof want);
    assert_int_equal(n, 7);
    spo_tok_free(t);
    const char *files[] = {"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"};
    char path[sizeof dir + 32];
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
    assert_int_equal(spo_tok_encode(clip, NULL, ids, 8, &n), SPO_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basics),       cmocka_unit_test(test_clip_fixture), cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_invalid_utf8), cmocka_unit_test(test_bytelevel),    cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
