/* spm_vision.c — the step-aware preference model's vision tower: timestep
 * embedder, CLIP vision embeddings, adaLN-modulated encoder layers, pooled
 * modulation, visual projection (see spm.h). Ops only (lib/ops/ops.h,
 * lib/ops/ops_extra.h); activations carved from m->varena. */
#include <stdio.h>
#include <stdlib.h>

#include "ops/ops_extra.h"
#include "nn/spm_impl.h"

static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; }

int spo_spm_vision_declare(spo_spm *m)
{
    const spo_spm_config *c = &m->cfg;
    spo_params *ps = &m->ps;
    int W = c->width, g = c->image_size / c->patch, T = g * g + 1;
    char pre[96];
    SPO_TRY(spo_params_add(ps, &m->cls, "vision_model.embeddings.class_embedding", W, 0, 0, 0));
    SPO_TRY(spo_params_add(ps, &m->patchw, "vision_model.embeddings.patch_embedding.weight", W, 3, c->patch, c->patch));
    SPO_TRY(spo_params_add(ps, &m->pos, "vision_model.embeddings.position_embedding.weight", T, W, 0, 0));
    SPO_TRY(spo_params_add(ps, &m->prew, "vision_model.pre_layrnorm.weight", W, 0, 0, 0));
    SPO_TRY(spo_params_add(ps, &m->preb, "vision_model.pre_layrnorm.bias", W, 0, 0, 0));
    if (c->layers && !(m->layer = calloc((size_t)c->layers, sizeof *m->layer)))
        return spo_err(SPO_EIO, "out of memory");
    for (int i = 0; i < c->layers; i++) {
        spm_layer *l = &m->layer[i];
        l->L.dim = W;
        l->L.heads = c->heads;
        l->L.inter = c->inter;
        l->L.act = c->act;
        l->L.eps = c->eps;
        snprintf(pre, sizeof pre, "vision_model.encoder.layers.%d.", i);
        SPO_TRY(spo_clip_layer_declare(&l->L, ps, pre));
        SPO_TRY(spo_params_addf(ps, &l->modw, 6 * W, W, 0, 0, "%sadaLN_modulation.1.weight", pre));
        SPO_TRY(spo_params_addf(ps, &l->modb, 6 * W, 0, 0, 0, "%sadaLN_modulation.1.bias", pre));
    }
    SPO_TRY(spo_params_add(ps, &m->postw, "vision_model.post_layernorm.weight", W, 0, 0, 0));
    SPO_TRY(spo_params_add(ps, &m->postb, "vision_model.post_layernorm.bias", W, 0, 0, 0));
    SPO_TRY(spo_params_add(ps, &m->fmodw, "vision_model.adaLN_modulation.1.weight", 2 * W, W, 0, 0));
    SPO_TRY(spo_params_add(ps, &m->fmodb, "vision_model.adaLN_modulation.1.bias", 2 * W, 0, 0, 0));
    SPO_TRY(spo_params_add(ps, &m->vproj, "visual_projection.weight", c->proj, W, 0, 0));
    SPO_TRY(spo_params_add(ps, &m->tproj, "text_projection.weight", c->proj, c->text.dim, 0, 0));
    SPO_TRY(spo_params_add(ps, &m->logit, "logit_scale", 0, 0, 0, 0));
    SPO_TRY(spo_params_add(ps, &m->t0w, "t_embedder.mlp.0.weight", W, c->freq, 0, 0));
    SPO_TRY(spo_params_add(ps, &m->t0b, "t_embedder.mlp.0.bias", W, 0, 0, 0));
    SPO_TRY(spo_params_add(ps, &m->t2w, "t_embedder.mlp.2.weight", W, W, 0, 0));
    SPO_TRY(spo_params_add(ps, &m->t2b, "t_embedder.mlp.2.bias", W, 0, 0, 0));
    /* buffers (arange) that files written by older transformers carry */
    SPO_TRY(spo_params_ignore(ps, "vision_model.embeddings.position_ids"));
    return spo_params_ignore(ps, "model.vision_model.embeddings.position_ids");
}

/* The activations of n images, carved in this order from one buffer. */
typedef struct {
    float *px, *t, *out;             /* inputs (n,3,S,S), (n); output (n,proj) */
    float *temb, *h1, *tc, *mod, *fm; /* (n,freq), (n,W), (n,W), (n,6W), (n,2W) */
    float *patches, *x, *y;          /* (n,W,N), (n,T,W), (n,T,W) */
    float *mean, *rstd, *cls;        /* (n*T), (n*T), (n,W) */
    float *scratch;                  /* clip layer scratch for n*T tokens */
    size_t total;
} vision_acts;

static void carve(const spo_spm_config *c, int n, float *base, vision_acts *a)
{
    size_t W = (size_t)c->width, S = (size_t)c->image_size, g = S / (size_t)c->patch, N = g * g, T = N + 1;
    struct {
        float **p;
        size_t n;
    } t[] = {
        {&a->px, n * 3 * S * S}, {&a->t, (size_t)n}, {&a->out, n * (size_t)c->proj},
        {&a->temb, n * (size_t)c->freq}, {&a->h1, n * W}, {&a->tc, n * W}, {&a->mod, n * 6 * W},
        {&a->fm, n * 2 * W}, {&a->patches, n * W * N}, {&a->x, n * T * W}, {&a->y, n * T * W},
        {&a->mean, n * T}, {&a->rstd, n * T}, {&a->cls, n * W},
    };
    size_t off = 0;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        *t[i].p = base ? base + off : NULL;
        off += align16(t[i].n);
    }
    spo_clip_layer L = {.dim = c->width, .heads = c->heads, .inter = c->inter};
    a->scratch = base ? base + off : NULL;
    a->total = off + spo_clip_layer_scratch(&L, (size_t)n * T);
}

size_t spo_spm_vision_arena(const spo_spm_config *c, int n)
{
    vision_acts a;
    carve(c, n, NULL, &a);
    return a.total;
}

void spo_spm_vision_io(spo_spm *m, int n, float **pixels, float **t, float **out)
{
    vision_acts a;
    carve(&m->cfg, n, m->varena, &a);
    *pixels = a.px, *t = a.t, *out = a.out;
}

int spo_spm_vision_fwd(spo_spm *m, float *embeds, const float *pixels, const float *t, int n)
{
    const spo_spm_config *c = &m->cfg;
    spo_dev *d = m->dev;
    int W = c->width, S = c->image_size, g = S / c->patch, N = g * g, T = N + 1;
    vision_acts a;
    carve(c, n, m->varena, &a);

    /* tc = mlp(sinusoid(t)); every consumer takes SiLU(tc): keep that */
    SPO_TRY(spo_timestep_embed(d, a.temb, t, n, c->freq, 1, 0.0f, 10000.0f));
    SPO_TRY(spo_linear_fwd(d, a.h1, a.temb, m->t0w, m->t0b, n, c->freq, W));
    SPO_TRY(spo_act_fwd(d, SPO_ACT_SILU, a.h1, a.h1, (size_t)n * W));
    SPO_TRY(spo_linear_fwd(d, a.tc, a.h1, m->t2w, m->t2b, n, W, W));
    SPO_TRY(spo_act_fwd(d, SPO_ACT_SILU, a.tc, a.tc, (size_t)n * W));

    /* embeddings: x[i] = [class; patches^T] + positions  (n,T,W) */
    spo_conv cv = {.n = n, .cin = 3, .h = S, .w = S, .cout = W, .k = c->patch, .stride = c->patch, .pad = 0};
    SPO_TRY(spo_conv2d_fwd(d, a.patches, pixels, m->patchw, NULL, &cv));
    for (int i = 0; i < n; i++) {
        float *xi = a.y + (size_t)i * T * W;
        SPO_TRY(spo_dev_copy(d, xi, m->cls, (size_t)W));
        SPO_TRY(spo_transpose_fwd(d, xi + W, a.patches + (size_t)i * W * N, 1, W, N));
        SPO_TRY(spo_add_fwd(d, xi, xi, m->pos, (size_t)T * W));
    }
    SPO_TRY(spo_layernorm_fwd(d, a.x, a.mean, a.rstd, a.y, m->prew, m->preb, n * T, W, c->eps));

    for (int l = 0; l < c->layers; l++) {
        SPO_TRY(spo_linear_fwd(d, a.mod, a.tc, m->layer[l].modw, m->layer[l].modb, n, W, 6 * W));
        SPO_TRY(spo_clip_layer_fwd(d, &m->layer[l].L, a.x, a.scratch, n, T, 0, a.mod));
    }

    /* pooled = post_layernorm(x[:, 0]) * (1 + scale) + shift -> projection */
    for (int i = 0; i < n; i++) SPO_TRY(spo_dev_copy(d, a.y + (size_t)i * W, a.x + (size_t)i * T * W, (size_t)W));
    SPO_TRY(spo_layernorm_fwd(d, a.cls, a.mean, a.rstd, a.y, m->postw, m->postb, n, W, c->eps));
    SPO_TRY(spo_linear_fwd(d, a.fm, a.tc, m->fmodw, m->fmodb, n, W, 2 * W));
    SPO_TRY(spo_modulate_fwd(d, a.cls, a.cls, a.fm, a.fm + W, 2 * W, n, 1, W));
    return spo_linear_fwd(d, embeds, a.cls, m->vproj, NULL, n, W, c->proj);
}
