/* test_prompts.c — the prompt reader: every format (text, JSON, JSON lines,
 * tar/tar.gz/tar.bz2/tar.xz/zip archives made here with libarchive's
 * writer, stdin with sniffing), stable ids, sharding, and bad inputs that
 * must fail with SPO_EINVAL and a message naming the place. */
#include <archive.h>
#include <archive_entry.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/err.h"
#include "text/prompts.h"

static char dir[256];

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/spo-test-prompts-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

static const char *put(const char *name, const char *data, size_t n)
{
    static char path[4][400];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, 400, "%s/%s", dir, name);
    FILE *fp = fopen(p, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    fclose(fp);
    return p;
}
#define PUT(name, lit) put(name, lit, sizeof lit - 1)

/* read path expecting failure; the message must contain want */
static void expect_bad(const char *path, const char *want)
{
    spo_prompts p;
    int rc = spo_prompts_read(&p, path);
    if (rc != SPO_EINVAL || !strstr(spo_errmsg(), want))
        fail_msg("%s: rc %d, message '%s', wanted '%s'", path, rc, spo_errmsg(), want);
    assert_int_equal(p.n, 0);
    assert_null(p.text);
}

static void test_text(void **state)
{
    spo_prompts p;
    const char *f = PUT("a.txt", "\xef\xbb\xbf" "a red cat\r\n\n   \t\r\n  two spaces kept  \n"
                                 "\xc3\xbcnic\xc3\xb8" "de \xe2\x9c\x93\nlast line without newline");
    assert_int_equal(spo_prompts_read(&p, f), SPO_OK);
    assert_int_equal(p.n, 4);
    assert_string_equal(p.text[0], "a red cat");
    assert_string_equal(p.text[1], "  two spaces kept  ");
    assert_string_equal(p.text[2], "\xc3\xbcnic\xc3\xb8" "de \xe2\x9c\x93");
    assert_string_equal(p.text[3], "last line without newline");
    for (int i = 0; i < 4; i++) assert_int_equal(p.id[i], i);
    spo_prompts_free(&p);
}

static void test_json(void **state)
{
    spo_prompts p;
    const char *f = PUT("b.json", "[\"plain string\", {\"caption\": \"with id\", \"id\": 42},\n"
                                  " {\"prompt\": \"by prompt\"}, {\"text\": \"by text\", \"other\": [1]},\n"
                                  " {\"caption\": \"caption wins\", \"prompt\": \"no\", \"id\": 7},"
                                  " \"\\u00fc \\ud83d\\ude00\"]\n");
    assert_int_equal(spo_prompts_read(&p, f), SPO_OK);
    assert_int_equal(p.n, 6);
    const char *want[] = {"plain string", "with id", "by prompt", "by text", "caption wins", "\xc3\xbc \xf0\x9f\x98\x80"};
    const int64_t ids[] = {0, 42, 2, 3, 7, 5};
    for (int i = 0; i < 6; i++) {
        assert_string_equal(p.text[i], want[i]);
        assert_int_equal(p.id[i], ids[i]);
    }
    spo_prompts_free(&p);
}

static void test_jsonl(void **state)
{
    spo_prompts p;
    const char *f = PUT("c.jsonl", "\"one\"\r\n\n{\"caption\": \"two\", \"id\": 100}\n  \n{\"prompt\": \"three\"}");
    assert_int_equal(spo_prompts_read(&p, f), SPO_OK);
    assert_int_equal(p.n, 3);
    assert_string_equal(p.text[0], "one");
    assert_string_equal(p.text[2], "three");
    assert_int_equal(p.id[0], 0);
    assert_int_equal(p.id[1], 100);
    assert_int_equal(p.id[2], 2);
    spo_prompts_free(&p);
}

static void test_sniff(void **state)
{
    assert_int_equal(spo_prompts_sniff("  \n [\"a\"]", 10), SPO_PF_JSON);
    assert_int_equal(spo_prompts_sniff("\xef\xbb\xbf{\"caption\":\"a\"}\n", 19), SPO_PF_JSONL);
    assert_int_equal(spo_prompts_sniff("\n\"a\"\n\"b\"\n", 9), SPO_PF_JSONL);
    assert_int_equal(spo_prompts_sniff("a cat [sitting]\n", 16), SPO_PF_TEXT);
    assert_int_equal(spo_prompts_sniff("\x1f\x8b\x08", 3), SPO_PF_ARCHIVE);
    assert_int_equal(spo_prompts_sniff("PK\3\4....", 8), SPO_PF_ARCHIVE);
    assert_int_equal(spo_prompts_sniff("", 0), SPO_PF_TEXT);
    assert_int_equal(spo_prompts_format_of("x/P.TXT"), SPO_PF_TEXT);
    assert_int_equal(spo_prompts_format_of("p.ndjson"), SPO_PF_JSONL);
    assert_int_equal(spo_prompts_format_of("p.tgz"), SPO_PF_ARCHIVE);
    assert_int_equal(spo_prompts_format_of("p.tar.xz"), SPO_PF_ARCHIVE);
    assert_int_equal(spo_prompts_format_of("prompts"), SPO_PF_AUTO);
    /* an unknown extension is sniffed */
    spo_prompts p;
    assert_int_equal(spo_prompts_read(&p, PUT("d.list", "[{\"caption\": \"x\", \"id\": 3}]")), SPO_OK);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.id[0], 3);
    spo_prompts_free(&p);
}

/* stdin: redirect it from a file in a child process */
static void test_stdin(void **state)
{
    const char *f = PUT("in.jsonl", "{\"caption\": \"from stdin\", \"id\": 9}\n\"second\"\n");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        spo_prompts p;
        if (!freopen(f, "rb", stdin)) _exit(3);
        int ok = spo_prompts_read(&p, "-") == SPO_OK && p.n == 2 && !strcmp(p.text[0], "from stdin") &&
                 p.id[0] == 9 && p.id[1] == 1;
        spo_prompts_free(&p);
        _exit(ok ? 0 : 1);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

typedef struct {
    const char *name, *data; /* data NULL: a directory */
} member;

/* write an archive with libarchive: fmt ARCHIVE_FORMAT_*, filter ARCHIVE_FILTER_* */
static const char *make_archive(const char *name, int fmt, int filter, const member *m, int n)
{
    static char path[400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct archive *a = archive_write_new();
    assert_int_equal(archive_write_set_format(a, fmt), ARCHIVE_OK);
    if (filter != ARCHIVE_FILTER_NONE) assert_int_equal(archive_write_add_filter(a, filter), ARCHIVE_OK);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    for (int i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, m[i].name);
        archive_entry_set_perm(e, 0644);
        if (m[i].data) {
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_size(e, (la_int64_t)strlen(m[i].data));
        } else {
            archive_entry_set_filetype(e, AE_IFDIR);
        }
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        if (m[i].data) assert_int_equal(archive_write_data(a, m[i].data, strlen(m[i].data)), (la_ssize_t)strlen(m[i].data));
        archive_entry_free(e);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    return path;
}

static const member set[] = {
    {"prompts/", NULL},
    {"prompts/a.txt", "alpha\nbeta\n"},
    {"__MACOSX/prompts/._a.txt", "\x00\x05\x16\x07 junk"},
    {"prompts/b.json", "[{\"caption\": \"gamma\", \"id\": 50}, \"delta\"]"},
    {"prompts/c.JSONL", "\"epsilon\"\n"},
};

static void check_set(const char *path)
{
    spo_prompts p;
    if (spo_prompts_read(&p, path)) fail_msg("%s: %s", path, spo_errmsg());
    assert_int_equal(p.n, 5);
    const char *want[] = {"alpha", "beta", "gamma", "delta", "epsilon"};
    const int64_t ids[] = {0, 1, 50, 3, 4};
    for (int i = 0; i < 5; i++) {
        assert_string_equal(p.text[i], want[i]);
        assert_int_equal(p.id[i], ids[i]);
    }
    spo_prompts_free(&p);
}

static void test_archives(void **state)
{
    int n = (int)(sizeof set / sizeof set[0]);
    check_set(make_archive("s.tar", ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FILTER_NONE, set, n));
    check_set(make_archive("s.tar.gz", ARCHIVE_FORMAT_TAR_USTAR, ARCHIVE_FILTER_GZIP, set, n));
    check_set(make_archive("s.tar.bz2", ARCHIVE_FORMAT_TAR_GNUTAR, ARCHIVE_FILTER_BZIP2, set, n));
    check_set(make_archive("s.tar.xz", ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FILTER_XZ, set, n));
    check_set(make_archive("s.zip", ARCHIVE_FORMAT_ZIP, ARCHIVE_FILTER_NONE, set, n));
    /* sniffed without an extension */
    check_set(make_archive("sniffed", ARCHIVE_FORMAT_TAR_USTAR, ARCHIVE_FILTER_GZIP, set, n));
}

static void test_stable_ids(void **state)
{
    const char *f = PUT("st.json", "[\"a\", {\"caption\": \"b\", \"id\": 1000}, \"c\", \"d\"]");
    spo_prompts p, q;
    assert_int_equal(spo_prompts_read(&p, f), SPO_OK);
    assert_int_equal(spo_prompts_read(&q, f), SPO_OK);
    assert_int_equal(p.n, q.n);
    for (int i = 0; i < p.n; i++) assert_int_equal(p.id[i], q.id[i]);
    assert_int_equal(p.id[1], 1000);
    assert_int_equal(p.id[3], 3);
    /* a shard keeps the ids of the whole set */
    assert_int_equal(spo_prompts_shard(&q, 1, 2), SPO_OK);
    assert_int_equal(q.n, 2);
    assert_string_equal(q.text[0], "b");
    assert_int_equal(q.id[0], 1000);
    assert_string_equal(q.text[1], "d");
    assert_int_equal(q.id[1], 3);
    spo_prompts_free(&p);
    spo_prompts_free(&q);
}

static void test_shard(void **state)
{
    spo_prompts p;
    assert_int_equal(spo_prompts_read(&p, PUT("ten.txt", "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n")), SPO_OK);
    assert_int_equal(spo_prompts_shard(&p, 2, 3), SPO_OK);
    assert_int_equal(p.n, 3);
    assert_int_equal(p.id[0], 2);
    assert_int_equal(p.id[1], 5);
    assert_int_equal(p.id[2], 8);
    assert_int_equal(spo_prompts_shard(&p, 3, 3), SPO_EINVAL);
    spo_prompts_free(&p);
    int i, n;
    assert_int_equal(spo_shard_parse("0/1", &i, &n), SPO_OK);
    assert_int_equal(spo_shard_parse("3/8", &i, &n), SPO_OK);
    assert_int_equal(i, 3);
    assert_int_equal(n, 8);
    const char *bad[] = {"", "1", "1/1", "-1/2", "1/0", "a/2", "1/2x", "1 /2", "1/+2", NULL};
    for (int k = 0; bad[k]; k++) assert_int_equal(spo_shard_parse(bad[k], &i, &n), SPO_EINVAL);
}

static void test_bad_inputs(void **state)
{
    char missing[300];
    snprintf(missing, sizeof missing, "%s/nope.txt", dir);
    expect_bad(missing, "nope.txt: No such file or directory");
    expect_bad(dir, "is a directory");
    expect_bad(PUT("e.txt", "\n  \n"), "e.txt: no prompts");
    expect_bad(PUT("e.json", "  \n"), "e.json: empty file");
    expect_bad(PUT("inv.json", "[\"a\",\n\"b\",\n{\"caption\": }]"), "inv.json: invalid JSON at line 3");
    expect_bad(PUT("trail.json", "[\"a\"] x"), "trail.json: invalid JSON at line 1");
    expect_bad(PUT("obj.json", "{\"caption\": \"a\"}"), "obj.json: expected a JSON list");
    expect_bad(PUT("nocap.json", "[\"a\", \"b\", \"c\", {\"title\": \"d\"}]"), "nocap.json: item 3: no 'caption' string");
    expect_bad(PUT("num.json", "[{\"caption\": 5}]"), "num.json: item 0: 'caption' is not a string");
    expect_bad(PUT("null.json", "[\"a\", null]"), "null.json: item 1: not a string or an object");
    expect_bad(PUT("dup.json", "[{\"caption\": \"a\", \"id\": 1}, \"b\"]"), "dup.json: item 1: duplicate id 1");
    expect_bad(PUT("dup2.json", "[\"a\", {\"caption\": \"b\", \"id\": 0}]"), "item 1: duplicate id 0");
    expect_bad(PUT("fid.json", "[{\"caption\": \"a\", \"id\": 1.5}]"), "item 0: 'id' is not a non-negative integer");
    expect_bad(PUT("sid.json", "[{\"caption\": \"a\", \"id\": \"7\"}]"), "item 0: 'id' is not a non-negative integer");
    expect_bad(PUT("neg.jsonl", "{\"caption\": \"a\", \"id\": -1}"), "neg.jsonl: line 1: 'id' is not");
    expect_bad(PUT("bad.jsonl", "\"a\"\n\n{\"caption\": \"b\"\n"), "bad.jsonl: line 3: invalid JSON");
    expect_bad(PUT("utf.txt", "ok\nbad \xc3\x28 byte\n"), "utf.txt: line 2: invalid UTF-8");
    expect_bad(PUT("nul.txt", "ok\nnul \0 byte\n"), "nul.txt: line 2: NUL byte");
    expect_bad(PUT("utf.json", "[\"ok\", \"\xed\xa0\x80\"]"), "utf.json: item 1: invalid UTF-8");
    expect_bad(PUT("fake.zip", "PK\3\4 not really a zip"), "fake.zip");

    const member readme[] = {{"a.txt", "x\n"}, {"docs/README.md", "hi"}};
    expect_bad(make_archive("r.tar.gz", ARCHIVE_FORMAT_TAR_USTAR, ARCHIVE_FILTER_GZIP, readme, 2),
               "r.tar.gz: member docs/README.md: not a prompt file");
    const member inner[] = {{"a.txt", "x\n"}, {"b.json", "[\"y\", {\"id\": 2}]"}};
    expect_bad(make_archive("i.zip", ARCHIVE_FORMAT_ZIP, ARCHIVE_FILTER_NONE, inner, 2),
               "i.zip: member b.json: item 1: no 'caption' string");
    const member dup[] = {{"a.txt", "x\ny\n"}, {"b.jsonl", "{\"caption\": \"z\", \"id\": 1}"}};
    expect_bad(make_archive("d.tar", ARCHIVE_FORMAT_TAR_USTAR, ARCHIVE_FILTER_NONE, dup, 2),
               "d.tar: member b.jsonl: line 1: duplicate id 1");

    /* a truncated gzip: cut a valid .tar.gz in half */
    char big[8192];
    for (size_t i = 0; i < sizeof big - 1; i++) big[i] = (char)('a' + (i * 7919 % 26)), big[i] = i % 61 ? big[i] : '\n';
    big[sizeof big - 1] = 0;
    const member one[] = {{"big.txt", big}};
    const char *tgz = make_archive("t.tar.gz", ARCHIVE_FORMAT_TAR_USTAR, ARCHIVE_FILTER_GZIP, one, 1);
    FILE *fp = fopen(tgz, "rb");
    char buf[16384];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    assert_true(n > 100);
    expect_bad(put("cut.tar.gz", buf, n / 2), "cut.tar.gz");
    expect_bad(put("cut.tar.gz", buf, 5), "cut.tar.gz");
}

/* a failed parse leaves an existing set as it was */
static void test_rollback(void **state)
{
    spo_prompts p = {0};
    assert_int_equal(spo_prompts_parse(&p, "m", "a\nb\n", 4, SPO_PF_TEXT), SPO_OK);
    assert_int_equal(spo_prompts_parse(&p, "m2", "[\"c\", 3]", 8, SPO_PF_JSON), SPO_EINVAL);
    assert_string_equal(spo_errmsg(), "m2: item 1: not a string or an object with a 'caption'");
    assert_int_equal(p.n, 2);
    assert_int_equal(spo_prompts_parse(&p, "m3", "\"c\"", 3, SPO_PF_AUTO), SPO_OK);
    assert_int_equal(p.n, 3);
    assert_int_equal(p.id[2], 2);
    spo_prompts_free(&p);
}

/* many prompts: the id table grows */
static void test_many(void **state)
{
    size_t n = 20000, k = 0;
    char *b = malloc(n * 8);
    for (size_t i = 0; i < n; i++) k += (size_t)sprintf(b + k, "p%zu\n", i);
    spo_prompts p = {0};
    assert_int_equal(spo_prompts_parse(&p, "many", b, k, SPO_PF_TEXT), SPO_OK);
    assert_int_equal(p.n, (int)n);
    assert_int_equal(p.id[n - 1], (int64_t)n - 1);
    assert_string_equal(p.text[12345], "p12345");
    spo_prompts_free(&p);
    free(b);
}

/* JSON's \u0000 would cut a prompt at the NUL: refused, as a raw NUL in
 * a .txt is; an escaped backslash before "u0000" is ordinary text */
static void test_json_nul(void **state)
{
    spo_prompts p = {0};
    const char *bad = "[\"ok\",\n \"a \\u0000 b\"]";
    assert_int_equal(spo_prompts_parse(&p, "n.json", bad, strlen(bad), SPO_PF_JSON), SPO_EINVAL);
    assert_string_equal(spo_errmsg(), "n.json: line 2: NUL byte in a string (\\u0000)");
    const char *badl = "{\"caption\": \"x\", \"k\\u0000\": 1}\n";
    assert_int_equal(spo_prompts_parse(&p, "n.jsonl", badl, strlen(badl), SPO_PF_JSONL), SPO_EINVAL);
    assert_string_equal(spo_errmsg(), "n.jsonl: line 1: NUL byte in a string (\\u0000)");
    assert_int_equal(p.n, 0);
    const char *ok = "[\"a\\\\u0000b\", \"c\\u0001\"]";
    assert_int_equal(spo_prompts_parse(&p, "o.json", ok, strlen(ok), SPO_PF_JSON), SPO_OK);
    assert_int_equal(p.n, 2);
    assert_string_equal(p.text[0], "a\\u0000b");
    assert_string_equal(p.text[1], "c\x01");
    spo_prompts_free(&p);
}

/* a tar of 50,000 one-prompt members reads in linear time: one id table
 * for the whole archive (it was rebuilt per member: 25,000 members took
 * 1.2 s, 100,000 42 s); here well under a second, 5 s allowed for
 * the sanitizer build on a loaded machine */
static void test_many_members(void **state)
{
    enum { N = 50000 };
    member *m = calloc(N, sizeof *m);
    char *names = malloc((size_t)N * 32), *texts = malloc((size_t)N * 32);
    assert_non_null(m);
    assert_non_null(names);
    assert_non_null(texts);
    for (int i = 0; i < N; i++) {
        snprintf(names + 32 * (size_t)i, 32, "p/%06d.txt", i);
        snprintf(texts + 32 * (size_t)i, 32, "prompt %d\n", i);
        m[i].name = names + 32 * (size_t)i;
        m[i].data = texts + 32 * (size_t)i;
    }
    const char *path = make_archive("many.tar", ARCHIVE_FORMAT_TAR_USTAR, ARCHIVE_FILTER_NONE, m, N);
    spo_prompts p;
    clock_t t0 = clock();
    assert_int_equal(spo_prompts_read(&p, path), SPO_OK);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    printf("%d members read in %.3f s of CPU\n", N, secs);
    assert_int_equal(p.n, N);
    assert_int_equal(p.id[N - 1], N - 1);
    assert_string_equal(p.text[31415], "prompt 31415");
    assert_true(secs < 5.0);
    spo_prompts_free(&p);
    free(m);
    free(names);
    free(texts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text),      cmocka_unit_test(test_json),       cmocka_unit_test(test_jsonl),
        cmocka_unit_test(test_sniff),     cmocka_unit_test(test_stdin),      cmocka_unit_test(test_archives),
        cmocka_unit_test(test_stable_ids), cmocka_unit_test(test_shard),     cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_rollback),  cmocka_unit_test(test_many),
        cmocka_unit_test(test_many_members), cmocka_unit_test(test_json_nul),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
