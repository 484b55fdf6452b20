/* clip_layer.h — one pre-LN CLIP transformer encoder layer (transformers
 * CLIPEncoderLayer), shared by the CLIP text encoder and the towers of
 * the step-aware preference model (lib/nn/spm.c):
 *
 *   x = x + out_proj(attn(q_proj(a), k_proj(a), v_proj(a)))   a = layer_norm1(x)
 *   x = x + fc2(act(fc1(m)))                                  m = layer_norm2(x)
 *
 * on x (b, t, dim); attention has `heads` heads of dim/heads, scale
 * 1/sqrt(dim/heads), optionally causal; act is quick_gelu (CLIP ViT-L text)
 * or exact-erf gelu (ViT-H). Every linear has a bias.
 *
 * adaLN modulation (the step-aware preference model of SPO, official
 * TimeConditionedCLIPEncoderLayer): with `mod` (b, 6*dim) per sample, rows
 * [shift_msa | scale_msa | gate_msa | shift_mlp | scale_mlp | gate_mlp]
 * (the chunk(6) order of the official code), the layer becomes
 *
 *   x = x + gate_msa * attn(layer_norm1(x) * (1 + scale_msa) + shift_msa)
 *   x = x + gate_mlp * mlp(layer_norm2(x) * (1 + scale_mlp) + shift_mlp)
 *
 * with each vector broadcast over the tokens of its sample. mod NULL is the
 * plain layer.
 */
#ifndef SPO_CLIP_LAYER_H
#define SPO_CLIP_LAYER_H

#include "ops/ops.h"
#include "nn/params.h"

struct cJSON;

/* The encoder keys the configs of both CLIP towers (text, vision) have:
 * hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
 * hidden_act (quick_gelu or gelu) and layer_norm_eps. */
typedef struct {
    int dim, inter, layers, heads;
    spo_act act;
    float eps;
} spo_clip_tower;

/* Read them from the config object j; an absent key keeps t's value (the
 * caller sets the tower's transformers 4.40.1 defaults). Errors name j
 * (spo_cfg_name) and the key. */
int spo_clip_tower_read(spo_clip_tower *t, const struct cJSON *j);

typedef struct {
    int dim, heads, inter;
    spo_act act;       /* SPO_ACT_QUICK_GELU or SPO_ACT_GELU */
    float eps;         /* layer_norm_eps */
    float *ln1w, *ln1b, *ln2w, *ln2b;                 /* (dim) */
    float *qw, *qb, *kw, *kb, *vw, *vb, *ow, *ob;     /* (dim,dim), (dim) */
    float *f1w, *f1b, *f2w, *f2b;                     /* (inter,dim), (inter); (dim,inter), (dim) */
} spo_clip_layer;

/* Declare the layer's tensors under prefix (e.g. "text_model.encoder.layers.3.")
 * with the transformers names layer_norm1, self_attn.{q,k,v,out}_proj,
 * layer_norm2, mlp.fc1, mlp.fc2 (.weight and .bias each). dim, heads,
 * inter, act and eps must be set in L before. */
int spo_clip_layer_declare(spo_clip_layer *L, spo_params *ps, const char *prefix);

/* Scratch floats spo_clip_layer_fwd needs for n = b*t tokens. */
size_t spo_clip_layer_scratch(const spo_clip_layer *L, size_t n);

/* x (b,t,dim) -> x in place; scratch of spo_clip_layer_scratch(L, b*t)
 * floats (device memory); mod (b, 6*dim) device memory or NULL (above). */
int spo_clip_layer_fwd(spo_dev *d, const spo_clip_layer *L, float *x, float *scratch, int b, int t, int causal,
                       const float *mod);

#endif
