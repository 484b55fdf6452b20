/* test_ptbin.c — PyTorch checkpoints: every tensor of the torch.save fixtures
 * equals what torch.load(weights_only=True) gave (expected.safetensors);
 * malicious, damaged and malformed inputs are refused with SPO_EINVAL and a
 * message naming the problem, and nothing they ask for ever runs.
 * Fixtures: tests/fixtures/pickles (tests/reference/make_pickles.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ckpt/ptbin.h"
#include "ckpt/safetensors.h"

#define MARKER "/tmp/spo-pwned-5c1e9a7d3b" /* as in make_pickles.py */

static char dir[1024];
static spo_st *expect;

static const char *fix(const char *name)
{
    static char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

static int setup(void **state)
{
    const char *root = getenv("SPO_ROOT");
    snprintf(dir, sizeof dir, "%s/tests/fixtures/pickles", root ? root : ".");
    if (spo_st_open(&expect, fix("expected.safetensors"))) {
        fprintf(stderr, "%s (run from the repository root)\n", spo_errmsg());
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    spo_st_close(expect);
    return 0;
}

static const spo_st_dtype st_of[SPO_PT_NDTYPE] = {
    [SPO_PT_F32] = SPO_ST_F32, [SPO_PT_F16] = SPO_ST_F16, [SPO_PT_BF16] = SPO_ST_BF16, [SPO_PT_F64] = SPO_ST_F64,
    [SPO_PT_I64] = SPO_ST_I64, [SPO_PT_I32] = SPO_ST_I32, [SPO_PT_I16] = SPO_ST_I16,   [SPO_PT_I8] = SPO_ST_I8,
    [SPO_PT_U8] = SPO_ST_U8,   [SPO_PT_BOOL] = SPO_ST_BOOL,
};

/* every tensor of file equals expected "<prefix><name>", bit for bit */
static void check_file(const char *file, const char *prefix, int want_n)
{
    spo_ptbin *b;
    int rc = spo_ptbin_open(&b, fix(file));
    if (rc) fprintf(stderr, "%s\n", spo_errmsg());
    assert_int_equal(rc, SPO_OK);
    assert_int_equal(spo_ptbin_count(b), want_n);
    for (int i = 0; i < spo_ptbin_count(b); i++) {
        const spo_ptbin_tensor *t = spo_ptbin_get(b, i);
        char name[512];
        snprintf(name, sizeof name, "%s%s", prefix, t->name);
        const spo_st_tensor *e = spo_st_find(expect, name);
        if (!e) fprintf(stderr, "%s: no expected tensor %s\n", file, name);
        assert_non_null(e);
        assert_int_equal(st_of[t->dtype], e->dtype);
        assert_int_equal(t->ndim, e->ndim);
        for (int d = 0; d < t->ndim; d++) assert_int_equal(t->shape[d], e->shape[d]);
        assert_int_equal((size_t)t->numel, e->numel);
        size_t es = spo_pt_dtype_size(t->dtype);
        unsigned char *raw = malloc(e->nbytes + 1);
        float *f = malloc((e->numel + 1) * sizeof *f), *g = malloc((e->numel + 1) * sizeof *g);
        assert_int_equal(spo_ptbin_read_raw(b, t, raw), SPO_OK);
        assert_memory_equal(raw, e->data, t->numel * es);
        assert_int_equal(spo_ptbin_read_f32(b, t, f), SPO_OK);
        if (e->dtype == SPO_ST_F32 || e->dtype == SPO_ST_F16 || e->dtype == SPO_ST_BF16 || e->dtype == SPO_ST_F64) {
            assert_int_equal(spo_st_read_f32(expect, e, g), SPO_OK);
            assert_memory_equal(f, g, e->numel * sizeof *f);
        }
        free(raw), free(f), free(g);
    }
    assert_null(spo_ptbin_get(b, -1));
    assert_null(spo_ptbin_get(b, want_n));
    spo_ptbin_close(b);
}

static void test_good(void **state)
{
    check_file("good.bin", "", 15);
    check_file("good_p4.bin", "", 15);
    check_file("nested.bin", "", 15);
    check_file("module.bin", "mod/", 4);
}

/* views, shared storage, strides and 0-d as torch saved them */
static void test_layout(void **state)
{
    spo_ptbin *b;
    assert_int_equal(spo_ptbin_open(&b, fix("good.bin")), SPO_OK);
    const spo_ptbin_tensor *a = spo_ptbin_find(b, "view.a"), *v = spo_ptbin_find(b, "view.b"),
                           *t = spo_ptbin_find(b, "transposed"), *s = spo_ptbin_find(b, "scalar"),
                           *e = spo_ptbin_find(b, "empty");
    assert_non_null(a), assert_non_null(v), assert_non_null(t), assert_non_null(s), assert_non_null(e);
    assert_int_equal(a->offset, 4);
    assert_int_equal(v->offset, 12);
    assert_ptr_equal(a->storage, v->storage); /* one storage, two views */
    assert_int_equal(a->storage_bytes, 20 * 4);
    assert_false(t->contiguous);
    assert_int_equal(t->stride[0], 1);
    assert_int_equal(t->stride[1], 4);
    assert_int_equal(s->ndim, 0);
    assert_int_equal(s->numel, 1);
    assert_int_equal(e->numel, 0);
    assert_null(spo_ptbin_find(b, "nope"));
    assert_string_equal(spo_ptbin_path(b), fix("good.bin"));
    spo_ptbin_close(b);
}

static void expect_refused(const char *file, const char *msg)
{
    spo_ptbin *b = (spo_ptbin *)1;
    int rc = spo_ptbin_open(&b, fix(file));
    printf("  %-20s -> %s\n", file, spo_errmsg());
    assert_int_equal(rc, SPO_EINVAL);
    assert_null(b);
    assert_non_null(strstr(spo_errmsg(), fix(file))); /* names the file */
    if (!strstr(spo_errmsg(), msg)) fprintf(stderr, "want '%s' in '%s'\n", msg, spo_errmsg());
    assert_non_null(strstr(spo_errmsg(), msg));
}

static void test_malicious(void **state)
{
    unlink(MARKER);
    /* the fixture really carries the command */
    FILE *fp = fopen(fix("evil_system.bin"), "rb");
    assert_non_null(fp);
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    assert_non_null(memmem(buf, n, "touch " MARKER, strlen("touch " MARKER)));
    expect_refused("evil_system.bin", "refused pickle GLOBAL 'posix system' (not a state-dict type)");
    expect_refused("evil_eval.bin", "refused pickle GLOBAL '__builtin__ eval' (not a state-dict type)");
    expect_refused("evil_p4.bin", "refused pickle STACK_GLOBAL 'posix system' (not a state-dict type)");
    expect_refused("evil_storage.bin", "refused pickle GLOBAL 'posix system'");
    assert_int_equal(access(MARKER, F_OK), -1); /* nothing ran */
}

static void test_damaged(void **state)
{
    expect_refused("truncated.bin", "not a readable zip archive");
    expect_refused("corrupt_pkl.bin", "pickle");
    expect_refused("nopkl.bin", "no <archive>/data.pkl");
    expect_refused("missing_storage.bin", "storage 1 of tensor 'b' is missing");
    expect_refused("short_storage.bin", "storage 1 of tensor 'b' has 12 bytes, expected 4 f32 elements");
    expect_refused("bad_crc.bin", "CRC");
    expect_refused("bigendian.bin", "big-endian");
    expect_refused("legacy.bin", "legacy torch.save format");
    expect_refused("notzip.bin", "not a zip archive");
    expect_refused("does-not-exist.bin", "No such file");
}

/* ---- hand-made pickles ---------------------------------------------------- */
typedef struct {
    unsigned char b[4096];
    size_t n;
} pk;

static void op(pk *p, int c) { p->b[p->n++] = (unsigned char)c; }
static void raw(pk *p, const char *s, size_t n) { memcpy(p->b + p->n, s, n), p->n += n; }
static void str(pk *p, const char *s) /* BINUNICODE */
{
    uint32_t n = (uint32_t)strlen(s);
    op(p, 'X');
    for (int i = 0; i < 4; i++) op(p, (n >> (8 * i)) & 0xff);
    raw(p, s, n);
}
static void global(pk *p, const char *mod, const char *name)
{
    op(p, 'c');
    raw(p, mod, strlen(mod)), op(p, '\n');
    raw(p, name, strlen(name)), op(p, '\n');
}
static void bint(pk *p, int v) { op(p, 'K'), op(p, v); } /* BININT1 */
static void start(pk *p) { p->n = 0, op(p, 0x80), op(p, 2), op(p, '}'), op(p, '('); }
static void finish(pk *p) { op(p, 'u'), op(p, '.'); }

/* _rebuild_tensor_v2(('storage', FloatStorage, key, 'cpu', numel), off, shape, stride, False, {}) */
static void tensor_value(pk *p, const char *key, int numel, int off, int nd, const int *shape, const int *stride)
{
    global(p, "torch._utils", "_rebuild_tensor_v2");
    op(p, '('), op(p, '(');
    str(p, "storage"), global(p, "torch", "FloatStorage"), str(p, key), str(p, "cpu"), bint(p, numel);
    op(p, 't'), op(p, 'Q');
    bint(p, off);
    op(p, '(');
    for (int i = 0; i < nd; i++) bint(p, shape[i]);
    op(p, 't'), op(p, '(');
    for (int i = 0; i < nd; i++) bint(p, stride[i]);
    op(p, 't'), op(p, 0x89), op(p, '}'), op(p, 't'), op(p, 'R');
}

static void tensor(pk *p, const char *name, const char *key, int numel, int off, int nd, const int *shape,
                   const int *stride)
{
    str(p, name);
    tensor_value(p, key, numel, off, nd, shape, stride);
}

static int parse(const pk *p, spo_pkl_dict *d) { return spo_unpickle_state_dict(p->b, p->n, "x.bin", d); }

static void refused(const pk *p, const char *msg)
{
    spo_pkl_dict d;
    int rc = parse(p, &d);
    printf("  %s\n", spo_errmsg());
    assert_int_equal(rc, SPO_EINVAL);
    assert_int_equal(d.n, 0);
    if (!strstr(spo_errmsg(), msg)) fprintf(stderr, "want '%s' in '%s'\n", msg, spo_errmsg());
    assert_non_null(strstr(spo_errmsg(), msg));
}

static void test_pickle_ok_and_bounds(void **state)
{
    pk p;
    spo_pkl_dict d;
    int sh[2] = {2, 3}, st[2] = {3, 1}, stt[2] = {1, 2};
    start(&p), tensor(&p, "w", "0", 6, 0, 2, sh, st), tensor(&p, "t", "0", 6, 0, 2, sh, stt), finish(&p);
    assert_int_equal(parse(&p, &d), SPO_OK);
    assert_int_equal(d.n, 2);
    assert_string_equal(d.t[0].name, "w");
    assert_string_equal(d.t[0].key, "0");
    assert_int_equal(d.t[0].numel, 6);
    assert_int_equal(d.t[1].stride[0], 1);
    spo_pkl_dict_free(&d);
    start(&p), tensor(&p, "w", "0", 5, 0, 2, sh, st), finish(&p);
    refused(&p, "elements outside the storage");
    start(&p), tensor(&p, "w", "0", 8, 3, 2, sh, st), finish(&p);
    refused(&p, "elements outside the storage (offset 3, storage of 8)");
    start(&p), tensor(&p, "w", "0", 8, 2, 2, sh, st), finish(&p);
    assert_int_equal(parse(&p, &d), SPO_OK);
    spo_pkl_dict_free(&d);
    start(&p), tensor(&p, "w", "0", 6, 0, 2, sh, st), tensor(&p, "w", "1", 6, 0, 2, sh, st), finish(&p);
    refused(&p, "duplicate tensor name 'w'");
    start(&p), tensor(&p, "w", "../0", 6, 0, 2, sh, st), finish(&p);
    refused(&p, "bad storage key");
    start(&p), str(&p, "a"), bint(&p, 5), finish(&p);
    refused(&p, "'a' is an int, not a tensor");
    start(&p), op(&p, 'U'), op(&p, 2), op(&p, 0xc3), op(&p, 0x28); /* SHORT_BINSTRING, invalid UTF-8 */
    tensor_value(&p, "0", 6, 0, 2, sh, st), finish(&p);
    refused(&p, "bad tensor name '\\xc3('");
    start(&p), str(&p, ""), tensor_value(&p, "0", 6, 0, 2, sh, st), finish(&p);
    refused(&p, "bad tensor name ''");
}

static void test_pickle_names(void **state)
{
    pk p;
    const char *bad[][2] = {{"posix", "system"}, {"os", "system"}, {"builtins", "eval"}, {"builtins", "exec"},
                            {"subprocess", "Popen"}, {"torch", "load"}, {"torch._utils", "_rebuild_qtensor"},
                            {"collections", "OrderedDictX"}, {"torch", "Tensor"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char want[128];
        snprintf(want, sizeof want, "x.bin: refused pickle GLOBAL '%s %s' (not a state-dict type)", bad[i][0],
                 bad[i][1]);
        p.n = 0, op(&p, 0x80), op(&p, 2), global(&p, bad[i][0], bad[i][1]), op(&p, ')'), op(&p, 'R'), op(&p, '.');
        refused(&p, want);
    }
    /* STACK_GLOBAL (protocol 4) */
    p.n = 0, op(&p, 0x80), op(&p, 4), str(&p, "builtins"), str(&p, "exec"), op(&p, 0x93), op(&p, '.');
    refused(&p, "refused pickle STACK_GLOBAL 'builtins exec'");
    /* control characters are shown escaped */
    p.n = 0, op(&p, 0x80), op(&p, 4), str(&p, "os\x1b"), str(&p, "system"), op(&p, 0x93), op(&p, '.');
    refused(&p, "'os\\x1b system'");
    /* a storage class is a type tag, never called */
    p.n = 0, op(&p, 0x80), op(&p, 2), global(&p, "torch", "FloatStorage"), op(&p, ')'), op(&p, 'R'), op(&p, '.');
    refused(&p, "refused pickle REDUCE on FloatStorage");
    p.n = 0, op(&p, 0x80), op(&p, 2), str(&p, "x"), op(&p, ')'), op(&p, 'R'), op(&p, '.');
    refused(&p, "refused pickle REDUCE on a str");
    p.n = 0, op(&p, 0x80), op(&p, 2), global(&p, "collections", "OrderedDict"), bint(&p, 1), op(&p, 0x85),
    op(&p, 'R'), op(&p, '.');
    refused(&p, "OrderedDict with arguments");
    p.n = 0, op(&p, 0x80), op(&p, 2), op(&p, ']'), op(&p, 'N'), op(&p, 'b'), op(&p, '.');
    refused(&p, "refused pickle BUILD on a list");
    p.n = 0, op(&p, 0x80), op(&p, 2), op(&p, '}'), bint(&p, 3), op(&p, 'b'), op(&p, '.');
    refused(&p, "BUILD with an int state");
    p.n = 0, op(&p, 0x80), op(&p, 2), str(&p, "x"), op(&p, 'Q'), op(&p, '.');
    refused(&p, "refused persistent id");
    p.n = 0, op(&p, 0x80), op(&p, 2), op(&p, '('), str(&p, "storage"), global(&p, "collections", "OrderedDict"),
    str(&p, "0"), str(&p, "cpu"), bint(&p, 1), op(&p, 't'), op(&p, 'Q'), op(&p, '.');
    refused(&p, "storage type is OrderedDict");
}

static void test_pickle_opcodes(void **state)
{
    pk p;
#define C(lit, msg) {lit, sizeof lit - 1, msg}
    struct {
        const char *bytes;
        size_t n;
        const char *msg;
    } cases[] = {
        C("\x80\x02" "t.", "TUPLE without MARK"),
        C("\x80\x02" "s.", "stack underflow in SETITEM"),
        C("\x80\x02" "N\x86.", "stack underflow in TUPLE2"),
        C("\x80\x02" "h\x05.", "memo index 5 out of range"),
        C("\x80\x02" "Nr\xff\xff\xff\xff.", "memo index 4294967295 out of range"),
        C("\x80\x02" "j\x00\x00\x00\x00.", "memo index 0 out of range"),
        C("\x80\x02" "\xff", "refused unknown pickle opcode 0xff"),
        C("\x80\x02" "i", "refused pickle opcode INST (0x69)"),
        C("\x80\x02" "o", "refused pickle opcode OBJ"),
        C("\x80\x02" "\x81", "refused pickle opcode NEWOBJ"),
        C("\x80\x02" "\x82\x01", "refused pickle opcode EXT1"),
        C("\x80\x02" "P0\n", "refused pickle opcode PERSID"),
        C("\x80\x02" "N2", "refused pickle opcode DUP"),
        C("\x80\x02" "\x8a\x09" "123456789.", "LONG1 of 9 bytes"),
        C("\x80\x06" "N.", "unsupported pickle protocol 6"),
        C("\x80\x02" "N.", "not a state dict (data.pkl holds a None)"),
        C("\x80\x02" "]N.", "not a state dict (data.pkl holds a None)"),
        C("\x80\x02" "}", "truncated pickle (no STOP)"),
        C("", "truncated pickle (no STOP)"),
        C("\x80\x02" "X\x05\x00\x00\x00" "ab", "truncated pickle in BINUNICODE"),
        C("\x80\x02" "T\xff\xff\xff\xff" "ab", "negative BINSTRING length"),
        C("\x80\x02" "cposix", "truncated pickle in GLOBAL"),
        C("\x80\x02" "cpo\x01six\nsystem\n", "bad name in GLOBAL"),
        C("\x80\x02" "\x95\xff\x00\x00\x00\x00\x00\x00\x00N.", "truncated pickle in FRAME"),
        /* below a MARK the stack is out of reach (the dict is under the fence) */
        C("\x80\x02" "}(K\x01K\x02s.", "stack underflow in SETITEM"),
        C("\x80\x02" "}(K\x01u.", "odd number of items in SETITEMS"),
        C("\x80\x02" "N(K\x01K\x02u.", "refused SETITEMS on a None"),
        C("\x80\x02" "(K\x01K\x02u.", "stack underflow in SETITEMS"),
        C("\x80\x02" "}K\x01" "a.", "refused APPEND on a dict"),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        p.n = 0, raw(&p, cases[i].bytes, cases[i].n);
        refused(&p, cases[i].msg);
    }
    p.n = 0, op(&p, 0x80), op(&p, 2);
    for (int i = 0; i < 65; i++) op(&p, '(');
    op(&p, '.');
    refused(&p, "MARKs nested deeper than 64");
#undef C
    /* LONG1 (negative), BININT2, BINFLOAT, bools, None, lists, memo: legal data, but not tensors */
    spo_pkl_dict d;
    p.n = 0, op(&p, 0x80), op(&p, 2), op(&p, '}'), op(&p, 'q'), op(&p, 0), op(&p, '('), str(&p, "a");
    op(&p, ']'), op(&p, 'q'), op(&p, 1), op(&p, '(');
    raw(&p, "\x8a\x02\x01\x80" "M\x01\x02" "G?\xf0\x00\x00\x00\x00\x00\x00" "\x88\x89N", 16);
    op(&p, 'e'), op(&p, 'h'), op(&p, 1), op(&p, 0x86), str(&p, "b"), op(&p, 'h'), op(&p, 0), finish(&p);
    refused(&p, "'a' is a tuple, not a tensor");
    /* an empty state dict is fine */
    p.n = 0, raw(&p, "\x80\x02}.", 4);
    assert_int_equal(parse(&p, &d), SPO_OK);
    assert_int_equal(d.n, 0);
    spo_pkl_dict_free(&d);
}

/* every strict prefix of a real pickle is refused, none crashes */
static void test_pickle_truncations(void **state)
{
    pk p;
    int sh[2] = {2, 3}, st[2] = {3, 1};
    start(&p), tensor(&p, "w", "0", 6, 0, 2, sh, st), finish(&p);
    spo_pkl_dict d;
    for (size_t n = 0; n < p.n; n++) {
        assert_int_equal(spo_unpickle_state_dict(p.b, n, "x.bin", &d), SPO_EINVAL);
        assert_int_equal(d.n, 0);
    }
    assert_int_equal(spo_unpickle_state_dict(p.b, p.n, "x.bin", &d), SPO_OK);
    spo_pkl_dict_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),           cmocka_unit_test(test_layout),
        cmocka_unit_test(test_malicious),      cmocka_unit_test(test_damaged),
        cmocka_unit_test(test_pickle_ok_and_bounds), cmocka_unit_test(test_pickle_names),
        cmocka_unit_test(test_pickle_opcodes), cmocka_unit_test(test_pickle_truncations),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
