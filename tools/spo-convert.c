/* spo-convert — PyTorch .bin checkpoints (read without executing anything)
 * and safetensors files to safetensors, optionally changing the float dtype.
 *
 *   spo-convert model.bin -o model.safetensors
 *   spo-convert --dtype f16 model.safetensors -o model-f16.safetensors
 *   spo-convert --list model.bin
 *
 * The input kind is found from its first bytes: a zip (or a legacy
 * torch.save pickle, refused with a message) is read by lib/ptbin.h,
 * anything else as safetensors. Integer and bool tensors are copied as
 * they are; float tensors keep their dtype unless --dtype is given. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"
#include "ptbin.h"
#include "safetensors.h"

static const spo_opt opts[] = {
    {"dtype", 't', "TYPE", "store float tensors as f32, f16 or bf16 (default: as in the input)"},
    {"list", 'l', NULL, "print each tensor (name, dtype, shape) instead of converting"},
    {0},
};

static const spo_tool tool = {
    .name = "spo-convert",
    .synopsis = "[options] INPUT.bin|INPUT.safetensors (-o OUTPUT.safetensors | --list)",
    .summary = "Convert a PyTorch state-dict checkpoint (torch.save zip; its pickle is parsed, never run)\n"
               "or a safetensors file to safetensors, optionally changing the float dtype.",
    .common = SPO_O_OUT | SPO_O_FORCE,
    .opts = opts,
    .min_args = 1,
    .max_args = 1,
};

typedef struct {
    int dtype; /* spo_st_dtype, or -1 to keep */
    int list;
} ctx_t;

static int on_opt(void *p, int idx, const char *arg)
{
    ctx_t *c = p;
    if (idx == 1) {
        c->list = 1;
        return 0;
    }
    if (!strcmp(arg, "f32")) c->dtype = SPO_ST_F32;
    else if (!strcmp(arg, "f16")) c->dtype = SPO_ST_F16;
    else if (!strcmp(arg, "bf16")) c->dtype = SPO_ST_BF16;
    else return spo_err(SPO_EINVAL, "invalid value '%s' for --dtype (f32, f16 or bf16)", arg);
    return 0;
}

static const spo_st_dtype pt2st[SPO_PT_NDTYPE] = {
    [SPO_PT_F32] = SPO_ST_F32, [SPO_PT_F16] = SPO_ST_F16, [SPO_PT_BF16] = SPO_ST_BF16, [SPO_PT_F64] = SPO_ST_F64,
    [SPO_PT_I64] = SPO_ST_I64, [SPO_PT_I32] = SPO_ST_I32, [SPO_PT_I16] = SPO_ST_I16,   [SPO_PT_I8] = SPO_ST_I8,
    [SPO_PT_U8] = SPO_ST_U8,   [SPO_PT_BOOL] = SPO_ST_BOOL,
};

static int is_float(spo_st_dtype d)
{
    return d == SPO_ST_F32 || d == SPO_ST_F16 || d == SPO_ST_BF16 || d == SPO_ST_F64;
}

static void print_tensor(const char *name, const char *dtype, int ndim, const int64_t *shape)
{
    printf("%s\t%s\t[", name, dtype);
    for (int i = 0; i < ndim; i++) printf("%s%lld", i ? "," : "", (long long)shape[i]);
    printf("]\n");
}

/* buffers handed to the writer must live until it writes */
typedef struct {
    void **p;
    int n;
} keep_t;

static void *keep_alloc(keep_t *k, size_t bytes)
{
    void **np = realloc(k->p, (size_t)(k->n + 1) * sizeof *np);
    if (!np) return NULL;
    k->p = np;
    void *b = malloc(bytes ? bytes : 1);
    if (b) k->p[k->n++] = b;
    return b;
}

static void keep_free(keep_t *k)
{
    for (int i = 0; i < k->n; i++) free(k->p[i]);
    free(k->p);
}

static int add_ptbin(spo_st_writer *w, const spo_ptbin *b, const ctx_t *c, int list, keep_t *k)
{
    for (int i = 0; i < spo_ptbin_count(b); i++) {
        const spo_ptbin_tensor *t = spo_ptbin_get(b, i);
        spo_st_dtype dt = pt2st[t->dtype];
        if (list) {
            print_tensor(t->name, spo_st_dtype_name(dt), t->ndim, t->shape);
            continue;
        }
        int rc;
        size_t n = (size_t)t->numel, es = spo_st_dtype_size(dt);
        if (c->dtype >= 0 && is_float(dt) && (int)dt != c->dtype) {
            float *f = keep_alloc(k, n * sizeof *f);
            if (!f) return spo_err(SPO_EIO, "out of memory");
            if ((rc = spo_ptbin_read_f32(b, t, f))) return rc;
            rc = spo_st_writer_add(w, t->name, (spo_st_dtype)c->dtype, t->ndim, t->shape, f);
        } else if (t->contiguous) { /* straight from the storage */
            rc = spo_st_writer_add_raw(w, t->name, dt, t->ndim, t->shape, t->storage + (size_t)t->offset * es);
        } else {
            void *r = keep_alloc(k, n * es);
            if (!r) return spo_err(SPO_EIO, "out of memory");
            if ((rc = spo_ptbin_read_raw(b, t, r))) return rc;
            rc = spo_st_writer_add_raw(w, t->name, dt, t->ndim, t->shape, r);
        }
        if (rc) return rc;
    }
    return SPO_OK;
}

static int add_st(spo_st_writer *w, const spo_st *s, const ctx_t *c, int list, keep_t *k)
{
    for (int i = 0; i < spo_st_count(s); i++) {
        const spo_st_tensor *t = spo_st_get(s, i);
        if (list) {
            print_tensor(t->name, spo_st_dtype_name(t->dtype), t->ndim, t->shape);
            continue;
        }
        int rc;
        if (c->dtype >= 0 && is_float(t->dtype) && (int)t->dtype != c->dtype) {
            float *f = keep_alloc(k, t->numel * sizeof *f);
            if (!f) return spo_err(SPO_EIO, "out of memory");
            if ((rc = spo_st_read_f32(s, t, f))) return rc;
            rc = spo_st_writer_add(w, t->name, (spo_st_dtype)c->dtype, t->ndim, t->shape, f);
        } else {
            rc = spo_st_writer_add_raw(w, t->name, t->dtype, t->ndim, t->shape, t->data);
        }
        if (rc) return rc;
    }
    return SPO_OK;
}

/* zip ("PK") or a legacy torch pickle (0x80): a PyTorch checkpoint */
static int is_torch(const char *path)
{
    unsigned char m[2] = {0, 0};
    FILE *fp = fopen(path, "rb");
    if (!fp) return 1; /* let the reader report it */
    size_t n = fread(m, 1, 2, fp);
    fclose(fp);
    return n == 2 && ((m[0] == 'P' && m[1] == 'K') || m[0] == 0x80);
}

int main(int argc, char **argv)
{
    ctx_t c = {.dtype = -1};
    spo_args a;
    double t0 = spo_now();
    spo_parse(&tool, argc, argv, &a, on_opt, &c);
    const char *in = a.argv[0];
    if (!c.list && !a.out) spo_die(2, "missing -o OUTPUT.safetensors (or --list)");
    if (c.list && a.out) spo_die(2, "--list and -o do not go together");
    if (a.out && !strcmp(a.out, "-")) spo_die(2, "-o -: safetensors output must be a file");
    if (!strcmp(in, "-")) spo_die(2, "reading stdin is not supported; give a file");
    if (a.out && !a.force && access(a.out, F_OK) == 0) spo_die(2, "%s exists (use -f to overwrite)", a.out);

    spo_ptbin *b = NULL;
    spo_st *s = NULL;
    int rc = is_torch(in) ? spo_ptbin_open(&b, in) : spo_st_open(&s, in);
    if (rc) spo_die_lib(rc);
    spo_vtime(&a, "load", spo_now() - t0);

    spo_st_writer *w = NULL;
    keep_t k = {0};
    if (!c.list) rc = spo_st_writer_new(&w);
    if (!rc) rc = b ? add_ptbin(w, b, &c, c.list, &k) : add_st(w, s, &c, c.list, &k);
    if (!rc && w) {
        const char *base = strrchr(in, '/');
        rc = spo_st_writer_meta(w, "format", "pt");
        if (!rc) rc = spo_st_writer_meta(w, "spo_source", base ? base + 1 : in);
        double t1 = spo_now();
        if (!rc) rc = spo_st_writer_write(w, a.out);
        spo_vtime(&a, "write", spo_now() - t1);
    }
    spo_st_writer_free(w);
    keep_free(&k);
    spo_ptbin_close(b);
    spo_st_close(s);
    if (rc) spo_die_lib(rc);
    return spo_finish();
}
