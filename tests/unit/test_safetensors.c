/* test_safetensors.c — safetensors reader and writer: round trips in
 * F32/F16/BF16 with metadata, a file written by the Python library, and a
 * table of malformed headers that must each give SPO_EINVAL and a message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/half.h"
#include "ckpt/safetensors.h"

static char dir[64];

static int setup(void **s)
{
    (void)s;
    strcpy(dir, "/tmp/spo_st_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **s)
{
    (void)s;
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') snprintf(p, sizeof p, "%s/%s", dir, e->d_name), unlink(p);
    if (d) closedir(d);
    rmdir(dir);
    return 0;
}

static int count_files(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static void test_roundtrip(void **s)
{
    (void)s;
    float a[6] = {0, 0.5f, -1, 2, 1e-3f, 3.14159f}, b[4] = {1, -2, 65504, 0x1p-24f}, c[3] = {1.5f, -0.25f, 1e30f};
    float r[6] = {0}, sc = 7;
    int64_t ids[4] = {0, 1, 2, 3};
    int64_t sa[2] = {2, 3}, sb[1] = {4}, sc3[1] = {3}, si[2] = {1, 4}, se[2] = {0, 5};
    spo_st_writer *w;
    char path[128];
    snprintf(path, sizeof path, "%s/rt.safetensors", dir);
    assert_int_equal(spo_st_writer_new(&w), SPO_OK);
    assert_int_equal(spo_st_writer_add(w, "z.f32", SPO_ST_F32, 2, sa, a), SPO_OK);
    assert_int_equal(spo_st_writer_add(w, "b.f16", SPO_ST_F16, 1, sb, b), SPO_OK);
    assert_int_equal(spo_st_writer_add(w, "a.bf16", SPO_ST_BF16, 1, sc3, c), SPO_OK);
    assert_int_equal(spo_st_writer_add_raw(w, "pos", SPO_ST_I64, 2, si, ids), SPO_OK);
    assert_int_equal(spo_st_writer_add(w, "scalar", SPO_ST_F32, 0, NULL, &sc), SPO_OK);
    assert_int_equal(spo_st_writer_add(w, "empty", SPO_ST_F16, 2, se, NULL), SPO_OK);
    assert_int_equal(spo_st_writer_meta(w, "format", "pt"), SPO_OK);
    assert_int_equal(spo_st_writer_meta(w, "quote\"d", "line\nbreak"), SPO_OK);
    assert_int_equal(spo_st_writer_meta(w, "format", "pt2"), SPO_OK); /* replaces */
    assert_int_equal(spo_st_writer_write(w, path), SPO_OK);
    spo_st_writer_free(w);
    assert_int_equal(count_files(), 1); /* no temporary left */

    spo_st *st;
    assert_int_equal(spo_st_open(&st, path), SPO_OK);
    assert_int_equal(spo_st_count(st), 6);
    assert_string_equal(spo_st_get(st, 0)->name, "a.bf16"); /* sorted by name */
    assert_string_equal(spo_st_meta(st, "format"), "pt2");
    assert_string_equal(spo_st_meta(st, "quote\"d"), "line\nbreak");
    assert_null(spo_st_meta(st, "nope"));
    assert_int_equal(spo_st_meta_count(st), 2);
    assert_string_equal(spo_st_meta_key(st, 0), "format");
    assert_null(spo_st_find(st, "nope"));

    const spo_st_tensor *t = spo_st_find(st, "z.f32");
    assert_non_null(t);
    assert_int_equal(t->dtype, SPO_ST_F32);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 3);
    assert_int_equal(t->numel, 6);
    assert_int_equal(t->offset, 36); /* I64 "pos" (32 bytes) first, then F32 by name: "scalar", "z.f32" */
    assert_int_equal(spo_st_read_f32(st, t, r), SPO_OK);
    assert_memory_equal(r, a, sizeof a);

    t = spo_st_find(st, "b.f16");
    assert_int_equal(t->dtype, SPO_ST_F16);
    assert_int_equal(t->nbytes, 8);
    assert_int_equal(spo_st_read_f32(st, t, r), SPO_OK);
    assert_memory_equal(r, b, sizeof b); /* all exact in fp16 */

    t = spo_st_find(st, "a.bf16");
    assert_int_equal(t->dtype, SPO_ST_BF16);
    assert_int_equal(spo_st_read_f32(st, t, r), SPO_OK);
    assert_true(r[0] == 1.5f && r[1] == -0.25f);
    assert_true(r[2] == spo_bf16_to_float(spo_float_to_bf16(1e30f)));

    t = spo_st_find(st, "pos");
    assert_int_equal(t->dtype, SPO_ST_I64);
    assert_int_equal(t->offset, 0);
    assert_memory_equal(t->data, ids, sizeof ids);
    assert_int_equal(spo_st_read_f32(st, t, r), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "'pos': dtype I64 is not a float type"));

    t = spo_st_find(st, "scalar");
    assert_int_equal(t->ndim, 0);
    assert_int_equal(t->numel, 1);
    assert_int_equal(spo_st_read_f32(st, t, r), SPO_OK);
    assert_true(r[0] == 7);
    t = spo_st_find(st, "empty");
    assert_int_equal(t->numel, 0);
    assert_int_equal(spo_st_read_f32(st, t, r), SPO_OK);
    spo_st_close(st);

    /* header padded so the data starts at a multiple of 8 */
    FILE *f = fopen(path, "rb");
    unsigned char h8[8];
    assert_int_equal(fread(h8, 1, 8, f), 8);
    fclose(f);
    assert_int_equal(h8[0] % 8, 0);
}

/* A file written by the reference Python library (tests/fixtures). */
static void test_python_file(void **s)
{
    (void)s;
    const char *root = getenv("SPO_ROOT");
    char path[512];
    snprintf(path, sizeof path, "%s/tests/fixtures/st_python.safetensors", root ? root : ".");
    spo_st *st;
    float r[6];
    assert_int_equal(spo_st_open(&st, path), SPO_OK);
    assert_int_equal(spo_st_count(st), 6);
    assert_string_equal(spo_st_meta(st, "format"), "pt");
    const spo_st_tensor *t = spo_st_find(st, "a.f32");
    assert_int_equal(spo_st_read_f32(st, t, r), SPO_OK);
    for (int i = 0; i < 6; i++) assert_true(r[i] == 0.5f * i);
    t = spo_st_find(st, "b.f16");
    assert_int_equal(spo_st_read_f32(st, t, r), SPO_OK);
    assert_true(r[0] == 1 && r[1] == -2 && r[2] == 65504 && r[3] == 0x1p-24f);
    t = spo_st_find(st, "c.bf16");
    assert_int_equal(spo_st_read_f32(st, t, r), SPO_OK);
    assert_true(r[0] == 1.5f && r[1] == -0.25f);
    t = spo_st_find(st, "pos");
    int64_t ids[4];
    memcpy(ids, t->data, sizeof ids);
    assert_true(ids[3] == 3 && t->shape[0] == 1 && t->shape[1] == 4);
    assert_int_equal(spo_st_find(st, "scalar")->ndim, 0);
    assert_int_equal(spo_st_find(st, "empty")->shape[0], 0);
    spo_st_close(st);
}

/* 8-byte length | json | datalen zero bytes */
static unsigned char *mk(const char *json, size_t datalen, size_t *len)
{
    size_t n = strlen(json);
    *len = 8 + n + datalen;
    unsigned char *b = calloc(1, *len);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(b + 8, json, n);
    return b;
}

static const struct {
    const char *json;
    size_t datalen;
    const char *msg;
} bad[] = {
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]", 8, "not valid JSON"},
    {"[1,2]", 0, "does not start with '{'"},
    {" {}", 0, "does not start with '{'"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", 8, "[0,16] exceed the 8 bytes of data"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "tensor 'b': data_offsets [4,12] overlap tensor 'a'"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 12,
     "tensor 'a': data_offsets [0,12] but shape [2,2] F32 needs 16 bytes"},
    {"{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,1]}}", 1, "tensor 'a': unknown dtype 'Q4'"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,0]}}", 0, "shape[1] is not a non-negative integer"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,0]}}", 0, "shape[0] is not a non-negative integer"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", 0, "overflows"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,0]}}", 0, "shape[0] is not"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "tensor 'a': missing data_offsets"},
    {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "tensor 'a': missing shape"},
    {"{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "tensor 'a': missing dtype"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, "tensor 'a': duplicate name"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "rank 9 exceeds 8"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, "[4,0] begin after end"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, "not a list of two non-negative"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4, "not a list of two non-negative"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "leave bytes [0,4] unused"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "4 bytes of data after the last tensor"},
    {"{\"a\":[1,2]}", 0, "tensor 'a': entry is not an object"},
    {"{\"a\":{\"dtype\":1,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "dtype is not a string"},
    {"{\"__metadata__\":{\"k\":1}}", 0, "__metadata__ 'k' is not a string"},
    {"{\"__metadata__\":[]}", 0, "__metadata__ is not an object"},
    {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate __metadata__"},
    {"{\"\xff\":1}", 0, "not valid UTF-8"},
    {"{\"\xed\xa0\x80\":1}", 0, "not valid UTF-8"}, /* a surrogate */
};

static void test_bad_headers(void **s)
{
    (void)s;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        size_t len;
        unsigned char *b = mk(bad[i].json, bad[i].datalen, &len);
        spo_st *st = (spo_st *)1;
        int rc = spo_st_open_mem(&st, b, len, "bad.safetensors");
        if (rc != SPO_EINVAL || !strstr(spo_errmsg(), bad[i].msg) || strncmp(spo_errmsg(), "bad.safetensors: ", 17))
            fail_msg("case %zu: rc %d, message '%s', expected '%s'", i, rc, spo_errmsg(), bad[i].msg);
        assert_null(st);
        free(b);
    }
}

static void test_bad_lengths(void **s)
{
    (void)s;
    spo_st *st;
    unsigned char b[64] = {0};
    assert_int_equal(spo_st_open_mem(&st, b, 5, "t.st"), SPO_EINVAL); /* truncated length */
    assert_string_equal(spo_errmsg(), "t.st: 5 bytes, too short for a safetensors header");
    assert_int_equal(spo_st_open_mem(&st, b, 0, "t.st"), SPO_EINVAL);
    b[0] = 100; /* header length > file */
    assert_int_equal(spo_st_open_mem(&st, b, 64, "t.st"), SPO_EINVAL);
    assert_string_equal(spo_errmsg(), "t.st: header length 100 but only 56 bytes follow");
    b[0] = 0, b[4] = 1; /* 2^32: over the 100 MB limit */
    assert_int_equal(spo_st_open_mem(&st, b, 64, "t.st"), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "header length 4294967296 exceeds the limit of 100000000 bytes"));
    memset(b, 0, sizeof b);
    b[0] = 1, b[8] = '{'; /* header too small */
    assert_int_equal(spo_st_open_mem(&st, b, 9, "t.st"), SPO_EINVAL);
    memcpy(b + 8, "{}\0     ", 8); /* NUL inside the header */
    b[0] = 8;
    assert_int_equal(spo_st_open_mem(&st, b, 16, "t.st"), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "NUL"));
    memcpy(b + 8, "{}      ", 8); /* empty, space-padded: valid */
    assert_int_equal(spo_st_open_mem(&st, b, 16, "t.st"), SPO_OK);
    assert_int_equal(spo_st_count(st), 0);
    spo_st_close(st);
}

/* The message of the brief, from a file on disk. */
static void test_file_message(void **s)
{
    (void)s;
    char path[128];
    size_t len;
    snprintf(path, sizeof path, "%s/unet.safetensors", dir);
    unsigned char *b = mk("{\"conv_in.weight\":{\"dtype\":\"F32\",\"shape\":[32,4,3,3],\"data_offsets\":[0,100]}}", 100, &len);
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, len, f);
    fclose(f);
    free(b);
    spo_st *st;
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(dir), 0);
    assert_int_equal(spo_st_open(&st, "unet.safetensors"), SPO_EINVAL);
    assert_string_equal(spo_errmsg(),
                        "unet.safetensors: tensor 'conv_in.weight': data_offsets [0,100] but shape [32,4,3,3] F32 "
                        "needs 4608 bytes");
    assert_int_equal(spo_st_open(&st, "missing.safetensors"), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "missing.safetensors: No such file"));
    assert_int_equal(chdir(cwd), 0);
}

static void test_writer_errors(void **s)
{
    (void)s;
    spo_st_writer *w;
    float x[2] = {1, 2};
    int64_t sh[1] = {2}, neg[1] = {-1};
    char path[128];
    assert_int_equal(spo_st_writer_new(&w), SPO_OK);
    assert_int_equal(spo_st_writer_add(w, "x", SPO_ST_I64, 1, sh, x), SPO_EINVAL);
    assert_int_equal(spo_st_writer_add(w, "x", SPO_ST_F32, 1, neg, x), SPO_EINVAL);
    assert_int_equal(spo_st_writer_add(w, "x", SPO_ST_F32, 9, sh, x), SPO_EINVAL);
    assert_int_equal(spo_st_writer_add(w, "__metadata__", SPO_ST_F32, 1, sh, x), SPO_EINVAL);
    assert_int_equal(spo_st_writer_add(w, "x", SPO_ST_F32, 1, sh, NULL), SPO_EINVAL);
    assert_int_equal(spo_st_writer_add(w, "x", SPO_ST_F32, 1, sh, x), SPO_OK);
    assert_int_equal(spo_st_writer_add(w, "x", SPO_ST_F16, 1, sh, x), SPO_OK);
    snprintf(path, sizeof path, "%s/dup.safetensors", dir);
    int before = count_files();
    assert_int_equal(spo_st_writer_write(w, path), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "duplicate tensor 'x'"));
    spo_st_writer_free(w);
    assert_int_equal(spo_st_writer_new(&w), SPO_OK);
    assert_int_equal(spo_st_writer_add(w, "x", SPO_ST_F32, 1, sh, x), SPO_OK);
    snprintf(path, sizeof path, "%s/no/such/dir.safetensors", dir);
    assert_int_equal(spo_st_writer_write(w, path), SPO_EINVAL);
    assert_int_equal(count_files(), before);
    spo_st_writer_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),      cmocka_unit_test(test_python_file),
        cmocka_unit_test(test_bad_headers),    cmocka_unit_test(test_bad_lengths),
        cmocka_unit_test(test_file_message),   cmocka_unit_test(test_writer_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
