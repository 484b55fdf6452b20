/* test_ptbin_write.c — the checkpoint writer: its output equals torch.save's
 * byte for byte (tests/fixtures/pickles/torch_ref.bin, written by
 * tests/reference/check_ptbin_write.py from the same formulas as
 * add_reference below), reads back exactly through spo_ptbin_open for every
 * dtype (0-d and empty tensors too), keeps member data 64-byte aligned, and
 * refuses bad input leaving no file behind.
 * With SPO_PTW_KEEP=DIR it also leaves its files in DIR for
 * check_ptbin_write.py (torch.load(weights_only=True) of each). */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/half.h"
#include "ckpt/ptbin.h"
#include "ckpt/ptbin_write.h"
#include "ckpt/ptzip.h"
#include "ckpt/ptzip_write.h"

static char tmp[] = "/tmp/spo_ptw_XXXXXX";

static const char *in_tmp(const char *name)
{
    static char p[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", tmp, name);
    return p[k];
}

static int setup(void **state)
{
    return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state)
{
    DIR *d = opendir(tmp);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') unlink(in_tmp(e->d_name));
    if (d) closedir(d);
    rmdir(tmp);
    return 0;
}

/* buffers that must outlive the writer */
typedef struct {
    void *p[64];
    int n;
} arena;

static void *grab(arena *a, size_t bytes)
{
    assert_true(a->n < 64);
    return a->p[a->n++] = calloc(1, bytes ? bytes : 1);
}

static void arena_free(arena *a)
{
    for (int i = 0; i < a->n; i++) free(a->p[i]);
    a->n = 0;
}

static void add(spo_ptbin_writer *w, const char *name, spo_pt_dtype dt, int ndim, const int64_t *shape, const void *d)
{
    int rc = spo_ptbin_writer_add(w, name, dt, ndim, shape, d);
    if (rc) fprintf(stderr, "%s\n", spo_errmsg());
    assert_int_equal(rc, SPO_OK);
}

/* store v as dtype dt at element j (the "other" dtypes of kind 7) */
static void set_elem(void *p, spo_pt_dtype dt, int j, double v)
{
    switch (dt) {
    case SPO_PT_F64: ((double *)p)[j] = v; break;
    case SPO_PT_I32: ((int32_t *)p)[j] = (int32_t)v; break;
    case SPO_PT_I16: ((int16_t *)p)[j] = (int16_t)v; break;
    case SPO_PT_I8: ((int8_t *)p)[j] = (int8_t)v; break;
    default: ((uint8_t *)p)[j] = (uint8_t)v; break;
    }
}

/* check_ptbin_write.py reference_state_dict() */
static void add_reference(spo_ptbin_writer *w, arena *a)
{
    static const spo_pt_dtype others[5] = {SPO_PT_F64, SPO_PT_I32, SPO_PT_I16, SPO_PT_I8, SPO_PT_U8};
    for (int i = 0; i < 40; i++) {
        int k = i % 8;
        char name[32];
        snprintf(name, sizeof name, "layer%d.k%d", i, k);
        if (k == 0) {
            float *v = grab(a, 6 * sizeof *v);
            for (int j = 0; j < 6; j++) v[j] = (float)((j * 2 - 5) * 0.125 + i);
            add(w, name, SPO_PT_F32, 2, (int64_t[]){2, 3}, v);
        } else if (k == 1 || k == 2) {
            int n = k == 1 ? 4 : 6, step = k == 1 ? 5 : 7, e = k == 1 ? -14 : -12;
            float *v = grab(a, (size_t)n * sizeof *v);
            for (int j = 0; j < n; j++) v[j] = (float)((1 + ldexp(j * step + i, e)) * (j % 2 ? -1 : 1));
            if (k == 1) add(w, name, SPO_PT_F16, 1, (int64_t[]){4}, v);
            else add(w, name, SPO_PT_BF16, 2, (int64_t[]){3, 2}, v);
        } else if (k == 3) {
            int64_t *v = grab(a, 3 * sizeof *v);
            for (int j = 0; j < 3; j++) v[j] = (int64_t)i * 1000003 - j * ((int64_t)1 << 40);
            add(w, name, SPO_PT_I64, 1, (int64_t[]){3}, v);
        } else if (k == 4) {
            float *v = grab(a, sizeof *v);
            *v = i + 0.5f;
            add(w, name, SPO_PT_F32, 0, NULL, v);
        } else if (k == 5) {
            if (i == 5) add(w, name, SPO_PT_F32, 2, (int64_t[]){0, 3000000000}, NULL);
            else add(w, name, SPO_PT_F16, 3, (int64_t[]){2, 0, 3}, NULL);
        } else if (k == 6) {
            float *v = grab(a, 8 * sizeof *v);
            for (int j = 0; j < 8; j++) v[j] = j * 0.5f - i;
            add(w, name, SPO_PT_F32, 5, (int64_t[]){1, 2, 1, 2, 2}, v);
        } else {
            spo_pt_dtype dt = others[(i / 8) % 5];
            void *v = grab(a, 3 * 8);
            for (int j = 0; j < 3; j++) set_elem(v, dt, j, j * 3 + i / 8 - 2);
            add(w, name, dt, 1, (int64_t[]){3}, v);
        }
    }
    static const uint8_t flags[3] = {1, 0, 1};
    static const float seven = 7;
    add(w, "flags", SPO_PT_BOOL, 1, (int64_t[]){3}, flags);
    add(w, "\xc3\xbcn\xc3\xaf.\xf0\x9f\x98\x80", SPO_PT_F32, 1, (int64_t[]){1}, &seven);
}

/* check_ptbin_write.py all_dtypes_state_dict() */
static float ad_f32[6], ad_f16[4], ad_bf16[6];
static const double ad_f64[2] = {0.1, -2.5};
static const int64_t ad_i64[3] = {-((int64_t)1 << 62), 0, (int64_t)1 << 62};
static const int32_t ad_i32[3] = {-7, 8, 9};
static const int16_t ad_i16[2] = {-300, 300};
static const int8_t ad_i8[2] = {-128, 127};
static const uint8_t ad_u8[2] = {0, 255}, ad_bool[2] = {1, 0};
static const float ad_scalar = -3.25f;

static const struct {
    const char *name;
    spo_pt_dtype dt;
    int ndim;
    int64_t shape[2];
    const void *data;
} ad[] = {
    {"f32", SPO_PT_F32, 2, {2, 3}, ad_f32},  {"f16", SPO_PT_F16, 1, {4}, ad_f16},
    {"bf16", SPO_PT_BF16, 2, {3, 2}, ad_bf16}, {"f64", SPO_PT_F64, 1, {2}, ad_f64},
    {"i64", SPO_PT_I64, 1, {3}, ad_i64},     {"i32", SPO_PT_I32, 1, {3}, ad_i32},
    {"i16", SPO_PT_I16, 1, {2}, ad_i16},     {"i8", SPO_PT_I8, 1, {2}, ad_i8},
    {"u8", SPO_PT_U8, 1, {2}, ad_u8},        {"bool", SPO_PT_BOOL, 1, {2}, ad_bool},
    {"scalar", SPO_PT_F32, 0, {0}, &ad_scalar}, {"empty", SPO_PT_F32, 2, {0, 4}, NULL},
};
#define N_AD ((int)(sizeof ad / sizeof ad[0]))

static void add_all_dtypes(spo_ptbin_writer *w)
{
    for (int j = 0; j < 6; j++) ad_f32[j] = j * 0.25f - 1;
    for (int j = 0; j < 4; j++) ad_f16[j] = j / 8.0f + ldexpf(1, -13);
    for (int j = 0; j < 6; j++) ad_bf16[j] = j * 1.5f + ldexpf(1, -9);
    for (int i = 0; i < N_AD; i++) add(w, ad[i].name, ad[i].dt, ad[i].ndim, ad[i].shape, ad[i].data);
}

static void write_ok(spo_ptbin_writer *w, const char *path)
{
    int rc = spo_ptbin_writer_write(w, path);
    if (rc) fprintf(stderr, "%s\n", spo_errmsg());
    assert_int_equal(rc, SPO_OK);
    const char *keep = getenv("SPO_PTW_KEEP");
    if (keep && *keep) { /* a second copy for check_ptbin_write.py */
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", keep, strrchr(path, '/') + 1);
        assert_int_equal(spo_ptbin_writer_write(w, p), SPO_OK);
    }
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    return b;
}

static void test_equals_torch_save(void **state)
{
    spo_ptbin_writer *w;
    arena a = {0};
    assert_int_equal(spo_ptbin_writer_new(&w), SPO_OK);
    add_reference(w, &a);
    write_ok(w, in_tmp("torch_ref.bin"));
    spo_ptbin_writer_free(w);
    arena_free(&a);

    const char *root = getenv("SPO_ROOT");
    char fix[1024];
    snprintf(fix, sizeof fix, "%s/tests/fixtures/pickles/torch_ref.bin", root ? root : ".");
    size_t n1, n2;
    unsigned char *got = slurp(in_tmp("torch_ref.bin"), &n1), *want = slurp(fix, &n2);
    if (!want) fprintf(stderr, "%s missing (run from the repository root)\n", fix);
    assert_non_null(got);
    assert_non_null(want);
    assert_int_equal(n1, n2);
    for (size_t i = 0; i < n1; i++)
        if (got[i] != want[i]) {
            fprintf(stderr, "first difference at byte %zu: %02x, torch.save wrote %02x\n", i, got[i], want[i]);
            fail();
        }
    free(got);
    free(want);

    spo_ptbin *b;
    assert_int_equal(spo_ptbin_open(&b, in_tmp("torch_ref.bin")), SPO_OK);
    assert_int_equal(spo_ptbin_count(b), 42);
    const spo_ptbin_tensor *t = spo_ptbin_find(b, "layer5.k5");
    assert_non_null(t);
    assert_int_equal(t->shape[1], 3000000000);
    assert_int_equal(t->numel, 0);
    spo_ptbin_close(b);
}

/* every dtype back through the reader, bit for bit, in order */
static void test_roundtrip(void **state)
{
    spo_ptbin_writer *w;
    assert_int_equal(spo_ptbin_writer_new(&w), SPO_OK);
    add_all_dtypes(w);
    write_ok(w, in_tmp("all_dtypes.bin"));
    spo_ptbin_writer_free(w);

    spo_ptbin *b;
    int rc = spo_ptbin_open(&b, in_tmp("all_dtypes.bin"));
    if (rc) fprintf(stderr, "%s\n", spo_errmsg());
    assert_int_equal(rc, SPO_OK);
    assert_int_equal(spo_ptbin_count(b), N_AD);
    for (int i = 0; i < N_AD; i++) {
        const spo_ptbin_tensor *t = spo_ptbin_get(b, i);
        assert_string_equal(t->name, ad[i].name);
        assert_int_equal(t->dtype, ad[i].dt);
        assert_int_equal(t->ndim, ad[i].ndim);
        assert_true(t->contiguous);
        assert_int_equal(t->offset, 0);
        int64_t numel = 1, stride = 1;
        for (int d = ad[i].ndim - 1; d >= 0; d--) {
            assert_int_equal(t->shape[d], ad[i].shape[d]);
            assert_int_equal(t->stride[d], stride);
            stride *= ad[i].shape[d] ? ad[i].shape[d] : 1;
            numel *= ad[i].shape[d];
        }
        assert_int_equal(t->numel, numel);
        size_t es = spo_pt_dtype_size(t->dtype), nb = (size_t)numel * es;
        assert_int_equal(t->storage_bytes, nb);
        unsigned char *got = malloc(nb + 1), *want = malloc(nb + 1);
        assert_int_equal(spo_ptbin_read_raw(b, t, got), SPO_OK);
        if (t->dtype == SPO_PT_F16) spo_f32_to_f16((uint16_t *)want, ad[i].data, (size_t)numel);
        else if (t->dtype == SPO_PT_BF16) spo_f32_to_bf16((uint16_t *)want, ad[i].data, (size_t)numel);
        else if (nb) memcpy(want, ad[i].data, nb);
        assert_memory_equal(got, want, nb);
        free(got);
        free(want);
    }
    spo_ptbin_close(b);
}

/* raw f16/bf16 bits go in untouched; the archive is named after the file */
static void test_raw_and_archive_name(void **state)
{
    static const uint16_t bits[3] = {0x7c00, 0x8001, 0x3555}; /* inf, -tiny subnormal, ~1/3 */
    spo_ptbin_writer *w;
    assert_int_equal(spo_ptbin_writer_new(&w), SPO_OK);
    assert_int_equal(spo_ptbin_writer_add_raw(w, "h", SPO_PT_F16, 1, (int64_t[]){3}, bits), SPO_OK);
    assert_int_equal(spo_ptbin_writer_add_raw(w, "b", SPO_PT_BF16, 1, (int64_t[]){3}, bits), SPO_OK);
    write_ok(w, in_tmp("x.y.pt"));
    spo_ptbin_writer_free(w);
    spo_ptzip z;
    assert_int_equal(spo_ptzip_open(&z, in_tmp("x.y.pt")), SPO_OK);
    assert_string_equal(z.archive, "x.y");
    assert_int_equal(z.version, 3);
    assert_int_equal(z.nst, 2);
    assert_memory_equal(z.st[0].data, bits, 6);
    assert_memory_equal(z.st[1].data, bits, 6);
    spo_ptzip_close(&z);

    static const char *cases[][2] = {{"a/b/model.bin", "model"}, {"x.tar.gz", "x.tar"}, {"noext", "noext"},
                                     {"dir.d/file", "file"},     {"a\\b.c", "b"},        {".bin", "archive"},
                                     {"x.", "x"},                {"d/", "archive"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = spo_ptzip_archive_name(cases[i][0]);
        assert_string_equal(s, cases[i][1]);
        free(s);
    }
}

static uint64_t rd(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* every member's data starts at a multiple of 64 (central directory ->
 * local header -> name and extra lengths) */
static void test_alignment(void **state)
{
    size_t n;
    unsigned char *f = slurp(in_tmp("all_dtypes.bin"), &n);
    if (!f) { /* test_roundtrip writes it */
        skip();
    }
    assert_true(n > 22 && rd(f + n - 22, 4) == 0x06054b50);
    uint64_t cd = rd(f + n - 22 + 16, 4), entries = rd(f + n - 22 + 10, 2);
    assert_int_equal(entries, N_AD + 4); /* data.pkl, byteorder, version, serialization_id */
    for (uint64_t e = 0; e < entries; e++) {
        assert_int_equal(rd(f + cd, 4), 0x02014b50);
        uint64_t lh = rd(f + cd + 42, 4), nl = rd(f + cd + 28, 2), el = rd(f + cd + 30, 2), cl = rd(f + cd + 32, 2);
        assert_int_equal(rd(f + lh, 4), 0x04034b50);
        assert_int_equal(rd(f + lh + 8, 2), 0); /* stored */
        uint64_t data = lh + 30 + rd(f + lh + 26, 2) + rd(f + lh + 28, 2);
        assert_int_equal(data % 64, 0);
        assert_memory_equal(f + lh + 30 + rd(f + lh + 26, 2), "FB", 2);
        cd += 46 + nl + el + cl;
    }
    free(f);
}

/* 1001 tensors: two SETITEMS batches, LONG_BINPUT/LONG_BINGET memo */
static void test_many(void **state)
{
    static float v[1001][2];
    spo_ptbin_writer *w;
    assert_int_equal(spo_ptbin_writer_new(&w), SPO_OK);
    for (int i = 0; i < 1001; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        v[i][0] = v[i][1] = (float)i;
        add(w, name, SPO_PT_F32, 1, (int64_t[]){i % 3}, v[i]);
    }
    write_ok(w, in_tmp("many.bin"));
    spo_ptbin_writer_free(w);
    spo_ptbin *b;
    assert_int_equal(spo_ptbin_open(&b, in_tmp("many.bin")), SPO_OK);
    assert_int_equal(spo_ptbin_count(b), 1001);
    for (int i = 0; i < 1001; i++) {
        const spo_ptbin_tensor *t = spo_ptbin_get(b, i);
        char name[16];
        float f[2] = {-1, -1};
        snprintf(name, sizeof name, "t%d", i);
        assert_string_equal(t->name, name);
        assert_int_equal(t->numel, i % 3);
        assert_int_equal(spo_ptbin_read_f32(b, t, f), SPO_OK);
        for (int j = 0; j < i % 3; j++) assert_true(f[j] == (float)i);
    }
    spo_ptbin_close(b);
}

static int no_tmp_left(void)
{
    DIR *d = opendir(tmp);
    struct dirent *e;
    int ok = 1;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) ok = 0;
    closedir(d);
    return ok;
}

static void test_errors(void **state)
{
    spo_ptbin_writer *w;
    float x[4] = {0};
    assert_int_equal(spo_ptbin_writer_new(&w), SPO_OK);
    assert_int_equal(spo_ptbin_writer_add(w, "", SPO_PT_F32, 1, (int64_t[]){1}, x), SPO_EINVAL);
    assert_int_equal(spo_ptbin_writer_add(w, "bad\xff", SPO_PT_F32, 1, (int64_t[]){1}, x), SPO_EINVAL);
    assert_int_equal(spo_ptbin_writer_add(w, "dt", SPO_PT_NDTYPE, 1, (int64_t[]){1}, x), SPO_EINVAL);
    assert_int_equal(spo_ptbin_writer_add(w, "rank", SPO_PT_F32, 9, (int64_t[9]){1}, x), SPO_EINVAL);
    assert_int_equal(spo_ptbin_writer_add(w, "neg", SPO_PT_F32, 1, (int64_t[]){-1}, x), SPO_EINVAL);
    assert_int_equal(spo_ptbin_writer_add(w, "nodata", SPO_PT_F32, 1, (int64_t[]){2}, NULL), SPO_EINVAL);
    assert_int_equal(spo_ptbin_writer_add(w, "huge", SPO_PT_F32, 3, ((int64_t[]){1 << 30, 1 << 30, 1 << 30}), x),
                     SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "huge"));
    spo_ptbin_writer_free(w);
}

static void test_write_failures(void **state)
{
    spo_ptbin_writer *w;
    float x[2] = {1, 2};
    assert_int_equal(spo_ptbin_writer_new(&w), SPO_OK);
    add(w, "a", SPO_PT_F32, 1, (int64_t[]){2}, x);
    /* a missing folder: a bad call (as for every output), nothing left */
    assert_int_equal(spo_ptbin_writer_write(w, "/nonexistent-spo-dir/m.bin"), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "/nonexistent-spo-dir/m.bin"));
    /* a duplicate name: invalid, the existing file untouched */
    FILE *f = fopen(in_tmp("dup.bin"), "w");
    fputs("old", f);
    fclose(f);
    add(w, "a", SPO_PT_F32, 1, (int64_t[]){2}, x);
    assert_int_equal(spo_ptbin_writer_write(w, in_tmp("dup.bin")), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "duplicate tensor 'a'"));
    size_t n;
    unsigned char *b = slurp(in_tmp("dup.bin"), &n);
    assert_int_equal(n, 3);
    free(b);
    assert_true(no_tmp_left());
    spo_ptbin_writer_free(w);
    /* an empty state dict is fine */
    assert_int_equal(spo_ptbin_writer_new(&w), SPO_OK);
    write_ok(w, in_tmp("empty.bin"));
    spo_ptbin_writer_free(w);
    spo_ptbin *p;
    assert_int_equal(spo_ptbin_open(&p, in_tmp("empty.bin")), SPO_OK);
    assert_int_equal(spo_ptbin_count(p), 0);
    spo_ptbin_close(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equals_torch_save), cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_raw_and_archive_name), cmocka_unit_test(test_alignment),
        cmocka_unit_test(test_many), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_write_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
