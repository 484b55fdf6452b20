/* clip_text.h — the CLIP text encoder of a diffusers `text_encoder/`
 * directory (transformers CLIPTextModel, forward only), equal to
 * transformers 4.40.1:
 *
 *   x = token_embedding[ids] + position_embedding[0..len)     (b, len, C)
 *   x = layers(x)             pre-LN, causal self-attention (lib/nn/clip_layer.c)
 *   hidden = final_layer_norm(x)                             last_hidden_state
 *   pooled[i] = hidden[i, p_i]      p_i = argmax(ids[i]) when eos_token_id == 2
 *                                   (old configs, SD v1.5), else the first
 *                                   position where ids[i] == eos_token_id (0 if none)
 *
 * SD uses `hidden`. No attention mask (SD pipelines pass none).
 *
 * A CLIPTextModelWithProjection (SDXL's text_encoder_2, OpenCLIP bigG) adds
 *   text_embeds = pooled @ text_projection.weight^T     (b, projection_dim), no bias
 * and SDXL takes hidden_states[-2] (the input of the last layer, no final
 * LayerNorm) of both of its encoders: spo_clip_text_forward_hs. */
#ifndef SPO_CLIP_TEXT_H
#define SPO_CLIP_TEXT_H

#include <stdint.h>

#include "ops/ops.h"
#include "nn/params.h"

typedef struct {
    int vocab;          /* vocab_size */
    int dim;            /* hidden_size */
    int inter;          /* intermediate_size */
    int layers;         /* num_hidden_layers */
    int heads;          /* num_attention_heads */
    int max_pos;        /* max_position_embeddings */
    spo_act act;        /* hidden_act: quick_gelu or gelu (exact erf) */
    float eps;          /* layer_norm_eps */
    int eos;            /* eos_token_id */
    int proj_dim;       /* projection_dim */
    int with_proj;      /* 1: CLIPTextModelWithProjection (text_projection.weight
                           (proj_dim, dim), no bias), 0: CLIPTextModel */
} spo_clip_text_config;

typedef struct spo_clip_text spo_clip_text;
struct cJSON;

/* A CLIPTextConfig JSON object (a text_encoder/config.json, or the
 * text_config of a CLIPModel config.json) with transformers 4.40.1 defaults
 * for absent keys, checked; errors name the file and the key. with_proj is
 * 1 when "architectures" names CLIPTextModelWithProjection. */
int spo_clip_text_config_parse(spo_clip_text_config *c, const struct cJSON *j);

/* Read dir/config.json and dir/model.safetensors (fp32/fp16/bf16). Unknown
 * config values are SPO_EINVAL naming the key; a missing, unexpected or
 * wrong-shaped tensor is SPO_EINVAL naming it (position_ids is ignored). */
int spo_clip_text_load(spo_clip_text **m, const char *dir, spo_dev *dev);
/* The same as the class cls ("CLIPTextModel" or "CLIPTextModelWithProjection",
 * what a model_index.json names; NULL: config.json's "architectures"
 * decides); another class is SPO_EINVAL naming dir. */
int spo_clip_text_load_as(spo_clip_text **m, const char *dir, const char *cls, spo_dev *dev);
/* A model with zeroed weights for cfg (fill with spo_clip_text_randn). */
int spo_clip_text_create(spo_clip_text **m, const spo_clip_text_config *cfg, spo_dev *dev);
/* dev NULL: the parameter table only (names, shapes), for checking a file
 * before spo_clip_text_alloc puts it on a device. */
int spo_clip_text_alloc(spo_clip_text *m, spo_dev *dev);
int spo_clip_text_randn(spo_clip_text *m, uint64_t seed, float std);
const spo_clip_text_config *spo_clip_text_cfg(const spo_clip_text *m);
/* The parameter table (names "text_model.*"), for a caller that loads the
 * tower from a file of its own (the step-aware preference model's .bin). */
spo_params *spo_clip_text_params(spo_clip_text *m);

/* ids (batch, len) host int32, len <= max_position_embeddings ->
 * hidden (batch, len, C) and pooled (batch, C), HOST memory; either may be NULL. */
int spo_clip_text_forward(spo_clip_text *m, float *hidden, float *pooled, const int32_t *ids, int batch, int len);
/* The same with hidden and pooled in the memory of the model's device (ids stay on the host). */
int spo_clip_text_forward_dev(spo_clip_text *m, float *hidden, float *pooled, const int32_t *ids, int batch,
                              int len);
/* transformers' hidden_states[k] (k = 0: the embeddings; k = layers: the
 * last layer's output, before final_layer_norm; SDXL takes layers - 1, that
 * is hidden_states[-2]) -> hs (batch, len, C), and the pooled output ->
 * pooled: text_embeds (batch, proj_dim) for a model with a projection,
 * else pooler_output (batch, C). HOST memory; either may be NULL (without
 * pooled the layers from k on are not run). */
int spo_clip_text_forward_hs(spo_clip_text *m, int k, float *hs, float *pooled, const int32_t *ids, int batch,
                             int len);
void spo_clip_text_free(spo_clip_text *m);

#endif
