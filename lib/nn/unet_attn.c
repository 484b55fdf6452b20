/* unet_attn.c — Transformer2DModel with BasicTransformerBlocks (diffusers
 * 0.26.1, SD 1.x settings), forward and backward to x and the context.
 *
 * Transformer2DModel, x (n,C,h,w), T = h*w tokens, M = n*T:
 *   g = GroupNorm(x; groups, eps 1e-6)
 *   tok = proj_in(g) as (n,T,C)     1x1 conv then transpose (or transpose then Linear)
 *   tok = block(tok) for each transformer block
 *   y = proj_out(tok) as (n,C,h,w) + x
 * BasicTransformerBlock, tokens x (M,C), context (n,L,D), H heads of C/H:
 *   t1 = x  + to_out1(attn(to_q1(l1), to_k1(l1), to_v1(l1)))   l1 = LayerNorm1(x)
 *   t2 = t1 + to_out2(attn(to_q2(l2), to_k2(ctx), to_v2(ctx)))  l2 = LayerNorm2(t1)
 *   y  = t2 + ff2(geglu(ff0(l3)))                               l3 = LayerNorm3(t2)
 * LayerNorm eps 1e-5; q/k/v have no bias, to_out.0 has one; geglu of
 * (M,8C) gives (M,4C) = first half * gelu(second half). Every linear input
 * (l1, l2, ctx, at1, at2, l3, gg) stays in the arena in train mode. */
#include "nn/unet_impl.h"

#define GN_EPS 1e-6f
#define LN_EPS 1e-5f

static int tblock_fwd(spo_unet *u, utblock *b, float **yp, const float *x, int n, int T, int C, int H)
{
    spo_dev *d = u->dev;
    spo_unet_arena *a = &u->fa;
    int M = n * T, L = u->L, dh = C / H;
    size_t mc = (size_t)M * C, lc = (size_t)n * L * C;
    b->x = x;
    float *y = *yp = b->y = spo_unet_arena_take(u, a, mc);
    size_t mark = spo_unet_arena_mark(a);

    /* self-attention */
    b->lm1 = spo_unet_arena_take(u, a, M), b->lr1 = spo_unet_arena_take(u, a, M), b->l1 = spo_unet_arena_take(u, a, mc);
    RUN(u, spo_layernorm_fwd(d, b->l1, b->lm1, b->lr1, x, b->ln1.g, b->ln1.b, M, C, LN_EPS));
    b->q = spo_unet_arena_take(u, a, mc), b->k = spo_unet_arena_take(u, a, mc), b->v = spo_unet_arena_take(u, a, mc);
    SPO_TRY(spo_unet_lin_fwd(u, &b->q1, b->q, b->l1, M));
    SPO_TRY(spo_unet_lin_fwd(u, &b->k1, b->k, b->l1, M));
    SPO_TRY(spo_unet_lin_fwd(u, &b->v1, b->v, b->l1, M));
    /* self-attention probabilities (n,H,T,T): kept for backward, or recomputed there */
    b->p1 = u->train && !u->recompute ? spo_unet_arena_take(u, a, (size_t)n * H * T * T) : NULL;
    b->at1 = spo_unet_arena_take(u, a, mc);
    RUN(u, spo_attention_fwd(d, b->at1, b->p1, b->q, b->k, b->v, n, T, T, H, dh, 0));
    b->t1 = spo_unet_arena_take(u, a, mc);
    SPO_TRY(spo_unet_lin_fwd(u, &b->o1, b->t1, b->at1, M));
    RUN(u, spo_add_fwd(d, b->t1, b->t1, x, mc));

    /* cross-attention */
    b->lm2 = spo_unet_arena_take(u, a, M), b->lr2 = spo_unet_arena_take(u, a, M), b->l2 = spo_unet_arena_take(u, a, mc);
    RUN(u, spo_layernorm_fwd(d, b->l2, b->lm2, b->lr2, b->t1, b->ln2.g, b->ln2.b, M, C, LN_EPS));
    b->q2x = spo_unet_arena_take(u, a, mc), b->k2x = spo_unet_arena_take(u, a, lc), b->v2x = spo_unet_arena_take(u, a, lc);
    SPO_TRY(spo_unet_lin_fwd(u, &b->q2, b->q2x, b->l2, M));
    SPO_TRY(spo_unet_lin_fwd(u, &b->k2, b->k2x, u->ctx, n * L));
    SPO_TRY(spo_unet_lin_fwd(u, &b->v2, b->v2x, u->ctx, n * L));
    b->p2 = u->train ? spo_unet_arena_take(u, a, (size_t)n * H * T * L) : NULL;
    b->at2 = spo_unet_arena_take(u, a, mc);
    RUN(u, spo_attention_fwd(d, b->at2, b->p2, b->q2x, b->k2x, b->v2x, n, T, L, H, dh, 0));
    b->t2 = spo_unet_arena_take(u, a, mc);
    SPO_TRY(spo_unet_lin_fwd(u, &b->o2, b->t2, b->at2, M));
    RUN(u, spo_add_fwd(d, b->t2, b->t2, b->t1, mc));

    /* GEGLU feed-forward */
    b->lm3 = spo_unet_arena_take(u, a, M), b->lr3 = spo_unet_arena_take(u, a, M), b->l3 = spo_unet_arena_take(u, a, mc);
    RUN(u, spo_layernorm_fwd(d, b->l3, b->lm3, b->lr3, b->t2, b->ln3.g, b->ln3.b, M, C, LN_EPS));
    b->f = spo_unet_arena_take(u, a, 8 * mc);
    SPO_TRY(spo_unet_lin_fwd(u, &b->ff0, b->f, b->l3, M));
    b->gg = spo_unet_arena_take(u, a, 4 * mc);
    RUN(u, spo_geglu_fwd(d, b->gg, b->f, M, 4 * C));
    SPO_TRY(spo_unet_lin_fwd(u, &b->ff2, y, b->gg, M));
    RUN(u, spo_add_fwd(d, y, y, b->t2, mc));
    ufwd_release(u, mark);
    return SPO_OK;
}

/* dx (M,C) += through the block from dy (M,C); dctx (n,L,D) += (may be NULL) */
static int tblock_bwd(spo_unet *u, utblock *b, float *dx, float *dctx, const float *dy, int n, int T, int C, int H)
{
    spo_dev *d = u->dev;
    int M = n * T, L = u->L, dh = C / H;
    size_t mc = (size_t)M * C, lc = (size_t)n * L * C;
    size_t mark = spo_unet_arena_mark(&u->ba);
    float *dt2, *dt1, *dgg, *df, *dl, *dat, *dq, *dk, *dv;

    /* feed-forward: dt2 = dy + LN3'(ff'(dy)) */
    SPO_TRY(spo_unet_bwd_zeroed(u, &dgg, 4 * mc));
    SPO_TRY(spo_unet_lin_bwd(u, &b->ff2, dgg, dy, b->gg, M));
    SPO_TRY(spo_unet_bwd_zeroed(u, &df, 8 * mc));
    RUN(u, spo_geglu_bwd(d, df, dgg, b->f, M, 4 * C));
    SPO_TRY(spo_unet_bwd_zeroed(u, &dl, mc));
    SPO_TRY(spo_unet_lin_bwd(u, &b->ff0, dl, df, b->l3, M));
    dt2 = spo_unet_arena_take(u, &u->ba, mc);
    RUN(u, spo_dev_copy(d, dt2, dy, mc));
    RUN(u, spo_layernorm_bwd(d, dt2, NULL, NULL, dl, b->t2, b->lm3, b->lr3, b->ln3.g, M, C));

    /* cross-attention: dt1 = dt2 + LN2'(q2'(attn'(o2'(dt2)))) ; dctx += k2', v2' */
    SPO_TRY(spo_unet_bwd_zeroed(u, &dat, mc));
    SPO_TRY(spo_unet_lin_bwd(u, &b->o2, dat, dt2, b->at2, M));
    SPO_TRY(spo_unet_bwd_zeroed(u, &dq, mc));
    SPO_TRY(spo_unet_bwd_zeroed(u, &dk, lc));
    SPO_TRY(spo_unet_bwd_zeroed(u, &dv, lc));
    RUN(u, spo_attention_bwd(d, dq, dk, dv, dat, b->p2, b->q2x, b->k2x, b->v2x, n, T, L, H, dh));
    SPO_TRY(spo_unet_bwd_zeroed(u, &dl, mc));
    SPO_TRY(spo_unet_lin_bwd(u, &b->q2, dl, dq, b->l2, M));
    SPO_TRY(spo_unet_lin_bwd(u, &b->k2, dctx, dk, u->ctx, n * L));
    SPO_TRY(spo_unet_lin_bwd(u, &b->v2, dctx, dv, u->ctx, n * L));
    dt1 = spo_unet_arena_take(u, &u->ba, mc);
    RUN(u, spo_dev_copy(d, dt1, dt2, mc));
    RUN(u, spo_layernorm_bwd(d, dt1, NULL, NULL, dl, b->t1, b->lm2, b->lr2, b->ln2.g, M, C));

    /* self-attention: dx += dt1 + LN1'(q1'+k1'+v1'(attn'(o1'(dt1)))) */
    RUN(u, spo_axpy(d, dx, 1.0f, dt1, mc));
    SPO_TRY(spo_unet_bwd_zeroed(u, &dat, mc));
    SPO_TRY(spo_unet_lin_bwd(u, &b->o1, dat, dt1, b->at1, M));
    const float *p1 = b->p1;
    if (u->recompute) { /* recompute the probabilities (the output is discarded) */
        float *pp = spo_unet_arena_take(u, &u->ba, (size_t)n * H * T * T), *o = spo_unet_arena_take(u, &u->ba, mc);
        RUN(u, spo_attention_fwd(d, o, pp, b->q, b->k, b->v, n, T, T, H, dh, 0));
        p1 = pp;
    }
    SPO_TRY(spo_unet_bwd_zeroed(u, &dq, mc));
    SPO_TRY(spo_unet_bwd_zeroed(u, &dk, mc));
    SPO_TRY(spo_unet_bwd_zeroed(u, &dv, mc));
    RUN(u, spo_attention_bwd(d, dq, dk, dv, dat, p1, b->q, b->k, b->v, n, T, T, H, dh));
    SPO_TRY(spo_unet_bwd_zeroed(u, &dl, mc));
    SPO_TRY(spo_unet_lin_bwd(u, &b->q1, dl, dq, b->l1, M));
    SPO_TRY(spo_unet_lin_bwd(u, &b->k1, dl, dk, b->l1, M));
    SPO_TRY(spo_unet_lin_bwd(u, &b->v1, dl, dv, b->l1, M));
    RUN(u, spo_layernorm_bwd(d, dx, NULL, NULL, dl, b->x, b->lm1, b->lr1, b->ln1.g, M, C));
    spo_unet_arena_release(&u->ba, mark);
    return SPO_OK;
}

int spo_unet_xformer_fwd(spo_unet *u, uxformer *t, float **yp, const float *x, int n, int h, int w)
{
    spo_dev *d = u->dev;
    spo_unet_arena *a = &u->fa;
    int C = t->c, T = h * w, M = n * T, g = u->cfg.groups;
    size_t sz = (size_t)M * C;
    t->n = n, t->h = h, t->w = w, t->x = x;
    float *y = *yp = t->y = spo_unet_arena_take(u, a, sz);
    size_t mark = spo_unet_arena_mark(a);

    t->gm = spo_unet_arena_take(u, a, (size_t)n * g), t->gr = spo_unet_arena_take(u, a, (size_t)n * g);
    t->g = spo_unet_arena_take(u, a, sz);
    RUN(u, spo_groupnorm_fwd(d, t->g, t->gm, t->gr, x, t->gn.g, t->gn.b, n, C, T, g, GN_EPS));
    t->pi = spo_unet_arena_take(u, a, sz), t->tok = spo_unet_arena_take(u, a, sz);
    if (t->linear) { /* (n,C,T) -> (n,T,C) -> Linear */
        RUN(u, spo_transpose_fwd(d, t->pi, t->g, n, C, T));
        SPO_TRY(spo_unet_lin_fwd(u, &t->pin_l, t->tok, t->pi, M));
    } else { /* 1x1 conv -> (n,T,C) */
        SPO_TRY(spo_unet_conv_fwd(u, &t->pin_c, t->pi, t->g, n, h, w));
        RUN(u, spo_transpose_fwd(d, t->tok, t->pi, n, C, T));
    }
    float *cur = t->tok;
    for (int i = 0; i < t->ntb; i++) SPO_TRY(tblock_fwd(u, &t->tb[i], &cur, cur, n, T, C, t->heads));
    t->to = cur;
    t->po = spo_unet_arena_take(u, a, sz);
    if (t->linear) { /* Linear -> (n,C,T) */
        SPO_TRY(spo_unet_lin_fwd(u, &t->pout_l, t->po, cur, M));
        RUN(u, spo_transpose_fwd(d, y, t->po, n, T, C));
    } else { /* (n,C,T) -> 1x1 conv */
        RUN(u, spo_transpose_fwd(d, t->po, cur, n, T, C));
        SPO_TRY(spo_unet_conv_fwd(u, &t->pout_c, y, t->po, n, h, w));
    }
    RUN(u, spo_add_fwd(d, y, y, x, sz));
    ufwd_release(u, mark);
    return SPO_OK;
}

/* dx (n,C,h,w) += through the model from dy; dctx += (may be NULL) */
int spo_unet_xformer_bwd(spo_unet *u, uxformer *t, float *dx, float *dctx, const float *dy)
{
    spo_dev *d = u->dev;
    int n = t->n, h = t->h, w = t->w, C = t->c, T = h * w, M = n * T, g = u->cfg.groups;
    size_t sz = (size_t)M * C;
    size_t mark = spo_unet_arena_mark(&u->ba);
    float *dcur, *tmp, *dg;

    RUN(u, spo_axpy(d, dx, 1.0f, dy, sz)); /* residual */
    if (t->linear) {
        tmp = spo_unet_arena_take(u, &u->ba, sz);
        RUN(u, spo_transpose_fwd(d, tmp, dy, n, C, T));
        SPO_TRY(spo_unet_bwd_zeroed(u, &dcur, sz));
        SPO_TRY(spo_unet_lin_bwd(u, &t->pout_l, dcur, tmp, t->to, M));
    } else {
        SPO_TRY(spo_unet_bwd_zeroed(u, &tmp, sz));
        SPO_TRY(spo_unet_conv_bwd(u, &t->pout_c, tmp, dy, t->po, n, h, w));
        dcur = spo_unet_arena_take(u, &u->ba, sz);
        RUN(u, spo_transpose_fwd(d, dcur, tmp, n, C, T));
    }
    for (int i = t->ntb - 1; i >= 0; i--) {
        float *dprev;
        SPO_TRY(spo_unet_bwd_zeroed(u, &dprev, sz));
        SPO_TRY(tblock_bwd(u, &t->tb[i], dprev, dctx, dcur, n, T, C, t->heads));
        dcur = dprev;
    }
    if (t->linear) {
        SPO_TRY(spo_unet_bwd_zeroed(u, &tmp, sz));
        SPO_TRY(spo_unet_lin_bwd(u, &t->pin_l, tmp, dcur, t->pi, M));
        dg = spo_unet_arena_take(u, &u->ba, sz);
        RUN(u, spo_transpose_fwd(d, dg, tmp, n, T, C));
    } else {
        tmp = spo_unet_arena_take(u, &u->ba, sz);
        RUN(u, spo_transpose_fwd(d, tmp, dcur, n, T, C));
        SPO_TRY(spo_unet_bwd_zeroed(u, &dg, sz));
        SPO_TRY(spo_unet_conv_bwd(u, &t->pin_c, dg, tmp, t->g, n, h, w));
    }
    RUN(u, spo_groupnorm_bwd(d, dx, NULL, NULL, dg, t->x, t->gm, t->gr, t->gn.g, n, C, T, g));
    spo_unet_arena_release(&u->ba, mark);
    return SPO_OK;
}
