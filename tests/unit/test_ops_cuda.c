/* test_ops_cuda.c — every op of the op table on CUDA against the same op on
 * the CPU, at the fp32 bound 1e-5 (relative L2 error), on fresh random
 * inputs of awkward shapes (odd sizes, batch 1 and 7), NULL bias/gamma/
 * beta, in place where ops.h allows it. Forward outputs are poisoned with
 * NaN before each run (an element left unwritten fails); gradients run
 * from zero and from random values (backward accumulates); inputs must come
 * back unchanged. The test counts the ops it ran and fails if any entry of
 * ops_list.h was not compared. Without CUDA or a GPU it says so in one
 * line and compares the CPU device with the CPU device in guard mode
 * (SPO_DEV_GUARD, lib/ops/cpu/cpu_guard.c) instead: that checks this test
 * and that no op reads memory it was not given (tests/gpu/check.sh runs
 * it on a GPU). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/philox.h"
#include "opcheck.h"

#define CUDA_TOL 1e-5

enum {
#define OP_ENUM(name, params, args) OP_##name,
    SPO_OPS(OP_ENUM)
#undef OP_ENUM
    NOPS
};
static const char *const op_names[NOPS] = {
#define OP_NAME(name, params, args) #name,
    SPO_OPS(OP_NAME)
#undef OP_NAME
};
static int op_hits[NOPS];

static spo_dev *cpu, *gpu;
static int selftest; /* no GPU: gpu is the CPU device in guard mode */

/* a buffer of a case: IN random input (must come back unchanged), OUT a
 * forward output (poisoned with NaN first), ACC a gradient or in-place
 * output (run once from zero and once from random values); scale
 * multiplies IN's values (0 means 1) */
enum { IN, OUT, ACC };
typedef struct {
    int kind;
    size_t n;
    float scale;
} buf;

typedef int (*runfn)(spo_dev *d, float **b, const void *ctx);

#define NB 10

/* run fn on device d over the host buffers h (device copies made and read
 * back into r) */
static void run_on(spo_dev *d, const buf *bs, int nb, float **h, float **r, runfn fn, const void *ctx)
{
    float *b[NB] = {0};
    for (int i = 0; i < nb; i++) b[i] = dput(d, h[i], bs[i].n);
    OK(fn(d, b, ctx));
    OK(spo_dev_sync(d));
    for (int i = 0; i < nb; i++) {
        r[i] = dget(d, b[i], bs[i].n);
        spo_dev_free(d, b[i]);
    }
}

static int any_nan(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (x[i] != x[i]) return 1;
    return 0;
}

static void both_once(const char *what, const buf *bs, int nb, runfn fn, const void *ctx, int acc_random)
{
    float *h[NB], *rc[NB], *rg[NB];
    char msg[160];
    for (int i = 0; i < nb; i++) {
        h[i] = hrand(bs[i].n);
        if (bs[i].kind == IN && bs[i].scale != 0.0f)
            for (size_t k = 0; k < bs[i].n; k++) h[i][k] *= bs[i].scale;
        if (bs[i].kind == OUT)
            for (size_t k = 0; k < bs[i].n; k++) h[i][k] = NAN;
        if (bs[i].kind == ACC && !acc_random) memset(h[i], 0, bs[i].n * sizeof *h[i]);
    }
    run_on(cpu, bs, nb, h, rc, fn, ctx);
    run_on(gpu, bs, nb, h, rg, fn, ctx);
    for (int i = 0; i < nb; i++) {
        const size_t n = bs[i].n;
        if (bs[i].kind == IN) {
            snprintf(msg, sizeof msg, "%s%s: input %d changed on cuda", what, acc_random ? " (+=)" : "", i);
            if (memcmp(rg[i], h[i], n * sizeof *h[i])) print_error("%s\n", msg), fail();
        } else {
            if (any_nan(rc[i], n)) print_error("%s: cpu output %d has NaN (test bug?)\n", what, i), fail();
            double *ref = todouble(rc[i], n);
            snprintf(msg, sizeof msg, "%s%s: output %d cuda vs cpu", what, acc_random ? " (+=)" : "", i);
            check_close(msg, rg[i], ref, n, CUDA_TOL);
            free(ref);
        }
        free(h[i]), free(rc[i]), free(rg[i]);
    }
}

/* compare op `op` on both devices; with ACC buffers, from zero and from random values */
static void both(int op, const char *what, const buf *bs, int nb, runfn fn, const void *ctx)
{
    assert_true(nb <= NB);
    both_once(what, bs, nb, fn, ctx, 0);
    for (int i = 0; i < nb; i++)
        if (bs[i].kind == ACC) {
            both_once(what, bs, nb, fn, ctx, 1);
            break;
        }
    op_hits[op]++;
}

/* ---- dense ---- */
typedef struct {
    int M, K, N, bias, grads; /* grads: bit 0 dx, 1 dw, 2 db */
} dense_c;

static int linear_fwd(spo_dev *d, float **b, const void *v)
{
    const dense_c *c = v;
    return spo_linear_fwd(d, b[3], b[0], b[1], c->bias ? b[2] : NULL, c->M, c->K, c->N);
}

static int linear_bwd(spo_dev *d, float **b, const void *v)
{
    const dense_c *c = v;
    return spo_linear_bwd(d, c->grads & 1 ? b[4] : NULL, c->grads & 2 ? b[5] : NULL, c->grads & 4 ? b[6] : NULL,
                          b[3], b[0], b[1], c->M, c->K, c->N);
}

static void test_dense(void **state)
{
    (void)state;
    const dense_c cs[] = {{1, 37, 19, 1, 7}, {7, 37, 19, 0, 7}, {7, 300, 5, 1, 3}, {13, 8, 1, 1, 4}, {7, 17, 23, 1, 6}};
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
        const dense_c *c = &cs[i];
        const size_t mk = (size_t)c->M * c->K, nk = (size_t)c->N * c->K, mn = (size_t)c->M * c->N;
        buf f[] = {{IN, mk, 0}, {IN, nk, 0}, {IN, (size_t)c->N, 0}, {OUT, mn, 0}};
        both(OP_linear_fwd, "linear_fwd", f, 4, linear_fwd, c);
        buf g[] = {{IN, mk, 0}, {IN, nk, 0}, {IN, 1, 0}, {IN, mn, 0}, {ACC, mk, 0}, {ACC, nk, 0}, {ACC, (size_t)c->N, 0}};
        both(OP_linear_bwd, "linear_bwd", g, 7, linear_bwd, c);
    }
}

/* ---- convolution ---- */
typedef struct {
    spo_conv s;
    int bias, grads;
} conv_c;

static int conv_fwd(spo_dev *d, float **b, const void *v)
{
    const conv_c *c = v;
    return spo_conv2d_fwd(d, b[3], b[0], b[1], c->bias ? b[2] : NULL, &c->s);
}

static int conv_bwd(spo_dev *d, float **b, const void *v)
{
    const conv_c *c = v;
    return spo_conv2d_bwd(d, c->grads & 1 ? b[4] : NULL, c->grads & 2 ? b[5] : NULL, c->grads & 4 ? b[6] : NULL, b[3],
                          b[0], b[1], &c->s);
}

static void test_conv(void **state)
{
    (void)state;
    const conv_c cs[] = {
        {{1, 3, 9, 11, 5, 3, 1, 1}, 1, 7},   /* 3x3 same */
        {{7, 3, 9, 11, 5, 3, 2, 1}, 1, 7},   /* stride 2 */
        {{7, 6, 5, 7, 4, 1, 1, 0}, 1, 7},    /* pointwise, batched */
        {{1, 5, 6, 9, 3, 1, 2, 0}, 0, 7},    /* 1x1 stride 2 */
        {{2, 4, 10, 9, 3, 4, 3, 2}, 1, 5},   /* k 4, stride 3, pad 2 */
        {{2, 8, 40, 36, 4, 3, 1, 1}, 1, 7},  /* large image: the CPU's shifted products */
        {{1, 8, 40, 36, 4, 3, 1, 1}, 0, 1},  /* backward to the input alone */
        {{7, 2, 3, 3, 2, 3, 1, 0}, 1, 6},    /* 1x1 output */
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
        const spo_conv *s = &cs[i].s;
        const size_t nx = (size_t)s->n * s->cin * s->h * s->w, nw = (size_t)s->cout * s->cin * s->k * s->k;
        const size_t ny = (size_t)s->n * s->cout * spo_conv_ho(s) * spo_conv_wo(s);
        buf f[] = {{IN, nx, 0}, {IN, nw, 0}, {IN, (size_t)s->cout, 0}, {OUT, ny, 0}};
        both(OP_conv2d_fwd, "conv2d_fwd", f, 4, conv_fwd, &cs[i]);
        buf g[] = {{IN, nx, 0}, {IN, nw, 0}, {IN, 1, 0}, {IN, ny, 0}, {ACC, nx, 0}, {ACC, nw, 0}, {ACC, (size_t)s->cout, 0}};
        both(OP_conv2d_bwd, "conv2d_bwd", g, 7, conv_bwd, &cs[i]);
    }
}

/* ---- normalisation ---- */
typedef struct {
    int n, c, hw, g, affine; /* affine: bit 0 gamma, 1 beta */
} norm_c;

/* b: x, gamma, beta, y, mean, rstd */
static int gn_fwd(spo_dev *d, float **b, const void *v)
{
    const norm_c *c = v;
    return spo_groupnorm_fwd(d, b[3], b[4], b[5], b[0], c->affine & 1 ? b[1] : NULL, c->affine & 2 ? b[2] : NULL,
                             c->n, c->c, c->hw, c->g, 1e-5f);
}

/* b: x, gamma, dy, mean, rstd, dx, dgamma, dbeta */
static int gn_bwd(spo_dev *d, float **b, const void *v)
{
    const norm_c *c = v;
    return spo_groupnorm_bwd(d, b[5], b[6], b[7], b[2], b[0], b[3], b[4], c->affine & 1 ? b[1] : NULL, c->n, c->c,
                             c->hw, c->g);
}

static int ln_fwd(spo_dev *d, float **b, const void *v)
{
    const norm_c *c = v;
    return spo_layernorm_fwd(d, b[3], b[4], b[5], b[0], c->affine & 1 ? b[1] : NULL, c->affine & 2 ? b[2] : NULL,
                             c->n, c->c, 1e-5f);
}

static int ln_bwd(spo_dev *d, float **b, const void *v)
{
    const norm_c *c = v;
    return spo_layernorm_bwd(d, b[5], b[6], b[7], b[2], b[0], b[3], b[4], c->affine & 1 ? b[1] : NULL, c->n, c->c);
}

static void test_norm(void **state)
{
    (void)state;
    const norm_c gs[] = {{1, 12, 13, 4, 3}, {7, 12, 13, 12, 0}, {7, 6, 1, 1, 1}, {2, 32, 77, 8, 3}};
    for (size_t i = 0; i < sizeof gs / sizeof *gs; i++) {
        const norm_c *c = &gs[i];
        const size_t nx = (size_t)c->n * c->c * c->hw, ng = (size_t)c->n * c->g, cc = (size_t)c->c;
        buf f[] = {{IN, nx, 0}, {IN, cc, 0}, {IN, cc, 0}, {OUT, nx, 0}, {OUT, ng, 0}, {OUT, ng, 0}};
        both(OP_groupnorm_fwd, "groupnorm_fwd", f, 6, gn_fwd, c);
        buf g[] = {{IN, nx, 0}, {IN, cc, 0}, {IN, nx, 0}, {IN, ng, 0}, {IN, ng, 0}, {ACC, nx, 0}, {ACC, cc, 0}, {ACC, cc, 0}};
        both(OP_groupnorm_bwd, "groupnorm_bwd", g, 8, gn_bwd, c);
    }
    const norm_c ls[] = {{7, 37, 0, 0, 3}, {1, 300, 0, 0, 1}, {7, 5, 0, 0, 0}, {600, 33, 0, 0, 2}};
    for (size_t i = 0; i < sizeof ls / sizeof *ls; i++) {
        const norm_c *c = &ls[i];
        const size_t nx = (size_t)c->n * c->c, m = (size_t)c->n, cc = (size_t)c->c;
        buf f[] = {{IN, nx, 0}, {IN, cc, 0}, {IN, cc, 0}, {OUT, nx, 0}, {OUT, m, 0}, {OUT, m, 0}};
        both(OP_layernorm_fwd, "layernorm_fwd", f, 6, ln_fwd, c);
        buf g[] = {{IN, nx, 0}, {IN, cc, 0}, {IN, nx, 0}, {IN, m, 0}, {IN, m, 0}, {ACC, nx, 0}, {ACC, cc, 0}, {ACC, cc, 0}};
        both(OP_layernorm_bwd, "layernorm_bwd", g, 8, ln_bwd, c);
    }
}

/* ---- activations ---- */
typedef struct {
    spo_act a;
    size_t n;
    int m, c, inplace;
} act_c;

static int act_fwd(spo_dev *d, float **b, const void *v)
{
    const act_c *c = v;
    return c->inplace ? spo_act_fwd(d, c->a, b[0], b[0], c->n) : spo_act_fwd(d, c->a, b[1], b[0], c->n);
}

static int act_bwd(spo_dev *d, float **b, const void *v)
{
    const act_c *c = v;
    return spo_act_bwd(d, c->a, b[2], b[1], b[0], c->n);
}

static int geglu_fwd(spo_dev *d, float **b, const void *v)
{
    const act_c *c = v;
    return spo_geglu_fwd(d, b[1], b[0], c->m, c->c);
}

static int geglu_bwd(spo_dev *d, float **b, const void *v)
{
    const act_c *c = v;
    return spo_geglu_bwd(d, b[2], b[1], b[0], c->m, c->c);
}

static void test_act(void **state)
{
    (void)state;
    const spo_act as[] = {SPO_ACT_SILU, SPO_ACT_GELU, SPO_ACT_QUICK_GELU};
    for (int i = 0; i < 3; i++)
        for (int inplace = 0; inplace < 2; inplace++) {
            act_c c = {.a = as[i], .n = 100003, .inplace = inplace};
            buf f[] = {{inplace ? ACC : IN, c.n, 0}, {OUT, c.n, 0}};
            if (inplace) f[0].kind = ACC, f[1].kind = ACC; /* b[1] unused, left as it was */
            both(OP_act_fwd, "act_fwd", f, 2, act_fwd, &c);
            buf g[] = {{IN, c.n, 4.0f}, {IN, c.n, 0}, {ACC, c.n, 0}};
            both(OP_act_bwd, "act_bwd", g, 3, act_bwd, &c);
        }
    const int shapes[][2] = {{1, 33}, {7, 33}, {77, 320}};
    for (int i = 0; i < 3; i++) {
        act_c c = {.m = shapes[i][0], .c = shapes[i][1]};
        const size_t n = (size_t)c.m * c.c;
        buf f[] = {{IN, 2 * n, 3.0f}, {OUT, n, 0}};
        both(OP_geglu_fwd, "geglu_fwd", f, 2, geglu_fwd, &c);
        buf g[] = {{IN, 2 * n, 3.0f}, {IN, n, 0}, {ACC, 2 * n, 0}};
        both(OP_geglu_bwd, "geglu_bwd", g, 3, geglu_bwd, &c);
    }
}

/* ---- attention ---- */
typedef struct {
    int b, tq, tk, h, dh, causal, withp, grads;
} attn_c;

/* b: q, k, v, o, p */
static int attn_fwd(spo_dev *d, float **b, const void *v)
{
    const attn_c *c = v;
    return spo_attention_fwd(d, b[3], c->withp ? b[4] : NULL, b[0], b[1], b[2], c->b, c->tq, c->tk, c->h, c->dh,
                             c->causal);
}

/* b: q, k, v, dout, p, dq, dk, dv */
static int attn_bwd(spo_dev *d, float **b, const void *v)
{
    const attn_c *c = v;
    return spo_attention_bwd(d, c->grads & 1 ? b[5] : NULL, c->grads & 2 ? b[6] : NULL, c->grads & 4 ? b[7] : NULL,
                             b[3], b[4], b[0], b[1], b[2], c->b, c->tq, c->tk, c->h, c->dh);
}

static void test_attn(void **state)
{
    (void)state;
    const attn_c cs[] = {
        {1, 9, 13, 3, 8, 0, 1, 7}, {7, 9, 13, 3, 8, 0, 0, 7}, {7, 11, 11, 2, 5, 1, 1, 3},
        {2, 77, 77, 4, 16, 1, 1, 4}, {2, 64, 5, 1, 40, 0, 1, 6}, {1, 1, 1, 1, 1, 0, 1, 7},
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
        const attn_c *c = &cs[i];
        const size_t nq = (size_t)c->b * c->tq * c->h * c->dh, nk = (size_t)c->b * c->tk * c->h * c->dh;
        const size_t np = (size_t)c->b * c->h * c->tq * c->tk;
        buf f[] = {{IN, nq, 2.0f}, {IN, nk, 2.0f}, {IN, nk, 0}, {OUT, nq, 0}, {c->withp ? OUT : IN, np, 0}};
        both(OP_attention_fwd, "attention_fwd", f, 5, attn_fwd, c);
        buf g[] = {{IN, nq, 0}, {IN, nk, 0}, {IN, nk, 0}, {IN, nq, 0}, {IN, np, 0}, {ACC, nq, 0}, {ACC, nk, 0}, {ACC, nk, 0}};
        both(OP_attention_bwd, "attention_bwd", g, 8, attn_bwd, c);
    }
}

/* ---- shape and elementwise ---- */
typedef struct {
    int n, c, h, w, cb, mode;
    size_t len;
    float s;
} shp_c;

static int up_fwd(spo_dev *d, float **b, const void *v)
{
    const shp_c *c = v;
    return spo_upsample2x_fwd(d, b[1], b[0], c->n, c->c, c->h, c->w);
}
static int up_bwd(spo_dev *d, float **b, const void *v)
{
    const shp_c *c = v;
    return spo_upsample2x_bwd(d, b[1], b[0], c->n, c->c, c->h, c->w);
}
static int cat_fwd(spo_dev *d, float **b, const void *v)
{
    const shp_c *c = v;
    return spo_concat_fwd(d, b[2], b[0], b[1], c->n, c->c, c->cb, c->h);
}
static int cat_bwd(spo_dev *d, float **b, const void *v)
{
    const shp_c *c = v;
    return spo_concat_bwd(d, c->mode & 1 ? b[1] : NULL, c->mode & 2 ? b[2] : NULL, b[0], c->n, c->c, c->cb, c->h);
}
static int tr_fwd(spo_dev *d, float **b, const void *v)
{
    const shp_c *c = v;
    return spo_transpose_fwd(d, b[1], b[0], c->n, c->h, c->w);
}
static int add_fwd(spo_dev *d, float **b, const void *v)
{
    const shp_c *c = v;
    switch (c->mode) {
    case 1: return spo_add_fwd(d, b[0], b[0], b[1], c->len); /* y = a */
    case 2: return spo_add_fwd(d, b[1], b[0], b[1], c->len); /* y = b */
    default: return spo_add_fwd(d, b[2], b[0], b[1], c->len);
    }
}
static int axpy(spo_dev *d, float **b, const void *v)
{
    const shp_c *c = v;
    return spo_axpy(d, b[1], c->s, b[0], c->len);
}
static int addnc_fwd(spo_dev *d, float **b, const void *v)
{
    const shp_c *c = v;
    return spo_add_nc_fwd(d, b[1], b[0], c->n, c->c, c->h);
}
static int addnc_bwd(spo_dev *d, float **b, const void *v)
{
    const shp_c *c = v;
    return spo_add_nc_bwd(d, b[1], b[0], c->n, c->c, c->h);
}
static int scale(spo_dev *d, float **b, const void *v)
{
    const shp_c *c = v;
    return c->mode ? spo_scale(d, b[0], b[0], c->s, c->len) : spo_scale(d, b[1], b[0], c->s, c->len);
}

static void test_shape(void **state)
{
    (void)state;
    for (int n = 1; n <= 7; n += 6) {
        shp_c u = {.n = n, .c = 3, .h = 5, .w = 7};
        const size_t nx = (size_t)n * 3 * 5 * 7;
        buf uf[] = {{IN, nx, 0}, {OUT, 4 * nx, 0}};
        both(OP_upsample2x_fwd, "upsample2x_fwd", uf, 2, up_fwd, &u);
        buf ub[] = {{IN, 4 * nx, 0}, {ACC, nx, 0}};
        both(OP_upsample2x_bwd, "upsample2x_bwd", ub, 2, up_bwd, &u);
        for (int mode = 1; mode <= 3; mode++) {
            shp_c c = {.n = n, .c = 3, .cb = 5, .h = 11, .mode = mode};
            const size_t na = (size_t)n * 3 * 11, nb = (size_t)n * 5 * 11;
            buf cf[] = {{IN, na, 0}, {IN, nb, 0}, {OUT, na + nb, 0}};
            if (mode == 3) both(OP_concat_fwd, "concat_fwd", cf, 3, cat_fwd, &c);
            buf cb[] = {{IN, na + nb, 0}, {ACC, na, 0}, {ACC, nb, 0}};
            both(OP_concat_bwd, "concat_bwd", cb, 3, cat_bwd, &c);
        }
        shp_c t = {.n = n, .h = 13, .w = 17};
        const size_t nt = (size_t)n * 13 * 17;
        buf tf[] = {{IN, nt, 0}, {OUT, nt, 0}};
        both(OP_transpose_fwd, "transpose_fwd", tf, 2, tr_fwd, &t);
        shp_c nc = {.n = n, .c = 5, .h = 19};
        buf nf[] = {{IN, (size_t)n * 5, 0}, {ACC, (size_t)n * 5 * 19, 0}};
        both(OP_add_nc_fwd, "add_nc_fwd", nf, 2, addnc_fwd, &nc);
        buf nb2[] = {{IN, (size_t)n * 5 * 19, 0}, {ACC, (size_t)n * 5, 0}};
        both(OP_add_nc_bwd, "add_nc_bwd", nb2, 2, addnc_bwd, &nc);
    }
    const size_t len = 100003;
    for (int mode = 0; mode < 3; mode++) {
        shp_c c = {.len = len, .mode = mode};
        buf f[] = {{mode == 1 ? ACC : IN, len, 0}, {mode == 2 ? ACC : IN, len, 0}, {OUT, len, 0}};
        both(OP_add_fwd, "add_fwd", f, mode ? 2 : 3, add_fwd, &c);
    }
    shp_c a = {.len = len, .s = -0.37f};
    buf af[] = {{IN, len, 0}, {ACC, len, 0}};
    both(OP_axpy, "axpy", af, 2, axpy, &a);
    for (int mode = 0; mode < 2; mode++) {
        shp_c s = {.len = len, .s = 1.7f, .mode = mode};
        buf sf[] = {{mode ? ACC : IN, len, 0}, {OUT, len, 0}};
        both(OP_scale, "scale", sf, mode ? 1 : 2, scale, &s);
    }
}

/* ---- embeddings and adaLN ---- */
typedef struct {
    int n, dim, flip, vocab, ld, b, t, c, inplace;
    float shift;
    const int32_t *ids;
} emb_c;

static int temb(spo_dev *d, float **b, const void *v)
{
    const emb_c *c = v;
    return spo_timestep_embed(d, b[1], b[0], c->n, c->dim, c->flip, c->shift, 10000.0f);
}
static int embed(spo_dev *d, float **b, const void *v)
{
    const emb_c *c = v;
    return spo_embed_fwd(d, b[1], b[0], c->ids, c->n, c->dim, c->vocab);
}
/* b: x, shift/scale rows (b, ld), y */
static int modulate(spo_dev *d, float **b, const void *v)
{
    const emb_c *c = v;
    float *y = c->inplace ? b[0] : b[2];
    return spo_modulate_fwd(d, y, b[0], b[1], b[1] + c->c, c->ld, c->b, c->t, c->c);
}
static int gate_add(spo_dev *d, float **b, const void *v)
{
    const emb_c *c = v;
    return spo_gate_add_fwd(d, b[2], b[0], b[1] + 2 * c->c, c->ld, c->b, c->t, c->c);
}

static void test_embed(void **state)
{
    (void)state;
    for (int flip = 0; flip < 2; flip++)
        for (int dim = 32; dim <= 33; dim++) {
            emb_c c = {.n = 7, .dim = dim, .flip = flip, .shift = flip ? 0.0f : 1.0f};
            buf f[] = {{IN, 7, 1000.0f}, {OUT, (size_t)7 * dim, 0}};
            both(OP_timestep_embed, "timestep_embed", f, 2, temb, &c);
        }
    const int32_t ids[7] = {3, 0, 49, 3, 17, 5, 48};
    for (int n = 1; n <= 7; n += 6) {
        emb_c c = {.n = n, .dim = 9, .vocab = 50, .ids = ids};
        buf f[] = {{IN, 50 * 9, 0}, {OUT, (size_t)n * 9, 0}};
        both(OP_embed_fwd, "embed_fwd", f, 2, embed, &c);
    }
    for (int b = 1; b <= 7; b += 6)
        for (int inplace = 0; inplace < 2; inplace++) {
            emb_c c = {.b = b, .t = 5, .c = 9, .ld = 27, .inplace = inplace};
            const size_t nx = (size_t)b * 5 * 9, nm = (size_t)b * 27;
            buf f[] = {{inplace ? ACC : IN, nx, 0}, {IN, nm, 0}, {inplace ? IN : OUT, nx, 0}};
            both(OP_modulate_fwd, "modulate_fwd", f, 3, modulate, &c);
            buf g[] = {{IN, nx, 0}, {IN, nm, 0}, {ACC, nx, 0}};
            both(OP_gate_add_fwd, "gate_add_fwd", g, 3, gate_add, &c);
        }
}

/* Philox normals on the GPU (kernels/philox.cu): bit for bit the CPU's
 * spo_normal_fill, for odd lengths and several keys (DESIGN.md section 6) */
static void test_philox(void **state)
{
    (void)state;
    if (selftest) return; /* nothing to compare without a GPU */
#ifdef SPO_HAVE_CUDA
    const size_t ns[] = {1, 3, 4, 1003, 65536 + 5};
    const uint64_t seeds[] = {0, 7, 0x123456789abcdefULL};
    for (size_t i = 0; i < sizeof ns / sizeof *ns; i++)
        for (size_t k = 0; k < sizeof seeds / sizeof *seeds; k++) {
            const size_t n = ns[i];
            float *want = malloc(n * sizeof *want), *p = dput(gpu, NULL, n);
            assert_non_null(want);
            spo_normal_fill(want, n, seeds[k], 11, 3, (uint32_t)k);
            OK(spo_cuda_normal_fill(p, n, seeds[k], 11, 3, (uint32_t)k));
            float *got = dget(gpu, p, n);
            if (memcmp(got, want, n * sizeof *got)) {
                print_error("philox: %zu normals of seed %llu differ between cuda and cpu\n", n,
                            (unsigned long long)seeds[k]);
                fail();
            }
            free(want), free(got);
            spo_dev_free(gpu, p);
        }
#endif
}

/* last: every op of the table was compared */
static void test_all_ops_compared(void **state)
{
    (void)state;
    int missing = 0;
    for (int i = 0; i < NOPS; i++)
        if (!op_hits[i]) print_error("op %s was not compared on cuda\n", op_names[i]), missing++;
    assert_int_equal(missing, 0);
}

static int setup(void **state)
{
    (void)state;
    if (spo_dev_open(&cpu, SPO_DEV_CPU, 2)) return -1;
    if (!selftest) return spo_dev_open(&gpu, SPO_DEV_CUDA, 1) ? -1 : 0;
    setenv("SPO_DEV_GUARD", "1", 1);
    int rc = spo_dev_open(&gpu, SPO_DEV_CPU, 1);
    unsetenv("SPO_DEV_GUARD");
    return rc ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    spo_dev_close(cpu), spo_dev_close(gpu);
    return 0;
}

int main(void)
{
    spo_dev *d = NULL;
    if (spo_dev_open(&d, SPO_DEV_CUDA, 1)) {
        printf("NOTE %s: no GPU (%s): comparing the CPU with the CPU in guard mode\n", __FILE__, spo_errmsg());
        selftest = 1;
    }
    spo_dev_close(d);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense),  cmocka_unit_test(test_conv),  cmocka_unit_test(test_norm),
        cmocka_unit_test(test_act),    cmocka_unit_test(test_attn),  cmocka_unit_test(test_shape),
        cmocka_unit_test(test_embed),  cmocka_unit_test(test_philox), cmocka_unit_test(test_all_ops_compared),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
