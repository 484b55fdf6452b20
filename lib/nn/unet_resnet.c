/* unet_resnet.c — ResnetBlock2D (diffusers, time_embedding_norm "default",
 * output_scale_factor 1) and the linear/conv call wrappers of the UNet.
 *
 *   h = conv1(silu(norm1(x))) + time_emb_proj(silu(temb))[:, :, None, None]
 *   y = shortcut(x) + conv2(silu(norm2(h)))      shortcut: 1x1 conv if cin != cout
 *
 * x (n,cin,h,w) -> y (n,cout,h,w); GroupNorm eps = norm_eps. silu(temb)
 * (n, 4*C0) is computed once per forward in unet.c (u->temba). The time
 * path has no backward: t is not trained and no parameter gradients are
 * taken here. */
#include "nn/unet_impl.h"

int spo_unet_lin_fwd(spo_unet *u, const ulin *l, float *y, const float *x, int m)
{
    RUN(u, spo_linear_fwd(u->dev, y, x, l->w, l->b, m, l->in, l->out));
    return l->lora ? spo_unet_lora_fwd(u, l, y, x, m) : SPO_OK;
}

/* dx (m,in) += dy (m,out) W; x (m,in) is the forward input (for weight/LoRA grads) */
int spo_unet_lin_bwd(spo_unet *u, const ulin *l, float *dx, const float *dy, const float *x, int m)
{
    if (l->lora) SPO_TRY(spo_unet_lora_bwd(u, l, dx, dy, x, m));
    if (!dx) return SPO_OK;
    RUN(u, spo_linear_bwd(u->dev, dx, NULL, NULL, dy, x, l->w, m, l->in, l->out));
    return SPO_OK;
}

static spo_conv conv_shape(const uconv *c, int n, int h, int w)
{
    spo_conv s = {.n = n, .cin = c->cin, .h = h, .w = w, .cout = c->cout, .k = c->k, .stride = c->stride, .pad = c->pad};
    return s;
}

int spo_unet_conv_fwd(spo_unet *u, const uconv *c, float *y, const float *x, int n, int h, int w)
{
    spo_conv s = conv_shape(c, n, h, w);
    RUN(u, spo_conv2d_fwd(u->dev, y, x, c->w, c->b, &s));
    return SPO_OK;
}

int spo_unet_conv_bwd(spo_unet *u, const uconv *c, float *dx, const float *dy, const float *x, int n, int h, int w)
{
    spo_conv s = conv_shape(c, n, h, w);
    RUN(u, spo_conv2d_bwd(u->dev, dx, NULL, NULL, dy, x, c->w, &s));
    return SPO_OK;
}

int spo_unet_resnet_fwd(spo_unet *u, uresnet *r, float **yp, const float *x, int n, int h, int w)
{
    spo_dev *d = u->dev;
    size_t hw = (size_t)h * w, ni = (size_t)n * r->cin * hw, no = (size_t)n * r->cout * hw;
    int g = u->cfg.groups;
    float eps = u->cfg.eps;
    spo_unet_arena *a = &u->fa;
    r->n = n, r->h = h, r->w = w, r->x = x;
    float *y = *yp = r->y = spo_unet_arena_take(u, a, no);
    size_t mark = spo_unet_arena_mark(a);

    r->m1 = spo_unet_arena_take(u, a, (size_t)n * g);
    r->r1 = spo_unet_arena_take(u, a, (size_t)n * g);
    r->h1 = spo_unet_arena_take(u, a, ni);
    r->a1 = u->train ? spo_unet_arena_take(u, a, ni) : r->h1; /* inference: silu in place */
    RUN(u, spo_groupnorm_fwd(d, r->h1, r->m1, r->r1, x, r->n1.g, r->n1.b, n, r->cin, (int)hw, g, eps));
    RUN(u, spo_act_fwd(d, SPO_ACT_SILU, r->a1, r->h1, ni));
    r->o1 = spo_unet_arena_take(u, a, no);
    SPO_TRY(spo_unet_conv_fwd(u, &r->c1, r->o1, r->a1, n, h, w));
    float *tp = spo_unet_arena_take(u, a, (size_t)n * r->cout); /* time_emb_proj(silu(temb)) (n,cout) */
    SPO_TRY(spo_unet_lin_fwd(u, &r->temb, tp, u->temba, n));
    RUN(u, spo_add_nc_fwd(d, r->o1, tp, n, r->cout, (int)hw));

    r->m2 = spo_unet_arena_take(u, a, (size_t)n * g);
    r->r2 = spo_unet_arena_take(u, a, (size_t)n * g);
    r->h2 = spo_unet_arena_take(u, a, no);
    r->a2 = u->train ? spo_unet_arena_take(u, a, no) : r->h2;
    RUN(u, spo_groupnorm_fwd(d, r->h2, r->m2, r->r2, r->o1, r->n2.g, r->n2.b, n, r->cout, (int)hw, g, eps));
    RUN(u, spo_act_fwd(d, SPO_ACT_SILU, r->a2, r->h2, no));
    SPO_TRY(spo_unet_conv_fwd(u, &r->c2, y, r->a2, n, h, w));
    if (r->has_sc) {
        float *s = spo_unet_arena_take(u, a, no);
        SPO_TRY(spo_unet_conv_fwd(u, &r->sc, s, x, n, h, w));
        RUN(u, spo_add_fwd(d, y, y, s, no));
    } else {
        RUN(u, spo_add_fwd(d, y, y, x, no));
    }
    ufwd_release(u, mark);
    return SPO_OK;
}

/* dx (n,cin,h,w) += dy (n,cout,h,w) through the block */
int spo_unet_resnet_bwd(spo_unet *u, uresnet *r, float *dx, const float *dy)
{
    spo_dev *d = u->dev;
    int n = r->n, h = r->h, w = r->w, g = u->cfg.groups;
    size_t hw = (size_t)h * w, ni = (size_t)n * r->cin * hw, no = (size_t)n * r->cout * hw;
    size_t mark = spo_unet_arena_mark(&u->ba);
    float *da2, *dh2, *do1, *da1, *dh1;

    if (r->has_sc) SPO_TRY(spo_unet_conv_bwd(u, &r->sc, dx, dy, r->x, n, h, w));
    else RUN(u, spo_axpy(d, dx, 1.0f, dy, no));

    SPO_TRY(spo_unet_bwd_zeroed(u, &da2, no));
    SPO_TRY(spo_unet_conv_bwd(u, &r->c2, da2, dy, r->a2, n, h, w));
    SPO_TRY(spo_unet_bwd_zeroed(u, &dh2, no));
    RUN(u, spo_act_bwd(d, SPO_ACT_SILU, dh2, da2, r->h2, no));
    SPO_TRY(spo_unet_bwd_zeroed(u, &do1, no));
    RUN(u, spo_groupnorm_bwd(d, do1, NULL, NULL, dh2, r->o1, r->m2, r->r2, r->n2.g, n, r->cout, (int)hw, g));
    /* the time embedding add has no input gradient to pass on */
    SPO_TRY(spo_unet_bwd_zeroed(u, &da1, ni));
    SPO_TRY(spo_unet_conv_bwd(u, &r->c1, da1, do1, r->a1, n, h, w));
    SPO_TRY(spo_unet_bwd_zeroed(u, &dh1, ni));
    RUN(u, spo_act_bwd(d, SPO_ACT_SILU, dh1, da1, r->h1, ni));
    RUN(u, spo_groupnorm_bwd(d, dx, NULL, NULL, dh1, r->x, r->m1, r->r1, r->n1.g, n, r->cin, (int)hw, g));
    spo_unet_arena_release(&u->ba, mark);
    return SPO_OK;
}
