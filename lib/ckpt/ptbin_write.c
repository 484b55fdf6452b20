/* ptbin_write.c — write a state dict as torch.save does (see ptbin_write.h).
 *
 * The pickle is what CPython's pickler (protocol 2) makes of the
 * OrderedDict: every new str, global, non-empty tuple and REDUCE result is
 * memoized (BINPUT, LONG_BINPUT from index 256), repeated objects ('storage',
 * 'cpu', the globals) are fetched with BINGET; ints use BININT1, BININT2,
 * BININT or LONG1; tuples of up to 3 items TUPLE1..3, longer ones MARK ..
 * TUPLE; items go in SETITEMS batches of 1000 (a lone item: SETITEM). Per
 * tensor:
 *   name  _rebuild_tensor_v2  MARK  MARK 'storage' <Storage class> '<key>'
 *   'cpu' numel TUPLE  BINPERSID  0  (size)  (stride)  NEWFALSE
 *   OrderedDict () REDUCE  TUPLE  REDUCE */
#include "ckpt/ptbin_write.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/atomic.h"
#include "core/grow.h"
#include "core/half.h"
#include "ckpt/ptzip_write.h"

#define MAX_NAME 4096
#define BATCH 1000

typedef struct {
    char *name;
    spo_pt_dtype dtype;
    int ndim;
    int64_t shape[SPO_PT_MAXDIM], stride[SPO_PT_MAXDIM];
    uint64_t numel;
    const void *data;
    int from_f32; /* fp32 data to convert to f16/bf16 */
} wtensor;

struct spo_ptbin_writer {
    wtensor *t;
    int n;
    size_t cap;
};

static const char *const storage_cls[SPO_PT_NDTYPE] = {
    [SPO_PT_F32] = "FloatStorage", [SPO_PT_F16] = "HalfStorage", [SPO_PT_BF16] = "BFloat16Storage",
    [SPO_PT_F64] = "DoubleStorage", [SPO_PT_I64] = "LongStorage", [SPO_PT_I32] = "IntStorage",
    [SPO_PT_I16] = "ShortStorage", [SPO_PT_I8] = "CharStorage", [SPO_PT_U8] = "ByteStorage",
    [SPO_PT_BOOL] = "BoolStorage",
};

int spo_ptbin_writer_new(spo_ptbin_writer **w)
{
    *w = calloc(1, sizeof **w);
    return *w ? SPO_OK : spo_err(SPO_EIO, "out of memory");
}

void spo_ptbin_writer_free(spo_ptbin_writer *w)
{
    if (!w) return;
    for (int i = 0; i < w->n; i++) free(w->t[i].name);
    free(w->t);
    free(w);
}

static int utf8_ok(const unsigned char *s)
{
    while (*s) {
        unsigned c = *s++, k = c < 0x80 ? 0 : c >= 0xc2 && c < 0xe0 ? 1 : c >= 0xe0 && c < 0xf0 ? 2 : c >= 0xf0 && c < 0xf5 ? 3 : 9;
        if (k == 9) return 0;
        uint32_t cp = c & (0x7f >> k);
        for (unsigned j = 0; j < k; j++, s++) {
            if ((*s & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (*s & 0x3f);
        }
        if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000))) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
    }
    return 1;
}

static int add(spo_ptbin_writer *w, const char *name, spo_pt_dtype dt, int ndim, const int64_t *shape,
               const void *data, int raw)
{
    if (!name || !*name || strlen(name) > MAX_NAME || !utf8_ok((const unsigned char *)name))
        return spo_err(SPO_EINVAL, "invalid tensor name (empty, longer than %d bytes or not UTF-8)", MAX_NAME);
    size_t es = spo_pt_dtype_size(dt);
    if (!es) return spo_err(SPO_EINVAL, "tensor '%s': invalid dtype %d", name, (int)dt);
    if (ndim < 0 || ndim > SPO_PT_MAXDIM) return spo_err(SPO_EINVAL, "tensor '%s': rank %d (0..%d)", name, ndim, SPO_PT_MAXDIM);
    wtensor t = {.dtype = dt, .ndim = ndim, .data = data, .numel = 1};
    t.from_f32 = !raw && (dt == SPO_PT_F16 || dt == SPO_PT_BF16);
    int64_t s = 1; /* contiguous strides, as torch: a zero dim counts as 1 */
    for (int i = ndim - 1; i >= 0; i--) {
        if (shape[i] < 0) return spo_err(SPO_EINVAL, "tensor '%s': negative dim %lld", name, (long long)shape[i]);
        int64_t d = shape[i] ? shape[i] : 1;
        t.shape[i] = shape[i];
        t.stride[i] = s;
        if (s > INT64_MAX / d) return spo_err(SPO_EINVAL, "tensor '%s': shape too large", name);
        s *= d;
    }
    for (int i = 0; i < ndim; i++) t.numel *= (uint64_t)t.shape[i]; /* s bounds it unless 0 */
    size_t ws = t.from_f32 ? sizeof(float) : es;
    if (t.numel > SIZE_MAX / ws) return spo_err(SPO_EINVAL, "tensor '%s': shape too large", name);
    if (t.numel && !data) return spo_err(SPO_EINVAL, "tensor '%s': no data", name);
    wtensor *p = spo_grow(w->t, &w->cap, (size_t)w->n + 1, sizeof *p, 64);
    if (!p) return SPO_EIO;
    w->t = p;
    if (w->n >= 10000000) return spo_err(SPO_EINVAL, "too many tensors");
    if (!(t.name = strdup(name))) return spo_err(SPO_EIO, "out of memory");
    w->t[w->n++] = t;
    return SPO_OK;
}

int spo_ptbin_writer_add(spo_ptbin_writer *w, const char *name, spo_pt_dtype dtype, int ndim, const int64_t *shape,
                         const void *data)
{
    return add(w, name, dtype, ndim, shape, data, 0);
}

int spo_ptbin_writer_add_raw(spo_ptbin_writer *w, const char *name, spo_pt_dtype dtype, int ndim,
                             const int64_t *shape, const void *bytes)
{
    return add(w, name, dtype, ndim, shape, bytes, 1);
}

/* ---- the pickle ---------------------------------------------------------- */
typedef struct {
    uint8_t *p;
    size_t n, cap;
    int oom;
    uint32_t memo;                               /* next memo index */
    int64_t rebuild, storage, cpu, cls[SPO_PT_NDTYPE]; /* memo indexes, -1: not yet */
} pk;

static void put(pk *k, const void *s, size_t n)
{
    if (k->oom) return;
    if (k->n + n > k->cap) {
        size_t cap = (k->n + n) * 2 + 256;
        uint8_t *p = realloc(k->p, cap);
        if (!p) {
            k->oom = 1;
            return;
        }
        k->p = p;
        k->cap = cap;
    }
    memcpy(k->p + k->n, s, n);
    k->n += n;
}

static void op(pk *k, uint8_t c) { put(k, &c, 1); }

/* an opcode and v as a little-endian field of bytes bytes */
static void op_le(pk *k, uint8_t c, uint64_t v, int bytes)
{
    uint8_t b[9] = {c};
    for (int i = 0; i < bytes; i++) b[1 + i] = (uint8_t)(v >> (8 * i));
    put(k, b, 1 + (size_t)bytes);
}

static int64_t memoize(pk *k)
{
    uint32_t i = k->memo++;
    if (i < 256) op_le(k, 'q', i, 1); /* BINPUT */
    else op_le(k, 'r', i, 4);         /* LONG_BINPUT */
    return i;
}

static void get(pk *k, int64_t i)
{
    if (i < 256) op_le(k, 'h', (uint64_t)i, 1); /* BINGET */
    else op_le(k, 'j', (uint64_t)i, 4);         /* LONG_BINGET */
}

static void put_int(pk *k, uint64_t v)
{
    if (v < 0x100) op_le(k, 'K', v, 1);            /* BININT1 */
    else if (v < 0x10000) op_le(k, 'M', v, 2);     /* BININT2 */
    else if (v < 0x80000000u) op_le(k, 'J', v, 4); /* BININT */
    else { /* LONG1: the fewest bytes holding v with a clear sign bit */
        int bits = 64 - __builtin_clzll(v), n = bits / 8 + 1;
        op_le(k, 0x8a, (uint64_t)n, 1);
        uint8_t b[9] = {0};
        for (int i = 0; i < n && i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
        put(k, b, (size_t)n);
    }
}

static int64_t put_str(pk *k, const char *s)
{
    size_t n = strlen(s);
    op_le(k, 'X', n, 4); /* BINUNICODE */
    put(k, s, n);
    return memoize(k);
}

static int64_t put_global(pk *k, const char *mod_name)
{
    op(k, 'c');
    put(k, mod_name, strlen(mod_name));
    return memoize(k);
}

static void put_tuple(pk *k, const int64_t *v, int n)
{
    if (!n) {
        op(k, ')'); /* EMPTY_TUPLE, not memoized */
        return;
    }
    if (n > 3) op(k, '(');
    for (int i = 0; i < n; i++) put_int(k, (uint64_t)v[i]);
    op(k, n > 3 ? 't' : (uint8_t)(0x85 + n - 1)); /* TUPLE or TUPLE1..3 */
    memoize(k);
}

static void put_tensor(pk *k, const wtensor *t, int key)
{
    char ks[16];
    put_str(k, t->name);
    if (k->rebuild < 0) k->rebuild = put_global(k, "torch._utils\n_rebuild_tensor_v2\n");
    else get(k, k->rebuild);
    op(k, '('); /* the arguments */
    op(k, '('); /* the persistent id */
    if (k->storage < 0) k->storage = put_str(k, "storage");
    else get(k, k->storage);
    if (k->cls[t->dtype] < 0) {
        char g[64];
        snprintf(g, sizeof g, "torch\n%s\n", storage_cls[t->dtype]);
        k->cls[t->dtype] = put_global(k, g);
    } else get(k, k->cls[t->dtype]);
    snprintf(ks, sizeof ks, "%d", key);
    put_str(k, ks);
    if (k->cpu < 0) k->cpu = put_str(k, "cpu");
    else get(k, k->cpu);
    put_int(k, t->numel); /* 1 for a scalar */
    op(k, 't');
    memoize(k);
    op(k, 'Q');     /* BINPERSID */
    put_int(k, 0);  /* storage offset */
    put_tuple(k, t->shape, t->ndim);
    put_tuple(k, t->stride, t->ndim);
    op(k, 0x89);    /* NEWFALSE: requires_grad */
    get(k, 0);      /* OrderedDict() for the backward hooks */
    op(k, ')');
    op(k, 'R');
    memoize(k);
    op(k, 't');
    memoize(k);
    op(k, 'R');
    memoize(k);
}

static int build_pickle(const spo_ptbin_writer *w, pk *k)
{
    memset(k, 0, sizeof *k);
    k->rebuild = k->storage = k->cpu = -1;
    for (int i = 0; i < SPO_PT_NDTYPE; i++) k->cls[i] = -1;
    op_le(k, 0x80, 2, 1); /* PROTO 2 */
    put_global(k, "collections\nOrderedDict\n");
    op(k, ')');
    op(k, 'R');
    memoize(k);
    for (int i = 0; i < w->n; i += BATCH) {
        int m = w->n - i < BATCH ? w->n - i : BATCH;
        if (m > 1) op(k, '(');
        for (int j = i; j < i + m; j++) put_tensor(k, &w->t[j], j);
        op(k, m > 1 ? 'u' : 's'); /* SETITEMS, SETITEM */
    }
    op(k, '.');
    return k->oom ? spo_err(SPO_EIO, "out of memory") : SPO_OK;
}

/* ---- the file ------------------------------------------------------------ */
static int storage(spo_ptzip_writer *zw, const wtensor *t, int key)
{
    char name[24];
    size_t es = spo_pt_dtype_size(t->dtype), n = (size_t)t->numel;
    snprintf(name, sizeof name, "data/%d", key);
    int rc = spo_ptzip_record_begin(zw, name, (uint64_t)n * es);
    if (rc) return rc;
    if (!t->from_f32) {
        if (n) spo_ptzip_record_data(zw, t->data, n * es);
    } else {
        uint16_t buf[16384];
        const float *f = t->data;
        for (size_t i = 0; i < n; i += 16384) {
            size_t m = n - i < 16384 ? n - i : 16384;
            if (t->dtype == SPO_PT_F16) spo_f32_to_f16(buf, f + i, m);
            else spo_f32_to_bf16(buf, f + i, m);
            spo_ptzip_record_data(zw, buf, m * 2);
        }
    }
    return spo_ptzip_record_end(zw);
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(const wtensor *const *)a)->name, (*(const wtensor *const *)b)->name);
}

/* storage keys in torch's member order: sorted as strings */
static int by_key(const void *a, const void *b)
{
    char x[16], y[16];
    snprintf(x, sizeof x, "%d", *(const int *)a);
    snprintf(y, sizeof y, "%d", *(const int *)b);
    return strcmp(x, y);
}

static int check_names(const spo_ptbin_writer *w)
{
    const wtensor **s = malloc((size_t)(w->n ? w->n : 1) * sizeof *s);
    if (!s) return spo_err(SPO_EIO, "out of memory");
    for (int i = 0; i < w->n; i++) s[i] = &w->t[i];
    qsort(s, (size_t)w->n, sizeof *s, by_name);
    int rc = SPO_OK;
    for (int i = 1; i < w->n && !rc; i++)
        if (!strcmp(s[i]->name, s[i - 1]->name)) rc = spo_err(SPO_EINVAL, "duplicate tensor '%s'", s[i]->name);
    free(s);
    return rc;
}

static int write_zip(const spo_ptbin_writer *w, FILE *f, const char *path, const pk *k)
{
    char *arch = spo_ptzip_archive_name(path);
    int *keys = malloc((size_t)(w->n ? w->n : 1) * sizeof *keys);
    spo_ptzip_writer *zw = NULL;
    int rc = arch && keys ? spo_ptzip_writer_new(&zw, f, arch, path) : spo_err(SPO_EIO, "out of memory");
    if (!rc) rc = spo_ptzip_record(zw, "data.pkl", k->p, k->n);
    if (!rc) rc = spo_ptzip_record(zw, "byteorder", "little", 6);
    if (!rc) {
        for (int i = 0; i < w->n; i++) keys[i] = i;
        qsort(keys, (size_t)w->n, sizeof *keys, by_key);
    }
    for (int i = 0; i < w->n && !rc; i++) rc = storage(zw, &w->t[keys[i]], keys[i]);
    if (!rc) rc = spo_ptzip_writer_finish(zw);
    spo_ptzip_writer_free(zw);
    free(keys);
    free(arch);
    return rc;
}

int spo_ptbin_writer_write(spo_ptbin_writer *w, const char *path)
{
    pk k = {0};
    int rc = check_names(w);
    if (!rc) rc = build_pickle(w, &k);
    if (rc) {
        free(k.p);
        return spo_err_prefix(rc, "%s", path);
    }
    spo_atomic out;
    if (!(rc = spo_atomic_open(&out, path, SPO_ATOMIC_FILE, 1))) {
        setvbuf(out.fp, NULL, _IOFBF, 1 << 20);
        if ((rc = write_zip(w, out.fp, path, &k))) spo_atomic_abort(&out);
        else rc = spo_atomic_commit(&out);
    }
    free(k.p);
    return rc;
}
