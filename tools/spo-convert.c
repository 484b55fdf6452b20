/* spo-convert — PyTorch .bin checkpoints (read without executing anything)
 * and safetensors files to safetensors or to PyTorch checkpoints (written
 * as torch.save writes them, lib/ckpt/ptbin_write.h), optionally changing the
 * float dtype.
 *
 *   spo-convert model.bin -o model.safetensors
 *   spo-convert --dtype f16 model.safetensors -o model-f16.safetensors
 *   spo-convert model.safetensors -o model.bin        (--to bin)
 *   spo-convert --list model.bin
 *
 * The input kind is found from its first bytes: a zip (or a legacy
 * torch.save pickle, refused with a message) is read by lib/ckpt/ptbin.h,
 * anything else as safetensors. The output kind is --to, else the output's
 * extension: .bin, .pt, .pth a PyTorch checkpoint, anything else
 * safetensors. Integer and bool tensors are copied as they are; float
 * tensors keep their dtype unless --dtype is given. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"
#include "core/infile.h"
#include "ckpt/ptbin.h"
#include "ckpt/ptbin_write.h"
#include "ckpt/safetensors.h"

enum { TO_ST, TO_BIN }; /* --to; -1: from the output's name */

#include "spo-convert.opts.h"

static const spo_st_dtype pt2st[SPO_PT_NDTYPE] = {
    [SPO_PT_F32] = SPO_ST_F32, [SPO_PT_F16] = SPO_ST_F16, [SPO_PT_BF16] = SPO_ST_BF16, [SPO_PT_F64] = SPO_ST_F64,
    [SPO_PT_I64] = SPO_ST_I64, [SPO_PT_I32] = SPO_ST_I32, [SPO_PT_I16] = SPO_ST_I16,   [SPO_PT_I8] = SPO_ST_I8,
    [SPO_PT_U8] = SPO_ST_U8,   [SPO_PT_BOOL] = SPO_ST_BOOL,
};

/* safetensors dtype -> torch storage dtype; -1: torch has no storage for it */
static int st2pt(spo_st_dtype d)
{
    for (int i = 0; i < SPO_PT_NDTYPE; i++)
        if (pt2st[i] == d) return i;
    return -1;
}

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

/* the output: one of the two writers */
typedef struct {
    spo_st_writer *st;
    spo_ptbin_writer *pt;
} sink_t;

/* f32: fp32 values to store as dt (a float dtype), or else raw: dt's bytes */
static int sink_add(sink_t *s, const char *name, spo_st_dtype dt, int ndim, const int64_t *shape, const float *f32,
                    const void *raw)
{
    if (s->st)
        return f32 ? spo_st_writer_add(s->st, name, dt, ndim, shape, f32)
                   : spo_st_writer_add_raw(s->st, name, dt, ndim, shape, raw);
    int pd = st2pt(dt);
    if (pd < 0)
        return spo_err(SPO_EINVAL, "tensor '%s': %s has no PyTorch storage type; use --to safetensors", name,
                       spo_st_dtype_name(dt));
    return f32 ? spo_ptbin_writer_add(s->pt, name, (spo_pt_dtype)pd, ndim, shape, f32)
               : spo_ptbin_writer_add_raw(s->pt, name, (spo_pt_dtype)pd, ndim, shape, raw);
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

static int add_ptbin(sink_t *w, const spo_ptbin *b, const tool_vals *c, int list, keep_t *k)
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
            rc = sink_add(w, t->name, (spo_st_dtype)c->dtype, t->ndim, t->shape, f, NULL);
        } else if (t->contiguous) { /* straight from the storage */
            const uint8_t *p = t->storage ? t->storage + (size_t)t->offset * es : (const uint8_t *)"";
            rc = sink_add(w, t->name, dt, t->ndim, t->shape, NULL, p);
        } else {
            void *r = keep_alloc(k, n * es);
            if (!r) return spo_err(SPO_EIO, "out of memory");
            if ((rc = spo_ptbin_read_raw(b, t, r))) return rc;
            rc = sink_add(w, t->name, dt, t->ndim, t->shape, NULL, r);
        }
        if (rc) return rc;
    }
    return SPO_OK;
}

static int add_st(sink_t *w, const spo_st *s, const tool_vals *c, int list, keep_t *k)
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
            rc = sink_add(w, t->name, (spo_st_dtype)c->dtype, t->ndim, t->shape, f, NULL);
        } else {
            rc = sink_add(w, t->name, t->dtype, t->ndim, t->shape, NULL, t->data);
        }
        if (rc) return rc;
    }
    return SPO_OK;
}

/* zip ("PK") or a legacy torch pickle (0x80): a PyTorch checkpoint */
static int is_torch(const char *path)
{
    unsigned char m[2] = {0, 0};
    FILE *fp;
    if (spo_fopen_in(&fp, path)) return 1; /* let the reader report it */
    size_t n = fread(m, 1, 2, fp);
    fclose(fp);
    return n == 2 && ((m[0] == 'P' && m[1] == 'K') || m[0] == 0x80);
}

/* .bin, .pt, .pth: a PyTorch checkpoint */
static int bin_by_name(const char *path)
{
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash)) return 0;
    return !strcmp(dot, ".bin") || !strcmp(dot, ".pt") || !strcmp(dot, ".pth");
}

int main(int argc, char **argv)
{
    tool_vals c;
    spo_args a;
    double t0 = spo_now();
    spo_parse(&tool, argc, argv, &a, &c, sizeof c, NULL);
    const char *in = a.argv[0];
    if (!c.list && !a.out) spo_die(2, "missing -o OUTPUT.safetensors|OUTPUT.bin (or --list)");
    if (c.list && a.out) spo_die(2, "--list and -o do not go together");
    if (c.list && c.to >= 0) spo_die(2, "--list and --to do not go together");
    if (a.out && !strcmp(a.out, "-")) spo_die(2, "-o -: the output must be a file");
    int to_bin = c.to == TO_BIN || (c.to < 0 && a.out && bin_by_name(a.out));
    if (!strcmp(in, "-")) spo_die(2, "reading stdin is not supported; give a file");
    if (a.out && !a.force && access(a.out, F_OK) == 0) spo_die(2, "%s exists (use -f to overwrite)", a.out);

    spo_ptbin *b = NULL;
    spo_st *s = NULL;
    int rc = is_torch(in) ? spo_ptbin_open(&b, in) : spo_st_open(&s, in);
    if (rc) spo_die_lib(rc);
    spo_vtime(&a, "load", spo_now() - t0);

    sink_t w = {0};
    keep_t k = {0};
    if (!c.list) rc = to_bin ? spo_ptbin_writer_new(&w.pt) : spo_st_writer_new(&w.st);
    if (!rc) rc = b ? add_ptbin(&w, b, &c, c.list, &k) : add_st(&w, s, &c, c.list, &k);
    if (!rc && !c.list) {
        double t1 = spo_now();
        if (w.pt) {
            rc = spo_ptbin_writer_write(w.pt, a.out);
        } else {
            const char *base = strrchr(in, '/');
            rc = spo_st_writer_meta(w.st, "format", "pt");
            if (!rc) rc = spo_st_writer_meta(w.st, "spo_source", base ? base + 1 : in);
            if (!rc) rc = spo_st_writer_write(w.st, a.out);
        }
        spo_vtime(&a, "write", spo_now() - t1);
    }
    spo_st_writer_free(w.st);
    spo_ptbin_writer_free(w.pt);
    keep_free(&k);
    spo_ptbin_close(b);
    spo_st_close(s);
    if (rc) spo_die_lib(rc);
    return spo_finish();
}
