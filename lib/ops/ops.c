/* ops.c — the public op functions of ops.h: check the arguments once for
 * every backend, then call the device's op table (ops_impl.h).
 *
 * The functions themselves are generated from the op list (ops_list.h) at
 * the end of this file; what is written here by hand is each op's argument
 * check, check_<name>(fn, parameters): SPO_OK to run the backend, NOTHING
 * when the call is valid and has nothing to compute (the public function
 * returns SPO_OK without calling the backend), or an error code with
 * spo_err set. The device itself (not NULL, the op implemented on it) is
 * checked first, by the generated function.
 *
 * Checked here: a device, the pointers an op needs (gradients may be NULL),
 * every dimension >= 1 (pad >= 0), element counts that fit size_t, and the
 * products that BLAS receives as int. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>

#include "ops/ops_impl.h"

enum { NOTHING = -1 }; /* a check's "valid, nothing to compute" */

/* nd dims, each >= 1, whose product (elements) fits size_t bytes of floats */
static int dims(const char *fn, int nd, ...)
{
    va_list ap;
    va_start(ap, nd);
    size_t n = 1;
    int rc = SPO_OK;
    for (int i = 0; i < nd && !rc; i++) {
        int v = va_arg(ap, int);
        if (v < 1)
            rc = spo_err(SPO_EINVAL, "%s: dimension %d is %d, must be >= 1", fn, i, v);
        else if (n > SIZE_MAX / sizeof(float) / (size_t)v)
            rc = spo_err(SPO_EINVAL, "%s: tensor size overflows", fn);
        else
            n *= (size_t)v;
    }
    va_end(ap);
    return rc;
}

/* a * b must fit an int (a BLAS dimension or leading dimension) */
static int fits_int(const char *fn, long long a, long long b)
{
    if (a * b > INT_MAX) return spo_err(SPO_EINVAL, "%s: %lld x %lld exceeds the BLAS int range", fn, a, b);
    return SPO_OK;
}

#define NEED(p)                                                                                                    \
    do {                                                                                                           \
        if (!(p)) return spo_err(SPO_EINVAL, "%s: " #p " is NULL", fn);                                         \
    } while (0)

/* ---- dense ---- */
static int check_linear_fwd(const char *fn, spo_dev *d, float *y, const float *x, const float *w, const float *b,
                            int M, int K, int N)
{
    NEED(y); NEED(x); NEED(w);
    SPO_TRY(dims(fn, 2, M, K)); SPO_TRY(dims(fn, 2, N, K)); SPO_TRY(dims(fn, 2, M, N));
    return SPO_OK;
}

static int check_linear_bwd(const char *fn, spo_dev *d, float *dx, float *dw, float *db, const float *dy,
                            const float *x, const float *w, int M, int K, int N)
{
    NEED(dy);
    if (dx) NEED(w);
    if (dw) NEED(x);
    SPO_TRY(dims(fn, 2, M, K)); SPO_TRY(dims(fn, 2, N, K)); SPO_TRY(dims(fn, 2, M, N));
    return SPO_OK;
}

/* ---- convolution ---- */
static int conv_check(const char *fn, const spo_conv *c)
{
    if (!c) return spo_err(SPO_EINVAL, "%s: NULL conv shape", fn);
    if (c->k < 1 || c->stride < 1 || c->pad < 0)
        return spo_err(SPO_EINVAL, "%s: kernel %d, stride %d, pad %d invalid", fn, c->k, c->stride, c->pad);
    SPO_TRY(dims(fn, 4, c->n, c->cin, c->h, c->w));
    SPO_TRY(dims(fn, 4, c->cout, c->cin, c->k, c->k));
    long long hp = (long long)c->h + 2LL * c->pad, wp = (long long)c->w + 2LL * c->pad;
    if (hp < c->k || wp < c->k || hp > INT_MAX || wp > INT_MAX)
        return spo_err(SPO_EINVAL, "%s: kernel %d does not fit input %dx%d with pad %d", fn, c->k, c->h, c->w,
                       c->pad);
    int ho = spo_conv_ho(c), wo = spo_conv_wo(c);
    SPO_TRY(dims(fn, 4, c->n, c->cout, ho, wo));
    SPO_TRY(fits_int(fn, ho, wo));
    SPO_TRY(fits_int(fn, (long long)c->cin * c->k, c->k));
    return SPO_OK;
}

static int check_conv2d_fwd(const char *fn, spo_dev *d, float *y, const float *x, const float *w, const float *b,
                            const spo_conv *c)
{
    NEED(y); NEED(x); NEED(w);
    SPO_TRY(conv_check(fn, c));
    return SPO_OK;
}

static int check_conv2d_bwd(const char *fn, spo_dev *d, float *dx, float *dw, float *db, const float *dy,
                            const float *x, const float *w, const spo_conv *c)
{
    NEED(dy);
    if (dx) NEED(w);
    if (dw) NEED(x);
    SPO_TRY(conv_check(fn, c));
    return SPO_OK;
}

/* ---- normalisation ---- */
static int gn_check(const char *fn, int n, int c, int hw, int g)
{
    SPO_TRY(dims(fn, 3, n, c, hw));
    if (g < 1 || c % g) return spo_err(SPO_EINVAL, "%s: %d channels do not split into %d groups", fn, c, g);
    return SPO_OK;
}

static int check_groupnorm_fwd(const char *fn, spo_dev *d, float *y, float *mean, float *rstd, const float *x,
                               const float *gamma, const float *beta, int n, int c, int hw, int g, float eps)
{
    NEED(y); NEED(mean); NEED(rstd); NEED(x);
    SPO_TRY(gn_check(fn, n, c, hw, g));
    if (!(eps >= 0)) return spo_err(SPO_EINVAL, "%s: eps %g < 0", fn, eps);
    return SPO_OK;
}

static int check_groupnorm_bwd(const char *fn, spo_dev *d, float *dx, float *dgamma, float *dbeta, const float *dy,
                               const float *x, const float *mean, const float *rstd, const float *gamma, int n, int c,
                               int hw, int g)
{
    NEED(dy); NEED(x); NEED(mean); NEED(rstd);
    SPO_TRY(gn_check(fn, n, c, hw, g));
    return SPO_OK;
}

static int check_layernorm_fwd(const char *fn, spo_dev *d, float *y, float *mean, float *rstd, const float *x,
                               const float *gamma, const float *beta, int m, int c, float eps)
{
    NEED(y); NEED(mean); NEED(rstd); NEED(x);
    SPO_TRY(dims(fn, 2, m, c));
    if (!(eps >= 0)) return spo_err(SPO_EINVAL, "%s: eps %g < 0", fn, eps);
    return SPO_OK;
}

static int check_layernorm_bwd(const char *fn, spo_dev *d, float *dx, float *dgamma, float *dbeta, const float *dy,
                               const float *x, const float *mean, const float *rstd, const float *gamma, int m, int c)
{
    NEED(dy); NEED(x); NEED(mean); NEED(rstd);
    SPO_TRY(dims(fn, 2, m, c));
    return SPO_OK;
}

/* ---- activations ---- */
static int act_check(const char *fn, spo_act a, size_t n)
{
    if (a != SPO_ACT_SILU && a != SPO_ACT_GELU && a != SPO_ACT_QUICK_GELU)
        return spo_err(SPO_EINVAL, "%s: unknown activation %d", fn, (int)a);
    if (n > SIZE_MAX / sizeof(float)) return spo_err(SPO_EINVAL, "%s: %zu elements overflow", fn, n);
    return SPO_OK;
}

static int check_act_fwd(const char *fn, spo_dev *d, spo_act a, float *y, const float *x, size_t n)
{
    SPO_TRY(act_check(fn, a, n));
    if (!n) return NOTHING;
    NEED(y); NEED(x);
    return SPO_OK;
}

static int check_act_bwd(const char *fn, spo_dev *d, spo_act a, float *dx, const float *dy, const float *x, size_t n)
{
    SPO_TRY(act_check(fn, a, n));
    if (!n || !dx) return NOTHING;
    NEED(dy); NEED(x);
    return SPO_OK;
}

static int check_geglu_fwd(const char *fn, spo_dev *d, float *y, const float *x, int m, int c)
{
    NEED(y); NEED(x);
    SPO_TRY(dims(fn, 3, m, c, 2));
    return SPO_OK;
}

static int check_geglu_bwd(const char *fn, spo_dev *d, float *dx, const float *dy, const float *x, int m, int c)
{
    SPO_TRY(dims(fn, 3, m, c, 2));
    if (!dx) return NOTHING;
    NEED(dy); NEED(x);
    return SPO_OK;
}

/* ---- attention ---- */
static int attn_check(const char *fn, int b, int tq, int tk, int h, int dh)
{
    SPO_TRY(dims(fn, 4, b, tq, h, dh)); SPO_TRY(dims(fn, 4, b, tk, h, dh)); SPO_TRY(dims(fn, 4, b, h, tq, tk));
    SPO_TRY(fits_int(fn, h, dh));
    return SPO_OK;
}

static int check_attention_fwd(const char *fn, spo_dev *d, float *o, float *p, const float *q, const float *k,
                               const float *v, int b, int tq, int tk, int h, int dh, int causal)
{
    NEED(o); NEED(q); NEED(k); NEED(v);
    SPO_TRY(attn_check(fn, b, tq, tk, h, dh));
    return SPO_OK;
}

static int check_attention_bwd(const char *fn, spo_dev *d, float *dq, float *dk, float *dv, const float *dout,
                               const float *p, const float *q, const float *k, const float *v, int b, int tq, int tk,
                               int h, int dh)
{
    SPO_TRY(attn_check(fn, b, tq, tk, h, dh));
    if (!dq && !dk && !dv) return NOTHING;
    NEED(dout); NEED(p);
    if (dq) NEED(k);
    if (dk) NEED(q);
    if (dq || dk) NEED(v);
    return SPO_OK;
}

/* ---- shape and elementwise ---- */
static int check_upsample2x_fwd(const char *fn, spo_dev *d, float *y, const float *x, int n, int c, int h, int w)
{
    NEED(y); NEED(x);
    SPO_TRY(dims(fn, 6, n, c, h, w, 2, 2));
    return SPO_OK;
}

static int check_upsample2x_bwd(const char *fn, spo_dev *d, float *dx, const float *dy, int n, int c, int h, int w)
{
    SPO_TRY(dims(fn, 6, n, c, h, w, 2, 2));
    if (!dx) return NOTHING;
    NEED(dy);
    return SPO_OK;
}

static int check_concat_fwd(const char *fn, spo_dev *d, float *y, const float *a, const float *b, int n, int ca,
                            int cb, int hw)
{
    NEED(y); NEED(a); NEED(b);
    SPO_TRY(dims(fn, 3, n, ca, hw)); SPO_TRY(dims(fn, 3, n, cb, hw));
    SPO_TRY(fits_int(fn, 1, (long long)ca + cb));
    SPO_TRY(dims(fn, 3, n, ca + cb, hw));
    return SPO_OK;
}

static int check_concat_bwd(const char *fn, spo_dev *d, float *da, float *db, const float *dy, int n, int ca, int cb,
                            int hw)
{
    SPO_TRY(dims(fn, 3, n, ca, hw)); SPO_TRY(dims(fn, 3, n, cb, hw));
    SPO_TRY(fits_int(fn, 1, (long long)ca + cb));
    SPO_TRY(dims(fn, 3, n, ca + cb, hw));
    if (!da && !db) return NOTHING;
    NEED(dy);
    return SPO_OK;
}

static int check_transpose_fwd(const char *fn, spo_dev *d, float *y, const float *x, int n, int r, int c)
{
    NEED(y); NEED(x);
    SPO_TRY(dims(fn, 3, n, r, c));
    return SPO_OK;
}

static int n_check(const char *fn, size_t n)
{
    if (n > SIZE_MAX / sizeof(float)) return spo_err(SPO_EINVAL, "%s: %zu elements overflow", fn, n);
    return SPO_OK;
}

static int check_add_fwd(const char *fn, spo_dev *d, float *y, const float *a, const float *b, size_t n)
{
    SPO_TRY(n_check(fn, n));
    if (!n) return NOTHING;
    NEED(y); NEED(a); NEED(b);
    return SPO_OK;
}

static int check_axpy(const char *fn, spo_dev *d, float *y, float alpha, const float *x, size_t n)
{
    SPO_TRY(n_check(fn, n));
    if (!n) return NOTHING;
    NEED(y); NEED(x);
    return SPO_OK;
}

static int check_add_nc_fwd(const char *fn, spo_dev *d, float *y, const float *b, int n, int c, int hw)
{
    NEED(y); NEED(b);
    SPO_TRY(dims(fn, 3, n, c, hw));
    return SPO_OK;
}

static int check_add_nc_bwd(const char *fn, spo_dev *d, float *db, const float *dy, int n, int c, int hw)
{
    SPO_TRY(dims(fn, 3, n, c, hw));
    if (!db) return NOTHING;
    NEED(dy);
    return SPO_OK;
}

static int check_scale(const char *fn, spo_dev *d, float *y, const float *x, float s, size_t n)
{
    SPO_TRY(n_check(fn, n));
    if (!n) return NOTHING;
    NEED(y); NEED(x);
    return SPO_OK;
}

static int check_timestep_embed(const char *fn, spo_dev *d, float *y, const float *t, int n, int dim,
                                int flip_sin_to_cos, float shift, float max_period)
{
    NEED(y); NEED(t);
    SPO_TRY(dims(fn, 2, n, dim));
    if (!(max_period > 0)) return spo_err(SPO_EINVAL, "%s: max_period %g must be > 0", fn, max_period);
    if (dim / 2 > 0 && !isfinite(1.0f / ((float)(dim / 2) - shift)))
        return spo_err(SPO_EINVAL, "%s: half %d - shift %g is zero", fn, dim / 2, shift);
    return SPO_OK;
}

/* ---- embeddings and adaLN ---- */
static int check_embed_fwd(const char *fn, spo_dev *d, float *y, const float *table, const int32_t *ids, int n,
                           int dim, int vocab)
{
    if (n < 0 || dim <= 0) return spo_err(SPO_EINVAL, "embed: bad shape n=%d dim=%d", n, dim);
    if (!n) return NOTHING;
    NEED(y); NEED(table); NEED(ids);
    SPO_TRY(dims(fn, 2, n, dim));
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= vocab)
            return spo_err(SPO_EINVAL, "embed: token id %d at position %d is outside the vocabulary [0,%d)",
                           (int)ids[i], i, vocab);
    return SPO_OK;
}

/* x (b,t,c) and per-sample rows of stride ld >= c in v */
static int mod_check(const char *fn, const void *x, const void *y, const void *v, int ld, int b, int t, int c)
{
    if (!x || !y || !v) return spo_err(SPO_EINVAL, "%s: NULL pointer", fn);
    if (b < 1 || t < 1 || c < 1 || ld < c)
        return spo_err(SPO_EINVAL, "%s: bad shape b=%d t=%d c=%d ld=%d", fn, b, t, c, ld);
    SPO_TRY(dims(fn, 3, b, t, c)); SPO_TRY(dims(fn, 2, b, ld));
    return SPO_OK;
}

static int check_modulate_fwd(const char *fn, spo_dev *d, float *y, const float *x, const float *shift,
                              const float *scale, int ld, int b, int t, int c)
{
    SPO_TRY(mod_check("modulate", x, y, shift, ld, b, t, c));
    return mod_check("modulate", x, y, scale, ld, b, t, c);
}

static int check_gate_add_fwd(const char *fn, spo_dev *d, float *x, const float *y, const float *gate, int ld, int b,
                              int t, int c)
{
    return mod_check("gate_add", x, y, gate, ld, b, t, c);
}

/* ---- the public functions, one per entry of ops_list.h ---- */
#define WITH_FN(...) (fn, __VA_ARGS__)
#define SPO_OP_PUBLIC(op, params, args)                                                                            \
    int spo_##op params                                                                                            \
    {                                                                                                              \
        static const char fn[] = "spo_" #op;                                                                       \
        if (!d) return spo_err(SPO_EINVAL, "%s: NULL device", fn);                                                 \
        if (!d->ops->op) return spo_err(SPO_EINVAL, "%s: not implemented on %s", fn, d->ops->name);                \
        int rc = check_##op WITH_FN args;                                                                          \
        if (rc) return rc == NOTHING ? SPO_OK : rc;                                                                \
        return d->ops->op args;                                                                                    \
    }
SPO_OPS(SPO_OP_PUBLIC)
