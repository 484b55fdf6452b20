/* vae.h — the AutoencoderKL decoder of a diffusers `vae/` directory
 * (forward only), equal to diffusers 0.26.1's AutoencoderKL.decode:
 *
 *   z = latents / scaling_factor                     (what SD pipelines do)
 *   z = post_quant_conv(z)                           1x1, latent -> latent
 *   h = decoder.conv_in(z)                           3x3, latent -> ch[-1]
 *   h = mid_block(h)         resnet, attention (one head of width ch[-1]), resnet
 *   for i, c in enumerate(reversed(ch)):             up_blocks.i
 *       layers_per_block+1 resnets (-> c), then nearest 2x + 3x3 conv unless last
 *   img = conv_out(silu(conv_norm_out(h)))           ch[0] -> out_channels
 *
 * GroupNorm eps 1e-6 everywhere; resnets have no time embedding and a 1x1
 * conv_shortcut when channels change. The encoder's tensors in the file are
 * ignored. Images come out as the decoder gives them (about [-1, 1]); SD
 * pipelines then map (x/2 + 0.5) clamped to [0, 1]: decode does NOT clamp.
 * The batch is decoded one image at a time so activations stay bounded
 * (SD v1.5 at 512x512 needs about 0.8 GB of activations on top of the
 * convolution's own workspace). */
#ifndef SPO_VAE_H
#define SPO_VAE_H

#include "ops/ops.h"
#include "nn/params.h"

#define SPO_VAE_MAX_BLOCKS 8

typedef struct {
    int nblocks;                         /* len(block_out_channels) */
    int ch[SPO_VAE_MAX_BLOCKS];          /* block_out_channels */
    int layers_per_block;                /* the decoder has layers_per_block + 1 resnets per block */
    int latent_channels;
    int out_channels;                    /* 3 for images */
    int groups;                          /* norm_num_groups */
    int mid_attn;                        /* mid_block_add_attention */
    float scaling_factor;
} spo_vae_config;

typedef struct spo_vae spo_vae;

/* Read vae_dir/config.json and the weights (diffusion_pytorch_model
 * .safetensors, fp32/fp16/bf16). Unsupported config values are SPO_EINVAL
 * naming the key; a missing, unexpected or wrong-shaped tensor is SPO_EINVAL
 * naming it. Both mid-block attention namings load (to_q/to_k/to_v/to_out.0
 * and legacy query/key/value/proj_attn, as [C,C] or [C,C,1,1]). */
int spo_vae_load(spo_vae **v, const char *vae_dir, spo_dev *dev);
/* Only vae_dir/config.json, checked as spo_vae_load checks it (to know the
 * image size of a latent without loading the weights). */
int spo_vae_config_load(spo_vae_config *c, const char *vae_dir);
/* A decoder with zeroed weights for cfg (fill with spo_vae_randn). */
int spo_vae_create(spo_vae **v, const spo_vae_config *cfg, spo_dev *dev);
int spo_vae_randn(spo_vae *v, uint64_t seed, float std);
const spo_vae_config *spo_vae_cfg(const spo_vae *v);
/* Upsampling factor 2^(nblocks-1) (8 for SD). */
int spo_vae_factor(const spo_vae *v);

/* latents (batch, latent_channels, h, w) -> img (batch, out_channels, h*f, w*f),
 * f = spo_vae_factor. HOST memory for both (latents as the pipeline holds
 * them: decode divides by scaling_factor). */
int spo_vae_decode(spo_vae *v, float *img, const float *latents, int batch, int h, int w);
/* The same with both arrays in the memory of the model's device. */
int spo_vae_decode_dev(spo_vae *v, float *img, const float *latents, int batch, int h, int w);
void spo_vae_free(spo_vae *v);
/* The decoder's parameter table (names, shapes; spo-mkmodel writes it). */
spo_params *spo_vae_params(spo_vae *v);
/* Parse and check a vae/config.json object. */
struct cJSON;
int spo_vae_config_from_json(spo_vae_config *c, const struct cJSON *j);


#endif
