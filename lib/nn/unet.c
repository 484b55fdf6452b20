/* unet.c — UNet2DConditionModel: the whole net, its arenas, load/create.
 *
 * Forward (diffusers 0.26.1 UNet2DConditionModel.forward, SD 1.x, SDXL):
 *   temb = linear_2(silu(linear_1(sinusoid(t))))          (n, 4*C0)
 *          [+ SDXL's added embedding: unet_temb.c]
 *   h = conv_in(x); skips = [h]
 *   down block i: per layer h = resnet(h) [h = attn(h)], skips += h;
 *                 then (not last) h = conv_s2(h), skips += h
 *   mid: h = resnet(attn(resnet(h)))
 *   up block i: per layer h = resnet(cat[h, skips.pop()]) [h = attn(h)];
 *               then (not last) h = conv(upsample2x(h))
 *   out = conv_out(silu(GroupNorm(h)))
 * Backward walks the same path in reverse; the gradient of every skip is
 * collected in dskip[k] (from the up-block concat and from the next down
 * module) before it flows into the module that produced it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/unet_impl.h"
#include "core/infile.h"

static int push_skip(spo_unet *u, float *p, int c, int h, int w)
{
    if (u->nskip == UNET_MAXSKIP) return spo_err(SPO_EINVAL, "unet: too many skip connections");
    u->skip[u->nskip] = p, u->skip_c[u->nskip] = c, u->skip_h[u->nskip] = h, u->skip_w[u->nskip] = w;
    u->nskip++;
    return SPO_OK;
}

/* ---- forward -------------------------------------------------------------- */
static int fwd(spo_unet *u, float *out, const float *x, const float *t, const float *ctx, const float *text,
               const float *ids)
{
    spo_dev *d = u->dev;
    const spo_unet_config *c = &u->cfg;
    spo_unet_arena *a = &u->fa;
    int n = u->n, h = u->h, w = u->w, nb = c->nblocks, c0 = c->block_out[0];
    a->top = 0, a->bad = 0;

    if (u->train) { /* own copies: the backward needs them, the caller may reuse its buffers */
        float *xc = spo_unet_arena_take(u, a, (size_t)n * c->in_channels * h * w);
        float *cc = spo_unet_arena_take(u, a, (size_t)n * u->L * c->cross_dim);
        RUN(u, spo_dev_copy(d, xc, x, (size_t)n * c->in_channels * h * w));
        RUN(u, spo_dev_copy(d, cc, ctx, (size_t)n * u->L * c->cross_dim));
        u->x = xc, u->ctx = cc;
    } else {
        u->x = x, u->ctx = ctx;
    }

    SPO_TRY(spo_unet_temb_fwd(u, t, text, ids)); /* temb, temba = silu(temb) (unet_temb.c) */

    float *cur = u->cin_y = spo_unet_arena_take(u, a, (size_t)n * c0 * h * w);
    SPO_TRY(spo_unet_conv_fwd(u, &u->conv_in, cur, u->x, n, h, w));
    u->nskip = 0;
    SPO_TRY(push_skip(u, cur, c0, h, w));
    int ch = c0;

    for (int i = 0; i < nb; i++) {
        ublock *bl = &u->down[i];
        for (int j = 0; j < bl->nl; j++) {
            SPO_TRY(spo_unet_resnet_fwd(u, &bl->res[j], &cur, cur, n, h, w));
            if (bl->attn) SPO_TRY(spo_unet_xformer_fwd(u, &bl->attn[j], &cur, cur, n, h, w));
            ch = bl->res[j].cout;
            SPO_TRY(push_skip(u, cur, ch, h, w));
        }
        if (bl->has_samp) {
            bl->sx = cur, bl->sn = n, bl->sh = h, bl->sw = w;
            h /= 2, w /= 2;
            cur = bl->sy = spo_unet_arena_take(u, a, (size_t)n * ch * h * w);
            SPO_TRY(spo_unet_conv_fwd(u, &bl->samp, cur, bl->sx, n, bl->sh, bl->sw));
            SPO_TRY(push_skip(u, cur, ch, h, w));
        }
    }

    SPO_TRY(spo_unet_resnet_fwd(u, &u->mid_r[0], &cur, cur, n, h, w));
    SPO_TRY(spo_unet_xformer_fwd(u, &u->mid_a, &cur, cur, n, h, w));
    SPO_TRY(spo_unet_resnet_fwd(u, &u->mid_r[1], &cur, cur, n, h, w));

    int k = u->nskip;
    for (int i = 0; i < nb; i++) {
        ublock *bl = &u->up[i];
        for (int j = 0; j < bl->nl; j++) {
            uresnet *r = &bl->res[j];
            int hin = bl->hin_c[j], sc = r->cin - hin;
            if (--k < 0) return spo_err(SPO_EINVAL, "unet: up_blocks.%d needs more skip connections than exist", i);
            if (u->skip_c[k] != sc || u->skip_h[k] != h || u->skip_w[k] != w)
                return spo_err(SPO_EINVAL, "unet: up_blocks.%d.resnets.%d expects a %d-channel %dx%d skip, got %d-channel %dx%d",
                               i, j, sc, h, w, u->skip_c[k], u->skip_h[k], u->skip_w[k]);
            bl->skip_idx[j] = k;
            bl->cat[j] = spo_unet_arena_take(u, a, (size_t)n * r->cin * h * w);
            RUN(u, spo_concat_fwd(d, bl->cat[j], cur, u->skip[k], n, hin, sc, h * w));
            SPO_TRY(spo_unet_resnet_fwd(u, r, &cur, bl->cat[j], n, h, w));
            if (bl->attn) SPO_TRY(spo_unet_xformer_fwd(u, &bl->attn[j], &cur, cur, n, h, w));
            ch = r->cout;
        }
        if (bl->has_samp) {
            bl->sx = cur, bl->sn = n, bl->sh = h, bl->sw = w;
            bl->sup = spo_unet_arena_take(u, a, (size_t)n * ch * 4 * h * w);
            RUN(u, spo_upsample2x_fwd(d, bl->sup, cur, n, ch, h, w));
            h *= 2, w *= 2;
            cur = bl->sy = spo_unet_arena_take(u, a, (size_t)n * ch * h * w);
            SPO_TRY(spo_unet_conv_fwd(u, &bl->samp, cur, bl->sup, n, h, w));
        }
    }
    if (k != 0) return spo_err(SPO_EINVAL, "unet: %d skip connections left unused (config inconsistent)", k);

    size_t sz = (size_t)n * c0 * h * w;
    u->hup = cur;
    u->gom = spo_unet_arena_take(u, a, (size_t)n * c->groups), u->gor = spo_unet_arena_take(u, a, (size_t)n * c->groups);
    u->go = spo_unet_arena_take(u, a, sz);
    RUN(u, spo_groupnorm_fwd(d, u->go, u->gom, u->gor, cur, u->gn_out.g, u->gn_out.b, n, c0, h * w, c->groups, c->eps));
    u->goa = u->train ? spo_unet_arena_take(u, a, sz) : u->go;
    RUN(u, spo_act_fwd(d, SPO_ACT_SILU, u->goa, u->go, sz));
    SPO_TRY(spo_unet_conv_fwd(u, &u->conv_out, out, u->goa, n, h, w));
    return SPO_OK;
}

/* ---- backward ------------------------------------------------------------- */
static int bwd(spo_unet *u, float *dx, float *dctx, const float *dout)
{
    spo_dev *d = u->dev;
    const spo_unet_config *c = &u->cfg;
    int n = u->n, h = u->h, w = u->w, nb = c->nblocks, c0 = c->block_out[0];
    size_t sz = (size_t)n * c0 * h * w;
    float *dh, *t1, *t2;
    u->ba.top = 0, u->ba.bad = 0;

    for (int k = 0; k < u->nskip; k++)
        SPO_TRY(spo_unet_bwd_zeroed(u, &u->dskip[k], (size_t)n * u->skip_c[k] * u->skip_h[k] * u->skip_w[k]));

    /* head: out = conv_out(silu(GroupNorm(hup))) */
    SPO_TRY(spo_unet_bwd_zeroed(u, &t1, sz));
    SPO_TRY(spo_unet_conv_bwd(u, &u->conv_out, t1, dout, u->goa, n, h, w));
    SPO_TRY(spo_unet_bwd_zeroed(u, &t2, sz));
    RUN(u, spo_act_bwd(d, SPO_ACT_SILU, t2, t1, u->go, sz));
    SPO_TRY(spo_unet_bwd_zeroed(u, &dh, sz));
    RUN(u, spo_groupnorm_bwd(d, dh, NULL, NULL, t2, u->hup, u->gom, u->gor, u->gn_out.g, n, c0, h * w, c->groups));

    for (int i = nb - 1; i >= 0; i--) {
        ublock *bl = &u->up[i];
        if (bl->has_samp) {
            int ch = bl->samp.cin;
            size_t s0 = (size_t)bl->sn * ch * bl->sh * bl->sw;
            SPO_TRY(spo_unet_bwd_zeroed(u, &t1, 4 * s0));
            SPO_TRY(spo_unet_conv_bwd(u, &bl->samp, t1, dh, bl->sup, bl->sn, 2 * bl->sh, 2 * bl->sw));
            SPO_TRY(spo_unet_bwd_zeroed(u, &dh, s0));
            RUN(u, spo_upsample2x_bwd(d, dh, t1, bl->sn, ch, bl->sh, bl->sw));
        }
        for (int j = bl->nl - 1; j >= 0; j--) {
            uresnet *r = &bl->res[j];
            size_t hw = (size_t)r->h * r->w;
            if (bl->attn) {
                SPO_TRY(spo_unet_bwd_zeroed(u, &t1, (size_t)n * r->cout * hw));
                SPO_TRY(spo_unet_xformer_bwd(u, &bl->attn[j], t1, dctx, dh));
                dh = t1;
            }
            SPO_TRY(spo_unet_bwd_zeroed(u, &t2, (size_t)n * r->cin * hw));
            SPO_TRY(spo_unet_resnet_bwd(u, r, t2, dh));
            int hin = bl->hin_c[j], k = bl->skip_idx[j];
            SPO_TRY(spo_unet_bwd_zeroed(u, &dh, (size_t)n * hin * hw));
            RUN(u, spo_concat_bwd(d, dh, u->dskip[k], t2, n, hin, r->cin - hin, (int)hw));
        }
    }

    int hm = u->mid_r[0].h, wm = u->mid_r[0].w, cm = u->mid_r[0].cout;
    size_t sm = (size_t)n * cm * hm * wm;
    SPO_TRY(spo_unet_bwd_zeroed(u, &t1, sm));
    SPO_TRY(spo_unet_resnet_bwd(u, &u->mid_r[1], t1, dh));
    SPO_TRY(spo_unet_bwd_zeroed(u, &t2, sm));
    SPO_TRY(spo_unet_xformer_bwd(u, &u->mid_a, t2, dctx, t1));
    int k = u->nskip - 1;
    SPO_TRY(spo_unet_resnet_bwd(u, &u->mid_r[0], u->dskip[k], t2));

    for (int i = nb - 1; i >= 0; i--) {
        ublock *bl = &u->down[i];
        if (bl->has_samp) {
            SPO_TRY(spo_unet_conv_bwd(u, &bl->samp, u->dskip[k - 1], u->dskip[k], bl->sx, bl->sn, bl->sh, bl->sw));
            k--;
        }
        for (int j = bl->nl - 1; j >= 0; j--) {
            uresnet *r = &bl->res[j];
            float *dres = u->dskip[k];
            if (bl->attn) {
                SPO_TRY(spo_unet_bwd_zeroed(u, &t1, (size_t)n * r->cout * r->h * r->w));
                SPO_TRY(spo_unet_xformer_bwd(u, &bl->attn[j], t1, dctx, u->dskip[k]));
                dres = t1;
            }
            SPO_TRY(spo_unet_resnet_bwd(u, r, u->dskip[k - 1], dres));
            k--;
        }
    }
    return spo_unet_conv_bwd(u, &u->conv_in, dx, u->dskip[0], u->x, n, u->h, u->w);
}

/* ---- planning ------------------------------------------------------------- */
static int grow(spo_unet *u, spo_unet_arena *a)
{
    if (a->peak <= a->cap) return SPO_OK;
    if (a->base) spo_dev_free(u->dev, a->base);
    a->cap = 0;
    a->base = spo_dev_alloc(u->dev, a->peak);
    if (!a->base) return spo_err_prefix(SPO_EIO, "unet: activation arena of %zu MiB", a->peak * sizeof(float) >> 20);
    a->cap = a->peak;
    return SPO_OK;
}

/* size both arenas for this shape by a dry run of the same code */
static int plan(spo_unet *u)
{
    if (u->pl_n == u->n && u->pl_h == u->h && u->pl_w == u->w && u->pl_L == u->L && u->pl_train == u->train)
        return SPO_OK;
    u->dry = 1;
    u->fa.peak = u->ba.peak = 0;
    int rc = fwd(u, NULL, NULL, NULL, NULL, NULL, NULL);
    if (!rc && u->train) rc = bwd(u, NULL, NULL, NULL);
    u->dry = 0;
    u->pl_n = 0;
    if (rc) return rc;
    SPO_TRY(grow(u, &u->fa));
    SPO_TRY(grow(u, &u->ba));
    u->pl_n = u->n, u->pl_h = u->h, u->pl_w = u->w, u->pl_L = u->L, u->pl_train = u->train;
    return SPO_OK;
}

int spo_unet_plan_bytes(spo_unet *u, int n, int h, int w, int ctx_len, int train, size_t *fwd_b, size_t *bwd_b)
{
    int f = 1 << (u->cfg.nblocks - 1);
    if (n < 1 || h < 1 || w < 1 || ctx_len < 1 || h % f || w % f)
        return spo_err(SPO_EINVAL, "unet: bad shape n=%d h=%d w=%d ctx_len=%d", n, h, w, ctx_len);
    u->can_bwd = 0; /* the dry run overwrites the cached activation pointers */
    u->pl_n = 0;
    u->n = n, u->h = h, u->w = w, u->L = ctx_len, u->train = !!train;
    u->dry = 1;
    u->fa.peak = u->ba.peak = 0;
    int rc = fwd(u, NULL, NULL, NULL, NULL, NULL, NULL);
    if (!rc && u->train) rc = bwd(u, NULL, NULL, NULL);
    u->dry = 0;
    if (fwd_b) *fwd_b = u->fa.peak * sizeof(float);
    if (bwd_b) *bwd_b = u->ba.peak * sizeof(float);
    return rc;
}

int spo_unet_multiple(const spo_unet *u) { return 1 << (u->cfg.nblocks - 1); }

int spo_unet_forward(spo_unet *u, float *out, const float *x, const float *t, const float *ctx, int n, int h, int w,
                     int ctx_len, int train)
{
    return spo_unet_forward_added(u, out, x, t, ctx, NULL, NULL, n, h, w, ctx_len, train);
}

int spo_unet_forward_added(spo_unet *u, float *out, const float *x, const float *t, const float *ctx,
                           const float *text, const float *ids, int n, int h, int w, int ctx_len, int train)
{
    int f = spo_unet_multiple(u);
    if (u->cfg.add_time_dim && (!text || !ids))
        return spo_err(SPO_EINVAL, "unet: the model (addition_embed_type \"text_time\") needs pooled text "
                       "embeddings and time ids");
    if (!u->cfg.add_time_dim && (text || ids))
        return spo_err(SPO_EINVAL, "unet: the model takes no added conditioning (no addition_embed_type)");
    if (n < 1 || h < 1 || w < 1 || ctx_len < 1)
        return spo_err(SPO_EINVAL, "unet: bad shape n=%d h=%d w=%d ctx_len=%d", n, h, w, ctx_len);
    if (h % f || w % f) return spo_err(SPO_EINVAL, "unet: sample %dx%d is not a multiple of %d", h, w, f);
    if (!u->ps.buf) return spo_err(SPO_EINVAL, "unet: created without a device");
    u->can_bwd = 0;
    u->n = n, u->h = h, u->w = w, u->L = ctx_len, u->train = !!train;
    SPO_TRY(plan(u));
    u->lora_fwd = !u->lora_off;
    SPO_TRY(fwd(u, out, x, t, ctx, text, ids));
    u->can_bwd = u->train;
    return SPO_OK;
}

int spo_unet_backward(spo_unet *u, float *dx, float *dctx, const float *dout)
{
    if (!u->can_bwd) return spo_err(SPO_EINVAL, "unet: backward needs a forward with train set just before");
    if (!dx) return spo_err(SPO_EINVAL, "unet: backward needs dx");
    return bwd(u, dx, dctx, dout);
}

/* ---- create, load, free --------------------------------------------------- */
int spo_unet_create(spo_unet **up, const spo_unet_config *cfg, spo_dev *dev)
{
    *up = NULL;
    SPO_TRY(spo_unet_config_check(cfg));
    spo_unet *u = calloc(1, sizeof *u);
    if (!u) return spo_err(SPO_EIO, "out of memory");
    u->cfg = *cfg, u->dev = dev;
    spo_params_init(&u->ps);
    int rc = spo_unet_declare(u);
    if (!rc && dev) rc = spo_params_alloc(&u->ps, dev);
    if (rc) {
        spo_unet_free(u);
        return rc;
    }
    *up = u;
    return SPO_OK;
}

int spo_unet_load(spo_unet **up, const char *dir, spo_dev *dev)
{
    static const char *names[] = {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"};
    char path[4096];
    spo_unet_config cfg;
    *up = NULL;
    snprintf(path, sizeof path, "%s/config.json", dir);
    SPO_TRY(spo_unet_config_load(&cfg, path));
    FILE *f = NULL;
    for (size_t i = 0; i < sizeof names / sizeof *names && !f; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (spo_fopen_in(&f, path) && errno != ENOENT) return SPO_EINVAL; /* not a regular file: message set */
    }
    if (!f) return spo_err(SPO_EIO, "%s: no diffusion_pytorch_model[.fp16].safetensors", dir);
    fclose(f);
    spo_unet *u;
    SPO_TRY(spo_unet_check_weights(&cfg, path)); /* names and shapes before any allocation */
    SPO_TRY(spo_unet_create(&u, &cfg, dev));
    int rc = spo_params_load(&u->ps, path, NULL, 0);
    if (rc) {
        spo_unet_free(u);
        return rc;
    }
    *up = u;
    return SPO_OK;
}

static void free_block(ublock *bl)
{
    if (bl->attn)
        for (int j = 0; j < bl->nl; j++) free(bl->attn[j].tb);
    free(bl->res), free(bl->attn), free(bl->cat), free(bl->skip_idx), free(bl->hin_c);
}

void spo_unet_free(spo_unet *u)
{
    if (!u) return;
    for (int i = 0; i < SPO_UNET_MAXB; i++) free_block(&u->down[i]), free_block(&u->up[i]);
    free(u->mid_a.tb);
    if (u->fa.base) spo_dev_free(u->dev, u->fa.base); /* arenas exist only with a device */
    if (u->ba.base) spo_dev_free(u->dev, u->ba.base);
    spo_params_free(&u->ps);
    free(u);
}

void spo_unet_set_attn_recompute(spo_unet *u, int on)
{
    u->recompute = !!on;
    u->pl_n = 0, u->can_bwd = 0; /* replan */
}

spo_params *spo_unet_params(spo_unet *u) { return &u->ps; }
const spo_unet_config *spo_unet_cfg(const spo_unet *u) { return &u->cfg; }

void spo_unet_arena_bytes(const spo_unet *u, size_t *fwd_b, size_t *bwd_b)
{
    if (fwd_b) *fwd_b = u->fa.cap * sizeof(float);
    if (bwd_b) *bwd_b = u->ba.cap * sizeof(float);
}
