/* ops.c — the public op functions of ops.h: check the arguments once for
 * every backend, then call the device's op table (ops_impl.h).
 *
 * Checked here: a device, the pointers an op needs (gradients may be NULL),
 * every dimension >= 1 (pad >= 0), element counts that fit size_t, and the
 * products that BLAS receives as int. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>

#include "ops/ops_impl.h"

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

#define CHECK(e)                                                                                                   \
    do {                                                                                                           \
        int rc_ = (e);                                                                                             \
        if (rc_) return rc_;                                                                                       \
    } while (0)
#define NEED(p)                                                                                                    \
    do {                                                                                                           \
        if (!(p)) return spo_err(SPO_EINVAL, "%s: " #p " is NULL", __func__);                                     \
    } while (0)
#define DEV(fn)                                                                                                    \
    do {                                                                                                           \
        if (!d) return spo_err(SPO_EINVAL, "%s: NULL device", __func__);                                          \
        if (!d->ops->fn) return spo_err(SPO_EINVAL, "%s: not implemented on %s", __func__, d->ops->name);         \
    } while (0)

/* ---- dense ---- */
int spo_linear_fwd(spo_dev *d, float *y, const float *x, const float *w, const float *b, int M, int K, int N)
{
    DEV(linear_fwd);
    NEED(y); NEED(x); NEED(w);
    CHECK(dims(__func__, 2, M, K)); CHECK(dims(__func__, 2, N, K)); CHECK(dims(__func__, 2, M, N));
    return d->ops->linear_fwd(d, y, x, w, b, M, K, N);
}

int spo_linear_bwd(spo_dev *d, float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                   int M, int K, int N)
{
    DEV(linear_bwd);
    NEED(dy);
    if (dx) NEED(w);
    if (dw) NEED(x);
    CHECK(dims(__func__, 2, M, K)); CHECK(dims(__func__, 2, N, K)); CHECK(dims(__func__, 2, M, N));
    return d->ops->linear_bwd(d, dx, dw, db, dy, x, w, M, K, N);
}

/* ---- convolution ---- */
static int conv_check(const char *fn, const spo_conv *c)
{
    if (!c) return spo_err(SPO_EINVAL, "%s: NULL conv shape", fn);
    if (c->k < 1 || c->stride < 1 || c->pad < 0)
        return spo_err(SPO_EINVAL, "%s: kernel %d, stride %d, pad %d invalid", fn, c->k, c->stride, c->pad);
    CHECK(dims(fn, 4, c->n, c->cin, c->h, c->w));
    CHECK(dims(fn, 4, c->cout, c->cin, c->k, c->k));
    long long hp = (long long)c->h + 2LL * c->pad, wp = (long long)c->w + 2LL * c->pad;
    if (hp < c->k || wp < c->k || hp > INT_MAX || wp > INT_MAX)
        return spo_err(SPO_EINVAL, "%s: kernel %d does not fit input %dx%d with pad %d", fn, c->k, c->h, c->w,
                       c->pad);
    int ho = spo_conv_ho(c), wo = spo_conv_wo(c);
    CHECK(dims(fn, 4, c->n, c->cout, ho, wo));
    CHECK(fits_int(fn, ho, wo));
    CHECK(fits_int(fn, (long long)c->cin * c->k, c->k));
    return SPO_OK;
}

int spo_conv2d_fwd(spo_dev *d, float *y, const float *x, const float *w, const float *b, const spo_conv *c)
{
    DEV(conv2d_fwd);
    NEED(y); NEED(x); NEED(w);
    CHECK(conv_check(__func__, c));
    return d->ops->conv2d_fwd(d, y, x, w, b, c);
}

int spo_conv2d_bwd(spo_dev *d, float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                   const spo_conv *c)
{
    DEV(conv2d_bwd);
    NEED(dy);
    if (dx) NEED(w);
    if (dw) NEED(x);
    CHECK(conv_check(__func__, c));
    return d->ops->conv2d_bwd(d, dx, dw, db, dy, x, w, c);
}

/* ---- normalisation ---- */
static int gn_check(const char *fn, int n, int c, int hw, int g)
{
    CHECK(dims(fn, 3, n, c, hw));
    if (g < 1 || c % g) return spo_err(SPO_EINVAL, "%s: %d channels do not split into %d groups", fn, c, g);
    return SPO_OK;
}

int spo_groupnorm_fwd(spo_dev *d, float *y, float *mean, float *rstd, const float *x, const float *gamma,
                      const float *beta, int n, int c, int hw, int g, float eps)
{
    DEV(groupnorm_fwd);
    NEED(y); NEED(mean); NEED(rstd); NEED(x);
    CHECK(gn_check(__func__, n, c, hw, g));
    if (!(eps >= 0)) return spo_err(SPO_EINVAL, "%s: eps %g < 0", __func__, eps);
    return d->ops->groupnorm_fwd(d, y, mean, rstd, x, gamma, beta, n, c, hw, g, eps);
}

int spo_groupnorm_bwd(spo_dev *d, float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                      const float *mean, const float *rstd, const float *gamma, int n, int c, int hw, int g)
{
    DEV(groupnorm_bwd);
    NEED(dy); NEED(x); NEED(mean); NEED(rstd);
    CHECK(gn_check(__func__, n, c, hw, g));
    return d->ops->groupnorm_bwd(d, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, n, c, hw, g);
}

int spo_layernorm_fwd(spo_dev *d, float *y, float *mean, float *rstd, const float *x, const float *gamma,
                      const float *beta, int m, int c, float eps)
{
    DEV(layernorm_fwd);
    NEED(y); NEED(mean); NEED(rstd); NEED(x);
    CHECK(dims(__func__, 2, m, c));
    if (!(eps >= 0)) return spo_err(SPO_EINVAL, "%s: eps %g < 0", __func__, eps);
    return d->ops->layernorm_fwd(d, y, mean, rstd, x, gamma, beta, m, c, eps);
}

int spo_layernorm_bwd(spo_dev *d, float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                      const float *mean, const float *rstd, const float *gamma, int m, int c)
{
    DEV(layernorm_bwd);
    NEED(dy); NEED(x); NEED(mean); NEED(rstd);
    CHECK(dims(__func__, 2, m, c));
    return d->ops->layernorm_bwd(d, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, m, c);
}

/* ---- activations ---- */
static int act_check(const char *fn, spo_act a, size_t n)
{
    if (a != SPO_ACT_SILU && a != SPO_ACT_GELU && a != SPO_ACT_QUICK_GELU)
        return spo_err(SPO_EINVAL, "%s: unknown activation %d", fn, (int)a);
    if (n > SIZE_MAX / sizeof(float)) return spo_err(SPO_EINVAL, "%s: %zu elements overflow", fn, n);
    return SPO_OK;
}

int spo_act_fwd(spo_dev *d, spo_act a, float *y, const float *x, size_t n)
{
    DEV(act_fwd);
    CHECK(act_check(__func__, a, n));
    if (!n) return SPO_OK;
    NEED(y); NEED(x);
    return d->ops->act_fwd(d, a, y, x, n);
}

int spo_act_bwd(spo_dev *d, spo_act a, float *dx, const float *dy, const float *x, size_t n)
{
    DEV(act_bwd);
    CHECK(act_check(__func__, a, n));
    if (!n || !dx) return SPO_OK;
    NEED(dy); NEED(x);
    return d->ops->act_bwd(d, a, dx, dy, x, n);
}

int spo_geglu_fwd(spo_dev *d, float *y, const float *x, int m, int c)
{
    DEV(geglu_fwd);
    NEED(y); NEED(x);
    CHECK(dims(__func__, 3, m, c, 2));
    return d->ops->geglu_fwd(d, y, x, m, c);
}

int spo_geglu_bwd(spo_dev *d, float *dx, const float *dy, const float *x, int m, int c)
{
    DEV(geglu_bwd);
    CHECK(dims(__func__, 3, m, c, 2));
    if (!dx) return SPO_OK;
    NEED(dy); NEED(x);
    return d->ops->geglu_bwd(d, dx, dy, x, m, c);
}

/* ---- attention ---- */
static int attn_check(const char *fn, int b, int tq, int tk, int h, int dh)
{
    CHECK(dims(fn, 4, b, tq, h, dh)); CHECK(dims(fn, 4, b, tk, h, dh)); CHECK(dims(fn, 4, b, h, tq, tk));
    CHECK(fits_int(fn, h, dh));
    return SPO_OK;
}

int spo_attention_fwd(spo_dev *d, float *o, float *p, const float *q, const float *k, const float *v, int b, int tq,
                      int tk, int h, int dh, int causal)
{
    DEV(attention_fwd);
    NEED(o); NEED(q); NEED(k); NEED(v);
    CHECK(attn_check(__func__, b, tq, tk, h, dh));
    return d->ops->attention_fwd(d, o, p, q, k, v, b, tq, tk, h, dh, causal != 0);
}

int spo_attention_bwd(spo_dev *d, float *dq, float *dk, float *dv, const float *dout, const float *p, const float *q,
                      const float *k, const float *v, int b, int tq, int tk, int h, int dh)
{
    DEV(attention_bwd);
    CHECK(attn_check(__func__, b, tq, tk, h, dh));
    if (!dq && !dk && !dv) return SPO_OK;
    NEED(dout); NEED(p);
    if (dq) NEED(k);
    if (dk) NEED(q);
    if (dq || dk) NEED(v);
    return d->ops->attention_bwd(d, dq, dk, dv, dout, p, q, k, v, b, tq, tk, h, dh);
}

/* ---- shape and elementwise ---- */
int spo_upsample2x_fwd(spo_dev *d, float *y, const float *x, int n, int c, int h, int w)
{
    DEV(upsample2x_fwd);
    NEED(y); NEED(x);
    CHECK(dims(__func__, 6, n, c, h, w, 2, 2));
    return d->ops->upsample2x_fwd(d, y, x, n, c, h, w);
}

int spo_upsample2x_bwd(spo_dev *d, float *dx, const float *dy, int n, int c, int h, int w)
{
    DEV(upsample2x_bwd);
    CHECK(dims(__func__, 6, n, c, h, w, 2, 2));
    if (!dx) return SPO_OK;
    NEED(dy);
    return d->ops->upsample2x_bwd(d, dx, dy, n, c, h, w);
}

int spo_concat_fwd(spo_dev *d, float *y, const float *a, const float *b, int n, int ca, int cb, int hw)
{
    DEV(concat_fwd);
    NEED(y); NEED(a); NEED(b);
    CHECK(dims(__func__, 3, n, ca, hw)); CHECK(dims(__func__, 3, n, cb, hw));
    CHECK(fits_int(__func__, 1, (long long)ca + cb));
    CHECK(dims(__func__, 3, n, ca + cb, hw));
    return d->ops->concat_fwd(d, y, a, b, n, ca, cb, hw);
}

int spo_concat_bwd(spo_dev *d, float *da, float *db, const float *dy, int n, int ca, int cb, int hw)
{
    DEV(concat_bwd);
    CHECK(dims(__func__, 3, n, ca, hw)); CHECK(dims(__func__, 3, n, cb, hw));
    CHECK(fits_int(__func__, 1, (long long)ca + cb));
    CHECK(dims(__func__, 3, n, ca + cb, hw));
    if (!da && !db) return SPO_OK;
    NEED(dy);
    return d->ops->concat_bwd(d, da, db, dy, n, ca, cb, hw);
}

int spo_transpose_fwd(spo_dev *d, float *y, const float *x, int n, int r, int c)
{
    DEV(transpose_fwd);
    NEED(y); NEED(x);
    CHECK(dims(__func__, 3, n, r, c));
    return d->ops->transpose_fwd(d, y, x, n, r, c);
}

static int n_check(const char *fn, size_t n)
{
    if (n > SIZE_MAX / sizeof(float)) return spo_err(SPO_EINVAL, "%s: %zu elements overflow", fn, n);
    return SPO_OK;
}

int spo_add_fwd(spo_dev *d, float *y, const float *a, const float *b, size_t n)
{
    DEV(add_fwd);
    CHECK(n_check(__func__, n));
    if (!n) return SPO_OK;
    NEED(y); NEED(a); NEED(b);
    return d->ops->add_fwd(d, y, a, b, n);
}

int spo_axpy(spo_dev *d, float *y, float alpha, const float *x, size_t n)
{
    DEV(axpy);
    CHECK(n_check(__func__, n));
    if (!n) return SPO_OK;
    NEED(y); NEED(x);
    return d->ops->axpy(d, y, alpha, x, n);
}

int spo_add_nc_fwd(spo_dev *d, float *y, const float *b, int n, int c, int hw)
{
    DEV(add_nc_fwd);
    NEED(y); NEED(b);
    CHECK(dims(__func__, 3, n, c, hw));
    return d->ops->add_nc_fwd(d, y, b, n, c, hw);
}

int spo_add_nc_bwd(spo_dev *d, float *db, const float *dy, int n, int c, int hw)
{
    DEV(add_nc_bwd);
    CHECK(dims(__func__, 3, n, c, hw));
    if (!db) return SPO_OK;
    NEED(dy);
    return d->ops->add_nc_bwd(d, db, dy, n, c, hw);
}

int spo_scale(spo_dev *d, float *y, const float *x, float s, size_t n)
{
    DEV(scale);
    CHECK(n_check(__func__, n));
    if (!n) return SPO_OK;
    NEED(y); NEED(x);
    return d->ops->scale(d, y, x, s, n);
}

int spo_timestep_embed(spo_dev *d, float *y, const float *t, int n, int dim, int flip_sin_to_cos, float shift,
                       float max_period)
{
    DEV(timestep_embed);
    NEED(y); NEED(t);
    CHECK(dims(__func__, 2, n, dim));
    if (!(max_period > 0)) return spo_err(SPO_EINVAL, "%s: max_period %g must be > 0", __func__, max_period);
    if (dim / 2 > 0 && !isfinite(1.0f / ((float)(dim / 2) - shift)))
        return spo_err(SPO_EINVAL, "%s: half %d - shift %g is zero", __func__, dim / 2, shift);
    return d->ops->timestep_embed(d, y, t, n, dim, flip_sin_to_cos != 0, shift, max_period);
}
