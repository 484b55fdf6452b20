/* unet.h — UNet2DConditionModel (the Stable Diffusion 1.x and SDXL
 * families), forward and backward to the input sample and the context,
 * equal to diffusers 0.26.1.
 *
 * The model is loaded from a diffusers `unet/` directory (config.json and
 * diffusion_pytorch_model.safetensors; fp16/bf16 files are converted on
 * load) or created with random weights from a config. Every tensor carries
 * its exact diffusers name (lib/nn/unet_params.c).
 *
 * Shapes: sample x and output (n, in/out_channels, h, w) NCHW; timesteps t
 * (n) as float; context (n, L, cross_attention_dim); SDXL's added
 * conditioning (addition_embed_type "text_time"): pooled text embeddings
 * (n, add_text_dim) and time ids (n, add_ntime) as float. h and w must be
 * multiples of 2^(number of blocks - 1). All pointers are device memory of
 * the model's spo_dev. Activations live in two arenas sized by a planning
 * pass per input shape (allocated once, grown only when a shape needs more).
 *
 * Backward follows the ops.h convention: it ACCUMULATES (+=) into dx and
 * dctx; zero them first for a plain gradient. Parameter gradients are not
 * computed (the UNet is frozen; LoRA hooks into the attention linears:
 * spo_unet_lora_attach below). */
#ifndef SPO_UNET_H
#define SPO_UNET_H

#include <stddef.h>

#include "ops/ops.h"
#include "nn/params.h"

#define SPO_UNET_MAXB 8 /* most blocks (len(block_out_channels)) */
#define SPO_UNET_MAXCH 65536 /* most channels of any block, input, output or context */
/* SDXL's time ids per sample: original size (h, w), crop top-left (y, x),
 * target size (h, w), as StableDiffusionXLPipeline._get_add_time_ids makes
 * them. (The refiner's 5, with an aesthetic score, is not supported.) */
#define SPO_UNET_TIME_IDS 6

typedef struct {
    int in_channels, out_channels, sample_size;
    int nblocks;                       /* len(block_out_channels) */
    int block_out[SPO_UNET_MAXB];      /* block_out_channels */
    int down_attn[SPO_UNET_MAXB];      /* down block i: 1 CrossAttnDownBlock2D, 0 DownBlock2D */
    int up_attn[SPO_UNET_MAXB];        /* up block i (0 is the deepest): 1 CrossAttnUpBlock2D, 0 UpBlock2D */
    int layers[SPO_UNET_MAXB];         /* layers_per_block of down block i (up block uses reversed + 1) */
    int heads[SPO_UNET_MAXB];          /* heads of down block i (diffusers' attention_head_dim: a head COUNT) */
    int tlayers[SPO_UNET_MAXB];        /* transformer_layers_per_block of down block i */
    int cross_dim;                     /* cross_attention_dim */
    int groups;                        /* norm_num_groups */
    float eps;                         /* norm_eps (resnets, output norm) */
    int flip_sin_to_cos;
    float freq_shift;
    int linear_proj;                   /* use_linear_projection: proj_in/out are Linear, not 1x1 conv */
    /* addition_embed_type "text_time" (SDXL): each time id through the
     * sinusoid of add_time_dim (flip_sin_to_cos and freq_shift as above),
     * flattened and concatenated AFTER the pooled text embedding, through
     * add_embedding (linear_1, SiLU, linear_2) and added to the time
     * embedding. add_text_dim = projection_class_embeddings_input_dim -
     * add_ntime * add_time_dim. add_time_dim 0: no added conditioning. */
    int add_time_dim;                  /* addition_time_embed_dim */
    int add_ntime;                     /* time ids per sample (SPO_UNET_TIME_IDS) */
    int add_text_dim;                  /* width of the pooled text embedding */
} spo_unet_config;

typedef struct spo_unet spo_unet;

/* Read a diffusers unet config (parsed JSON object, e.g. from spo_md_config,
 * JSON text, or a config.json path); absent keys take the diffusers
 * defaults; an unsupported value is SPO_EINVAL naming the file and key. */
struct cJSON;
int spo_unet_config_from_json(spo_unet_config *c, const struct cJSON *cfg);
int spo_unet_config_parse(spo_unet_config *c, const char *json_text);
int spo_unet_config_load(spo_unet_config *c, const char *config_json_path);
/* Check a config filled by hand; SPO_EINVAL naming the field. */
int spo_unet_config_check(const spo_unet_config *c);

/* Check that a safetensors file holds exactly the tensors (names, shapes)
 * this config declares, reading the header only and allocating no weights:
 * SPO_EINVAL naming the file and the tensor otherwise. */
int spo_unet_check_weights(const spo_unet_config *cfg, const char *weights_path);
/* Load config + weights from a diffusers unet directory (the config is
 * checked against the weights' shapes before anything is allocated). */
int spo_unet_load(spo_unet **u, const char *unet_dir, spo_dev *dev);
/* Create with zeroed weights (fill with spo_params_randn(spo_unet_params(u), ...)).
 * dev NULL: only the parameter table (names, shapes), nothing allocated. */
int spo_unet_create(spo_unet **u, const spo_unet_config *cfg, spo_dev *dev);
void spo_unet_free(spo_unet *u);
spo_params *spo_unet_params(spo_unet *u);
const spo_unet_config *spo_unet_cfg(const spo_unet *u);
/* The sample's height and width must be multiples of this (2^(levels-1)). */
int spo_unet_multiple(const spo_unet *u);

/* out (n,out_channels,h,w) = unet(x (n,in_channels,h,w), t (n), ctx (n,ctx_len,cross_dim)).
 * train: keep the activations (and copies of x and ctx) for spo_unet_backward.
 * x, t, ctx may be reused by the caller after the call. A model with added
 * conditioning (cfg.add_time_dim > 0) needs spo_unet_forward_added. */
int spo_unet_forward(spo_unet *u, float *out, const float *x, const float *t, const float *ctx, int n, int h, int w,
                     int ctx_len, int train);
/* The same with SDXL's added conditioning (diffusers' added_cond_kwargs):
 * text_embeds (n, add_text_dim) and time_ids (n, add_ntime), both NULL for
 * a model without it (then equal to spo_unet_forward). SPO_EINVAL when the
 * model needs them and they are NULL, or the other way round. They may be
 * reused after the call (the backward does not need them). */
int spo_unet_forward_added(spo_unet *u, float *out, const float *x, const float *t, const float *ctx,
                           const float *text_embeds, const float *time_ids, int n, int h, int w, int ctx_len,
                           int train);
/* After a train forward: dx (n,in,h,w) += d out/d x . dout; dctx (n,L,cross_dim)
 * likewise (dctx may be NULL). dout (n,out,h,w). */
int spo_unet_backward(spo_unet *u, float *dx, float *dctx, const float *dout);

/* on: a train forward does not keep the self-attention probabilities
 * (n, heads, hw, hw) — most of the train arena at 64x64 — and the backward
 * recomputes them (one more attention forward per layer). Default off. */
void spo_unet_set_attn_recompute(spo_unet *u, int on);
/* An unmerged LoRA on one linear layer (training; sampling merges it):
 * y = x W^T + b + scale (x A^T) B^T. a (r,in) and b (out,r) are device
 * memory the caller owns; a backward after a train forward with the LoRA
 * enabled ACCUMULATES dA into da and dB into db (NULL: not computed). The
 * frozen weights get no gradient. xa is the layer's private cache. */
typedef struct {
    const float *a, *b;
    float *da, *db;
    int r;
    float scale;
    float *xa; /* private: scale * x A^T of the last train forward (m,r) */
} spo_unet_lora;
/* Attach slot to the linear layer `module` (diffusers name without
 * ".weight", any linear of a transformer block); slot NULL detaches. The
 * slot must outlive the attachment. SPO_EINVAL when there is no such layer
 * or the shapes differ. */
int spo_unet_lora_attach(spo_unet *u, const char *module, spo_unet_lora *slot, int in, int out);
/* Use the attached LoRAs in the following forward passes (on, the default)
 * or run the base model (off: a frozen reference pass). */
void spo_unet_lora_enable(spo_unet *u, int on);

/* Bytes the arenas would need for this shape (train: with the backward
 * temporaries), by a dry run; allocates nothing (works on a table-only
 * model from spo_unet_create(..., NULL)). */
int spo_unet_plan_bytes(spo_unet *u, int n, int h, int w, int ctx_len, int train, size_t *fwd, size_t *bwd);
/* Bytes the activation arenas hold now (forward, backward). */
void spo_unet_arena_bytes(const spo_unet *u, size_t *fwd, size_t *bwd);

#endif
