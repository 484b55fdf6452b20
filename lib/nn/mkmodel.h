/* mkmodel.h — write complete diffusers-layout model directories with seeded
 * random weights (spo-mkmodel): `tiny` for tests, CI and the demo; `sd15` at
 * the real Stable Diffusion v1.5 sizes for benchmarks. The directory loads
 * in spo and in diffusers (StableDiffusionPipeline.from_pretrained).
 *
 * Layout: model_index.json, unet/, vae/ (encoder and decoder), text_encoder/,
 * tokenizer/ (a byte-level CLIP vocabulary: ids of bytes agree with the real
 * CLIP vocabulary), scheduler/ (SD v1.5's DDIM settings), and optionally
 * spm/ — a step-aware preference model: spm/clip/ (a CLIPModel directory
 * with tokenizer) and spm/spm.bin (every tensor, "model." prefix, a
 * torch.save'd state dict as the official checkpoint).
 *
 * Initialisation (seeded Philox, one stream per tensor): matrices and
 * kernels N(0, 1/fan_in), embeddings N(0, 0.02^2), norm weights 1, biases 0,
 * logit_scale ln(100). */
#ifndef SPO_MKMODEL_H
#define SPO_MKMODEL_H

#include <stdint.h>

#include "ckpt/safetensors.h"

typedef struct {
    const char *preset; /* "tiny" or "sd15" */
    uint64_t seed;
    spo_st_dtype dtype; /* F32, F16 or BF16 for the weight files */
    int spm;            /* also write spm/ */
    int force;          /* replace an existing model directory */
    void (*progress)(void *ctx, const char *what);
    void *ctx;
} spo_mkmodel_opts;

/* The unet/config.json text of a UNet layout by name, or NULL: "tiny" and
 * "sd15" (the presets'), "sdxl" (stabilityai/stable-diffusion-xl-base-1.0's;
 * no sdxl preset yet: its text encoders and VAE are still to come). */
const char *spo_mkmodel_unet_config(const char *name);

/* Write the model to dir (built under a temporary name beside it, renamed
 * when complete). dir must not exist unless force (then it must hold a
 * model_index.json, and is replaced). */
int spo_mkmodel(const char *dir, const spo_mkmodel_opts *o);

#endif
