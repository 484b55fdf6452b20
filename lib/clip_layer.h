/* clip_layer.h — one pre-LN CLIP transformer encoder layer (transformers
 * CLIPEncoderLayer), shared by the CLIP text encoder and, later, the
 * PickScore / step-aware vision and text towers:
 *
 *   x = x + out_proj(attn(q_proj(a), k_proj(a), v_proj(a)))   a = layer_norm1(x)
 *   x = x + fc2(act(fc1(m)))                                  m = layer_norm2(x)
 *
 * on x (b, t, dim); attention has `heads` heads of dim/heads, scale
 * 1/sqrt(dim/heads), optionally causal; act is quick_gelu (CLIP ViT-L text)
 * or exact-erf gelu (ViT-H). Every linear has a bias.
 *
 * adaLN hook (the step-aware preference model, not built yet): a modulated
 * layer will take per-sample (b, 6*dim) = shift/scale/gate for the attention
 * branch and for the MLP branch, apply a*(1+scale)+shift right after each
 * LayerNorm and multiply each branch's output by its gate before the residual
 * add. spo_clip_layer_fwd is written as two branches with those two points
 * marked, and takes `mod` already: it must be NULL until the ops exist. */
#ifndef SPO_CLIP_LAYER_H
#define SPO_CLIP_LAYER_H

#include "ops.h"
#include "params.h"

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
 * floats (device memory); mod must be NULL (see the adaLN hook above). */
int spo_clip_layer_fwd(spo_dev *d, const spo_clip_layer *L, float *x, float *scratch, int b, int t, int causal,
                       const float *mod);

#endif
