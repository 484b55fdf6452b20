/* unet_impl.h — private structures of the UNet (lib/unet*.c only).
 *
 * Execution model. Every module instance is used once per forward, so it
 * keeps pointers to its own activations. All activations come from two
 * bump arenas: `fa` (forward) and `ba` (backward temporaries). A module's
 * output is taken first, then its internals between arena_mark/arena_release;
 * in train mode release is a no-op, so everything the backward needs stays.
 * Backward temporaries are always released after each module.
 *
 * The arenas are sized by running the very same forward/backward code with
 * u->dry set: arena_take only counts and RUN() skips the op calls. So the
 * size table can never disagree with the code that uses it.
 *
 * Linear layers (ulin) of the attention are plain x W^T + b calls through
 * spo_unet_lin_fwd/spo_unet_lin_bwd; a LoRA delta (scale * (x A^T) B^T) belongs there, and
 * each linear's input stays in the arena in train mode for its gradient. */
#ifndef SPO_UNET_IMPL_H
#define SPO_UNET_IMPL_H

#include "ops/ops.h"
#include "nn/params.h"
#include "nn/unet.h"

#define UNET_MAXL 8 /* most layers_per_block */
#define UNET_MAXSKIP (1 + SPO_UNET_MAXB * (UNET_MAXL + 1))

/* ---- arena ---------------------------------------------------------------- */
typedef struct {
    float *base;
    size_t cap, top, peak; /* floats */
    int bad;               /* overflow seen (internal error) */
} spo_unet_arena;

typedef struct spo_unet spo_unet;

/* run an op unless planning; return its error */
#define RUN(u, call)                                                                                            \
    do {                                                                                                        \
        if (!(u)->dry) {                                                                                        \
            if ((u)->fa.bad || (u)->ba.bad) return spo_err(SPO_EIO, "unet: activation arena overflow");         \
            SPO_TRY(call);                                                                                      \
        }                                                                                                       \
    } while (0)

/* ---- parameters ----------------------------------------------------------- */
typedef struct { float *w, *b; int in, out; spo_unet_lora *lora; } ulin; /* w (out,in), b (out) or NULL; LoRA or NULL */
typedef struct { float *w, *b; int cin, cout, k, stride, pad; } uconv; /* w (cout,cin,k,k), b (cout) */
typedef struct { float *g, *b; } unorm;                              /* gamma, beta (c) */

/* ResnetBlock2D: x (n,cin,h,w) -> y (n,cout,h,w) */
typedef struct {
    int cin, cout, has_sc;
    unorm n1, n2;
    uconv c1, c2, sc;
    ulin temb;
    /* last forward */
    int n, h, w;
    const float *x;
    float *m1, *r1, *h1, *a1, *o1, *m2, *r2, *h2, *a2, *y;
} uresnet;

/* BasicTransformerBlock on tokens (n, T, C), context (n, L, D) */
typedef struct {
    unorm ln1, ln2, ln3;
    ulin q1, k1, v1, o1, q2, k2, v2, o2, ff0, ff2;
    const float *x;                         /* (M,C) input, M = n*T */
    float *lm1, *lr1, *l1, *q, *k, *v, *p1, *at1, *t1;
    float *lm2, *lr2, *l2, *q2x, *k2x, *v2x, *p2, *at2, *t2;
    float *lm3, *lr3, *l3, *f, *gg, *y;
} utblock;

/* Transformer2DModel: x (n,C,h,w) -> y (n,C,h,w) */
typedef struct {
    int c, heads, ntb, linear;
    unorm gn;
    uconv pin_c, pout_c;                    /* 1x1 convs (use_linear_projection false) */
    ulin pin_l, pout_l;                     /* linears (true) */
    utblock *tb;
    int n, h, w;
    const float *x;
    float *gm, *gr, *g, *pi, *tok, *to, *po, *y;
} uxformer;

/* one down or up block */
typedef struct {
    int nl;                                 /* resnets */
    uresnet *res;
    uxformer *attn;                         /* nl of them, or NULL */
    int has_samp;                           /* downsampler (conv s2) / upsampler (2x nearest + conv) */
    uconv samp;
    const float *sx;                        /* sampler input */
    float *sup, *sy;                        /* upsampled (up blocks), sampler output */
    int sn, sh, sw;                         /* sampler input shape */
    float **cat;                            /* up blocks: concat [h, skip] per resnet */
    int *skip_idx;                          /* up blocks: which skip each resnet takes */
    int *hin_c;                             /* up blocks: channels of h before each concat */
} ublock;

struct spo_unet {
    spo_unet_config cfg;
    spo_dev *dev;
    spo_params ps;
    ulin t1, t2;
    ulin a1, a2;                            /* add_embedding.linear_1/2 (text_time models) */
    uconv conv_in, conv_out;
    unorm gn_out;
    ublock down[SPO_UNET_MAXB], up[SPO_UNET_MAXB];
    uresnet mid_r[2];
    uxformer mid_a;

    /* arenas and plan */
    spo_unet_arena fa, ba;
    int dry;
    int recompute;                          /* train: recompute self-attention probabilities in backward */
    int lora_off;                           /* attached LoRAs are skipped (reference pass) */
    int lora_fwd;                           /* the last forward used the LoRAs (for the backward) */
    int pl_n, pl_h, pl_w, pl_L, pl_train;   /* shape the arenas were planned for */

    /* last forward */
    int n, h, w, L, train, can_bwd;
    const float *x, *ctx;
    float *ts, *e1, *e1a, *temb, *temba;
    float *cin_y, *hup, *gom, *gor, *go, *goa;
    float *skip[UNET_MAXSKIP];               /* down-path outputs, as diffusers collects them */
    int skip_c[UNET_MAXSKIP], skip_h[UNET_MAXSKIP], skip_w[UNET_MAXSKIP];
    int nskip;
    float *dskip[UNET_MAXSKIP];
};

/* arena (unet.c) */
float *spo_unet_arena_take(spo_unet *u, spo_unet_arena *a, size_t n);
static inline size_t spo_unet_arena_mark(const spo_unet_arena *a) { return a->top; }
static inline void spo_unet_arena_release(spo_unet_arena *a, size_t m) { a->top = m; }
/* forward internals: released only when not training */
static inline void ufwd_release(spo_unet *u, size_t m)
{
    if (!u->train) spo_unet_arena_release(&u->fa, m);
}
/* *p = a zeroed backward temporary of n floats */
int spo_unet_bwd_zeroed(spo_unet *u, float **p, size_t n);

/* time embedding (unet_temb.c): u->temb (n, 4*C0) and u->temba = silu(temb)
 * in the forward arena, from t (n) and, for a text_time model, the pooled
 * text embeddings and time ids (no backward: nothing there is trained) */
int spo_unet_temb_fwd(spo_unet *u, const float *t, const float *text, const float *ids);

/* params (unet_params.c) */
int spo_unet_declare(spo_unet *u);

/* linears and convs (unet_resnet.c) */
int spo_unet_lin_fwd(spo_unet *u, const ulin *l, float *y, const float *x, int m);
int spo_unet_lin_bwd(spo_unet *u, const ulin *l, float *dx, const float *dy, const float *x, int m);
/* LoRA delta of a linear (unet_lora.c): y += scale (x A^T) B^T; backward
 * dA, dB (+=) and dx += scale (dy B) A. Called by spo_unet_lin_fwd/bwd. */
int spo_unet_lora_fwd(spo_unet *u, const ulin *l, float *y, const float *x, int m);
int spo_unet_lora_bwd(spo_unet *u, const ulin *l, float *dx, const float *dy, const float *x, int m);
int spo_unet_conv_fwd(spo_unet *u, const uconv *c, float *y, const float *x, int n, int h, int w);
int spo_unet_conv_bwd(spo_unet *u, const uconv *c, float *dx, const float *dy, const float *x, int n, int h, int w);

/* resnet (unet_resnet.c): y taken from the forward arena */
int spo_unet_resnet_fwd(spo_unet *u, uresnet *r, float **y, const float *x, int n, int h, int w);
int spo_unet_resnet_bwd(spo_unet *u, uresnet *r, float *dx, const float *dy);

/* transformer (unet_attn.c) */
int spo_unet_xformer_fwd(spo_unet *u, uxformer *t, float **y, const float *x, int n, int h, int w);
int spo_unet_xformer_bwd(spo_unet *u, uxformer *t, float *dx, float *dctx, const float *dy);

#endif
