/* spm.h — the step-aware preference model (SPM) of SPO, forward only.
 *
 * A CLIP (PickScore_v1: ViT-H/14 vision 1280 x 32 layers, text 1024 x 24,
 * projection 1024, exact-erf GELU) whose vision tower is conditioned on the
 * diffusion timestep, equal to the official code (github RockeyCoss/SPO,
 * spo/preference_models/models/time_conditioned_clip.py, transformers
 * 4.40.1):
 *
 *   tc = t_embedder.mlp(sinusoid(t))     [cos, sin] of t exp(-ln(1e4) i/128),
 *                                        i < 128; Linear(256,W) SiLU Linear(W,W)
 *   x  = pre_layrnorm(embeddings(pixels))  class token + conv patches + positions
 *   per layer: [shift,scale,gate]_msa, [shift,scale,gate]_mlp =
 *              adaLN_modulation.1(SiLU(tc)) (chunk(6), in this order)
 *     x = x + gate_msa * attn(ln1(x) * (1 + scale_msa) + shift_msa)
 *     x = x + gate_mlp * mlp(ln2(x) * (1 + scale_mlp) + shift_mlp)
 *   p  = post_layernorm(x[:, 0]);  shift, scale = adaLN_modulation.1(SiLU(tc))
 *   image_embeds = visual_projection(p * (1 + scale) + shift)        (no bias)
 *   text_embeds  = text_projection(CLIP text pooled output)           (no bias)
 *   score = exp(logit_scale) * cos(image_embeds, text_embeds)
 *
 * Images go in as the VAE gives them, (n,3,h,w) in [-1, 1], and are
 * preprocessed as the official get_preference_score does
 * (spo_clip_preprocess of lib/nn/image.h, to cfg.image_size).
 *
 * Weights. The official checkpoint (sd-v1-5_step-aware_preference_model.bin)
 * is a torch.save of the whole StepAwarePreferenceModel: every key starts
 * with "model." and the CLIP weights are in it too (they override
 * PickScore_v1's). Parameter names, below "model.":
 *   text_model.*, vision_model.embeddings.{class_embedding,
 *   patch_embedding.weight, position_embedding.weight},
 *   vision_model.pre_layrnorm.*, vision_model.encoder.layers.N.{...,
 *   adaLN_modulation.1.weight [6W,W], adaLN_modulation.1.bias [6W]},
 *   vision_model.post_layernorm.*, vision_model.adaLN_modulation.1.{weight
 *   [2W,W], bias [2W]}, visual_projection.weight, text_projection.weight,
 *   logit_scale (0-d), t_embedder.mlp.{0,2}.{weight,bias} ([W,256], [W,W]).
 * position_ids buffers are ignored; anything else unexpected or missing is
 * an error naming the tensor. */
#ifndef SPO_SPM_H
#define SPO_SPM_H

#include <stdint.h>

#include "nn/clip_text.h"
#include "ops/ops.h"
#include "nn/params.h"

typedef struct {
    spo_clip_text_config text; /* text_config (hidden_act gelu for PickScore) */
    int width;                 /* vision hidden_size (1280) */
    int inter;                 /* vision intermediate_size (5120) */
    int layers;                /* vision num_hidden_layers (32) */
    int heads;                 /* vision num_attention_heads (16) */
    int image_size;            /* vision image_size (224): the preprocessing size too */
    int patch;                 /* vision patch_size (14) */
    spo_act act;               /* vision hidden_act */
    float eps;                 /* vision layer_norm_eps */
    int proj;                  /* projection_dim (1024) */
    int freq;                  /* timestep sinusoid size (256, fixed by the official code) */
} spo_spm_config;

typedef struct spo_spm spo_spm;

/* Load clip_dir/config.json (a CLIPModel config: text_config, vision_config,
 * projection_dim; transformers 4.40.1 defaults for absent keys) and the
 * weights from spm_bin: a PyTorch .bin (zip; read without executing any
 * pickle code) or a .safetensors file, keys with or without the "model."
 * prefix. spm_bin NULL: clip_dir/model.safetensors, which must then hold
 * the SPM tensors too (e.g. the trainer's save_pretrained of the
 * time-conditioned model). */
int spo_spm_load(spo_spm **m, const char *clip_dir, const char *spm_bin, spo_dev *dev);
/* A model with zeroed weights for cfg; fill with spo_spm_randn (spo-mkmodel,
 * timing). */
int spo_spm_create(spo_spm **m, const spo_spm_config *cfg, spo_dev *dev);
int spo_spm_randn(spo_spm *m, uint64_t seed, float std);
/* Parse a CLIPModel config.json object into cfg (checked). */
int spo_spm_config_parse(spo_spm_config *cfg, const struct cJSON *j);
const spo_spm_config *spo_spm_cfg(const spo_spm *m);
float spo_spm_logit_scale(const spo_spm *m); /* the raw parameter; scores use exp() of it */
void spo_spm_free(spo_spm *m);
/* The parameter tables: the text tower's ("text_model.*") and the rest. */
spo_params *spo_spm_text_params(spo_spm *m);
spo_params *spo_spm_other_params(spo_spm *m);

/* ids (n, L) host int32 with L = cfg.text.max_pos (77; padded as the
 * tokenizer pads, the pooled token is the first eos) -> text_embeds
 * (n, proj) host, not normalised. */
int spo_spm_text(spo_spm *m, const int32_t *ids, int n, float *text_embeds);

/* img (n,3,h,w) host, in [-1, 1]; timesteps (n) host, one per image (0..999,
 * fractional allowed) -> image_embeds (n, proj) host, not normalised.
 * Images are preprocessed with spo_clip_preprocess to cfg.image_size and run
 * through the tower a few at a time. */
int spo_spm_image(spo_spm *m, const float *img, int n, int h, int w, const float *timesteps, float *image_embeds);
/* The same from preprocessed pixels (n,3,S,S) host, S = cfg.image_size. */
int spo_spm_image_pixels(spo_spm *m, const float *pixels, int n, const float *timesteps, float *image_embeds);

/* scores[i] = exp(logit_scale) * cos(image_embeds[i], text_embeds[i]),
 * rows of (n, proj) host (a zero vector gives 0). */
int spo_spm_score(spo_spm *m, const float *image_embeds, const float *text_embeds, int n, float *scores);

#endif
