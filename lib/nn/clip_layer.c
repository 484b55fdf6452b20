/* clip_layer.c — one pre-LN CLIP encoder layer, forward (see clip_layer.h). */
#include "nn/clip_layer.h"

#include <string.h>

#include "io/jsoncfg.h"
#include "ops/ops_extra.h"

static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; }

int spo_clip_tower_read(spo_clip_tower *t, const cJSON *j)
{
    const char *act;
    const spo_cfg_intkey ints[] = {
        {"hidden_size", t->dim, &t->dim},
        {"intermediate_size", t->inter, &t->inter},
        {"num_hidden_layers", t->layers, &t->layers},
        {"num_attention_heads", t->heads, &t->heads},
    };
    SPO_TRY(spo_cfg_ints(j, ints, (int)(sizeof ints / sizeof *ints)));
    SPO_TRY(spo_cfg_float(j, "layer_norm_eps", t->eps, &t->eps));
    SPO_TRY(spo_cfg_str(j, "hidden_act", t->act == SPO_ACT_GELU ? "gelu" : "quick_gelu", &act));
    if (!strcmp(act, "quick_gelu"))
        t->act = SPO_ACT_QUICK_GELU;
    else if (!strcmp(act, "gelu"))
        t->act = SPO_ACT_GELU;
    else
        return spo_err(SPO_EINVAL, "%s: 'hidden_act' %s is unsupported (quick_gelu or gelu)", spo_cfg_name(j), act);
    return SPO_OK;
}

int spo_clip_layer_declare(spo_clip_layer *L, spo_params *ps, const char *pre)
{
    int64_t c = L->dim, m = L->inter;
    if (L->dim < 1 || L->heads < 1 || L->dim % L->heads || L->inter < 1)
        return spo_err(SPO_EINVAL, "clip layer: hidden size %d is not a multiple of %d heads", L->dim, L->heads);
    struct {
        float **slot;
        const char *name;
        int64_t d0, d1;
    } t[] = {
        {&L->ln1w, "layer_norm1.weight", c, 0},     {&L->ln1b, "layer_norm1.bias", c, 0},
        {&L->qw, "self_attn.q_proj.weight", c, c},  {&L->qb, "self_attn.q_proj.bias", c, 0},
        {&L->kw, "self_attn.k_proj.weight", c, c},  {&L->kb, "self_attn.k_proj.bias", c, 0},
        {&L->vw, "self_attn.v_proj.weight", c, c},  {&L->vb, "self_attn.v_proj.bias", c, 0},
        {&L->ow, "self_attn.out_proj.weight", c, c}, {&L->ob, "self_attn.out_proj.bias", c, 0},
        {&L->ln2w, "layer_norm2.weight", c, 0},     {&L->ln2b, "layer_norm2.bias", c, 0},
        {&L->f1w, "mlp.fc1.weight", m, c},          {&L->f1b, "mlp.fc1.bias", m, 0},
        {&L->f2w, "mlp.fc2.weight", c, m},          {&L->f2b, "mlp.fc2.bias", c, 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        SPO_TRY(spo_params_addf(ps, t[i].slot, t[i].d0, t[i].d1, 0, 0, "%s%s", pre, t[i].name));
    return SPO_OK;
}

/* a, q, k, v, o: (n, dim) each; h: (n, inter); mean, rstd: (n) */
size_t spo_clip_layer_scratch(const spo_clip_layer *L, size_t n)
{
    return 5 * align16(n * L->dim) + align16(n * L->inter) + 2 * align16(n);
}

int spo_clip_layer_fwd(spo_dev *d, const spo_clip_layer *L, float *x, float *scratch, int b, int t, int causal,
                       const float *mod)
{
    int c = L->dim, n = b * t;
    size_t nc = align16((size_t)n * c);
    float *a = scratch, *q = a + nc, *k = q + nc, *v = k + nc, *o = v + nc, *h = o + nc;
    float *mean = h + align16((size_t)n * L->inter), *rstd = mean + align16((size_t)n);

    /* attention branch: x += out_proj(attn(ln1(x))) */
    SPO_TRY(spo_layernorm_fwd(d, a, mean, rstd, x, L->ln1w, L->ln1b, n, c, L->eps));
    if (mod) SPO_TRY(spo_modulate_fwd(d, a, a, mod, mod + c, 6 * c, b, t, c)); /* a*(1+scale_msa)+shift_msa */
    SPO_TRY(spo_linear_fwd(d, q, a, L->qw, L->qb, n, c, c));
    SPO_TRY(spo_linear_fwd(d, k, a, L->kw, L->kb, n, c, c));
    SPO_TRY(spo_linear_fwd(d, v, a, L->vw, L->vb, n, c, c));
    SPO_TRY(spo_attention_fwd(d, o, NULL, q, k, v, b, t, t, L->heads, c / L->heads, causal));
    SPO_TRY(spo_linear_fwd(d, a, o, L->ow, L->ob, n, c, c));
    if (mod)
        SPO_TRY(spo_gate_add_fwd(d, x, a, mod + 2 * c, 6 * c, b, t, c)); /* x += gate_msa * a */
    else
        SPO_TRY(spo_add_fwd(d, x, x, a, (size_t)n * c));

    /* MLP branch: x += fc2(act(fc1(ln2(x)))) */
    SPO_TRY(spo_layernorm_fwd(d, a, mean, rstd, x, L->ln2w, L->ln2b, n, c, L->eps));
    if (mod) SPO_TRY(spo_modulate_fwd(d, a, a, mod + 3 * c, mod + 4 * c, 6 * c, b, t, c));
    SPO_TRY(spo_linear_fwd(d, h, a, L->f1w, L->f1b, n, c, L->inter));
    SPO_TRY(spo_act_fwd(d, L->act, h, h, (size_t)n * L->inter));
    SPO_TRY(spo_linear_fwd(d, a, h, L->f2w, L->f2b, n, L->inter, c));
    if (mod) return spo_gate_add_fwd(d, x, a, mod + 5 * c, 6 * c, b, t, c); /* x += gate_mlp * a */
    return spo_add_fwd(d, x, x, a, (size_t)n * c);
}
