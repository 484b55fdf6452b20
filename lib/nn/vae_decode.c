/* vae_decode.c — the AutoencoderKL decoder forward pass (see vae.h), one
 * image at a time through an arena of three activation buffers sized for
 * the largest tensor of the plan, plus the mid-block attention's q,k,v,o. */
#include <limits.h>
#include <stdlib.h>

#include "nn/vae_impl.h"

#define EPS 1e-6f
static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Largest activation (floats) of one image with latents (h, w). */
static size_t max_act(const spo_vae_config *c, int h, int w)
{
    size_t hw = (size_t)h * w, m = (size_t)c->latent_channels * hw;
    int top = c->ch[c->nblocks - 1], prev = top;
    if ((size_t)top * hw > m) m = (size_t)top * hw;
    for (int i = 0; i < c->nblocks; i++) {
        int out = c->ch[c->nblocks - 1 - i];
        size_t in = (size_t)(prev > out ? prev : out) * hw;
        if (in > m) m = in;
        if (i < c->nblocks - 1) {
            hw *= 4; /* the upsampler's output */
            if ((size_t)out * hw > m) m = (size_t)out * hw;
        }
        prev = out;
    }
    if ((size_t)c->out_channels * hw > m) m = (size_t)c->out_channels * hw;
    return m;
}

static int arena_fit(spo_vae *v, int h, int w)
{
    if (v->arena && h <= v->ah && w <= v->aw) return SPO_OK;
    if (v->arena && h < v->ah) h = v->ah;
    if (v->arena && w < v->aw) w = v->aw;
    const spo_vae_config *c = &v->cfg;
    size_t act = align16(max_act(c, h, w));
    size_t att = c->mid_attn ? align16((size_t)c->ch[c->nblocks - 1] * h * w) : 0;
    size_t lat = align16((size_t)c->latent_channels * h * w);
    size_t g = align16((size_t)c->groups);
    size_t n = 3 * act + 4 * att + lat + 2 * g;
    if (v->arena) spo_dev_free(v->dev, v->arena);
    v->arena = spo_dev_alloc(v->dev, n);
    if (!v->arena) {
        v->arena_n = 0;
        v->ah = v->aw = 0;
        return SPO_EIO;
    }
    float *p = v->arena;
    v->x = p, p += act;
    v->hb = p, p += act;
    v->t = p, p += act;
    v->aq = p, p += att;
    v->ak = p, p += att;
    v->av = p, p += att;
    v->ao = p, p += att;
    v->in = p, p += lat;
    v->mean = p, p += g;
    v->rstd = p;
    v->arena_n = n;
    v->ah = h;
    v->aw = w;
    return SPO_OK;
}

static int conv(spo_vae *v, float *y, const float *x, const float *wt, const float *b, int cin, int cout, int k,
                int h, int w)
{
    spo_conv c = {.n = 1, .cin = cin, .h = h, .w = w, .cout = cout, .k = k, .stride = 1, .pad = k / 2};
    return spo_conv2d_fwd(v->dev, y, x, wt, b, &c);
}

static int norm_silu(spo_vae *v, float *y, const float *x, const float *g, const float *b, int c, size_t hw)
{
    SPO_TRY(spo_groupnorm_fwd(v->dev, y, v->mean, v->rstd, x, g, b, 1, c, (int)hw, v->cfg.groups, EPS));
    return spo_act_fwd(v->dev, SPO_ACT_SILU, y, y, (size_t)c * hw);
}

/* ResnetBlock2D, x (cin,h,w) -> x (cout,h,w) in place; uses hb and t */
static int resnet(spo_vae *v, const vae_resnet *r, int h, int w)
{
    size_t hw = (size_t)h * w;
    SPO_TRY(norm_silu(v, v->t, v->x, r->n1w, r->n1b, r->cin, hw));
    SPO_TRY(conv(v, v->hb, v->t, r->c1w, r->c1b, r->cin, r->cout, 3, h, w));
    SPO_TRY(norm_silu(v, v->t, v->hb, r->n2w, r->n2b, r->cout, hw));
    SPO_TRY(conv(v, v->hb, v->t, r->c2w, r->c2b, r->cout, r->cout, 3, h, w));
    if (r->scw) {
        SPO_TRY(conv(v, v->t, v->x, r->scw, r->scb, r->cin, r->cout, 1, h, w));
        return spo_add_fwd(v->dev, v->x, v->t, v->hb, (size_t)r->cout * hw);
    }
    return spo_add_fwd(v->dev, v->x, v->x, v->hb, (size_t)r->cout * hw);
}

/* mid-block attention, x (c,h,w) in place: one head of width c over the hw
 * tokens, x += to_out(softmax(q k^T / sqrt(c)) v) of group_norm(x) */
static int attention(spo_vae *v, int c, int h, int w)
{
    int hw = h * w;
    const vae_attn *a = &v->attn;
    SPO_TRY(spo_groupnorm_fwd(v->dev, v->t, v->mean, v->rstd, v->x, a->gnw, a->gnb, 1, c, hw, v->cfg.groups, EPS));
    SPO_TRY(spo_transpose_fwd(v->dev, v->hb, v->t, 1, c, hw)); /* (hw, c) */
    SPO_TRY(spo_linear_fwd(v->dev, v->aq, v->hb, a->qw, a->qb, hw, c, c));
    SPO_TRY(spo_linear_fwd(v->dev, v->ak, v->hb, a->kw, a->kb, hw, c, c));
    SPO_TRY(spo_linear_fwd(v->dev, v->av, v->hb, a->vw, a->vb, hw, c, c));
    SPO_TRY(spo_attention_fwd(v->dev, v->ao, NULL, v->aq, v->ak, v->av, 1, hw, hw, 1, c, 0));
    SPO_TRY(spo_linear_fwd(v->dev, v->hb, v->ao, a->ow, a->ob, hw, c, c));
    SPO_TRY(spo_transpose_fwd(v->dev, v->t, v->hb, 1, hw, c)); /* (c, hw) */
    return spo_add_fwd(v->dev, v->x, v->x, v->t, (size_t)c * hw);
}

/* lat (latent,h,w) -> out (out_channels, h*f, w*f), both device memory;
 * out may be v->hb (written only by the last convolution) */
static int decode_one(spo_vae *v, float *out, const float *lat, int h, int w)
{
    const spo_vae_config *c = &v->cfg;
    int L = c->latent_channels, top = c->ch[c->nblocks - 1];
    SPO_TRY(spo_scale(v->dev, v->t, lat, 1.0f / c->scaling_factor, (size_t)L * h * w));
    SPO_TRY(conv(v, v->hb, v->t, v->pqw, v->pqb, L, L, 1, h, w));
    SPO_TRY(conv(v, v->x, v->hb, v->ciw, v->cib, L, top, 3, h, w));
    SPO_TRY(resnet(v, &v->mid[0], h, w));
    if (c->mid_attn) SPO_TRY(attention(v, top, h, w));
    SPO_TRY(resnet(v, &v->mid[1], h, w));
    for (int i = 0; i < c->nblocks; i++) {
        const vae_up *u = &v->up[i];
        for (int j = 0; j <= c->layers_per_block; j++) SPO_TRY(resnet(v, &u->res[j], h, w));
        if (u->upw) {
            int ch = c->ch[c->nblocks - 1 - i];
            SPO_TRY(spo_upsample2x_fwd(v->dev, v->t, v->x, 1, ch, h, w));
            h *= 2, w *= 2;
            SPO_TRY(conv(v, v->x, v->t, u->upw, u->upb, ch, ch, 3, h, w));
        }
    }
    SPO_TRY(norm_silu(v, v->t, v->x, v->now, v->nob, c->ch[0], (size_t)h * w));
    return conv(v, out, v->t, v->cow, v->cob, c->ch[0], c->out_channels, 3, h, w);
}

static int check_args(const spo_vae *v, int batch, int h, int w)
{
    size_t f = (size_t)spo_vae_factor(v);
    if (batch < 0 || h < 1 || w < 1 || (size_t)h * f * (size_t)w * f > INT_MAX / 4)
        return spo_err(SPO_EINVAL, "vae decode: bad shape batch=%d h=%d w=%d", batch, h, w);
    return SPO_OK;
}

/* host: latents and img are host memory, staged through v->in and v->hb */
static int decode(spo_vae *v, float *img, const float *latents, int batch, int h, int w, int host)
{
    SPO_TRY(check_args(v, batch, h, w));
    SPO_TRY(arena_fit(v, h, w));
    int f = spo_vae_factor(v);
    size_t lat_n = (size_t)v->cfg.latent_channels * h * w;
    size_t img_n = (size_t)v->cfg.out_channels * h * f * w * f;
    for (int b = 0; b < batch; b++) {
        if (!host) {
            SPO_TRY(decode_one(v, img + b * img_n, latents + b * lat_n, h, w));
            continue;
        }
        SPO_TRY(spo_dev_upload(v->dev, v->in, latents + b * lat_n, lat_n));
        SPO_TRY(decode_one(v, v->hb, v->in, h, w));
        SPO_TRY(spo_dev_download(v->dev, img + b * img_n, v->hb, img_n));
    }
    return host ? spo_dev_sync(v->dev) : SPO_OK;
}

int spo_vae_decode_dev(spo_vae *v, float *img, const float *latents, int batch, int h, int w)
{
    return decode(v, img, latents, batch, h, w, 0);
}

int spo_vae_decode(spo_vae *v, float *img, const float *latents, int batch, int h, int w)
{
    return decode(v, img, latents, batch, h, w, 1);
}
