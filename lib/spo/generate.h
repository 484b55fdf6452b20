/* generate.h — text to image with a base model and an optional LoRA, equal
 * to diffusers 0.26.1's StableDiffusionPipeline with a DDIMScheduler
 * (spo-generate's work):
 *
 *   cond   = text_encoder(tokenizer(prompt))             (P, L, D)
 *   uncond = text_encoder(tokenizer(negative or ""))     (L, D)
 *   x      = x_T                                         (n, C, h, w)
 *   for t in timesteps (steps, "leading" spacing as the scheduler config):
 *       e_u, e_c = unet([x, x], t, [uncond, cond])
 *       eps = e_u + g (e_c - e_u)          (g <= 1: eps = unet(x, t, cond))
 *       x   = DDIM step (eta) of x with eps; + sigma z when eta > 0
 *   img = vae.decode(x / scaling_factor)                 (n, 3, H, W)
 *   np  = (img / 2 + 0.5).clamp(0, 1), channels last     output_type="np"
 *   png = round(np * 255) (lib/io/image_io.h)               output_type="pil"
 *
 * Images are numbered prompt-major as the pipeline orders them: image k is
 * image j = k % per_prompt of prompt i = k / per_prompt.
 *
 * NOISE (lib/core/philox.h streams, keyed by seed, prompt id, step, child):
 *   x_T of image j of prompt id p    step SPO_STEP_INIT_NOISE (0xFFFFFFFE), child j
 *   eta > 0: z of inference step s   step s (0 .. steps-1), child j
 * so an image never depends on its batch, and image 0 of a prompt starts
 * from the x_T spo-init gives that prompt id with the same seed. Callers
 * may instead give x_T themselves (the pipeline's latents= argument).
 *
 * LoRA: spo_gen_lora merges a lora/1 file or a diffusers-format
 * safetensors file (lib/nn/lora_load.h) into the UNet's weights. */
#ifndef SPO_GENERATE_H
#define SPO_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "nn/lora.h"
#include "ops/ops.h"

typedef struct {
    int steps;        /* num_inference_steps (50) */
    float guidance;   /* guidance_scale (7.5); <= 1: no guidance, eps = e_c (as the pipeline) */
    float eta;        /* DDIM eta (0) */
    uint64_t seed;    /* noise seed (0) */
    int per_prompt;   /* num_images_per_prompt (1) */
    int h, w;         /* latent size; 0 0: the UNet's sample_size */
    int batch;        /* latents per guided UNet call, 2 UNet images each (4) */
    /* called after each denoising step of spo_gen_denoise: done/total steps */
    void (*progress)(void *ctx, long done, long total);
    void *ctx;
} spo_gen_opts;

typedef struct spo_gen spo_gen;

/* The defaults above (the pipeline's; batch is spo's own). */
void spo_gen_defaults(spo_gen_opts *o);

/* Load tokenizer, text encoder, UNet, VAE decoder and scheduler of a
 * diffusers model directory onto dev (kept by the caller). */
int spo_gen_load(spo_gen **g, const char *model_dir, spo_dev *dev);
/* The same with the VAE of vae_dir instead of model_dir/vae (NULL: that one). */
int spo_gen_load_vae(spo_gen **g, const char *model_dir, const char *vae_dir, spo_dev *dev);
void spo_gen_free(spo_gen *g);

/* The model id (lib/io/modelid.h) of the loaded model. */
const char *spo_gen_model_id(const spo_gen *g);
/* Latent channels, the VAE's pixels per latent, the default latent size
 * (unet sample_size), and the factor latent sizes must be multiples of
 * (2^(UNet blocks - 1)). */
int spo_gen_channels(const spo_gen *g);
int spo_gen_vae_factor(const spo_gen *g);
void spo_gen_sample_size(const spo_gen *g, int *h, int *w);
int spo_gen_latent_multiple(const spo_gen *g);
/* Check a latent size; SPO_EINVAL saying what is wrong. */
int spo_gen_check_latent(const spo_gen *g, int h, int w);

/* Merge a LoRA file (lora/1 or diffusers safetensors) into the UNet.
 * A lora/1 file with a model_id other than this model's is refused. The
 * LoRA read is kept (spo_gen_lora_info) for provenance. */
int spo_gen_lora(spo_gen *g, const char *path);
const spo_lora *spo_gen_lora_info(const spo_gen *g); /* NULL if none */

/* Encode n prompts (ids id[n], 0..2^32-1, key their noise) and the
 * negative prompt (NULL: the empty prompt, as the pipeline's default). */
int spo_gen_prompts(spo_gen *g, const char *const *text, const int64_t *id, int n, const char *negative);
int spo_gen_nprompts(const spo_gen *g);

/* x_T (C*h*w normals) of image j of prompt id pid. */
void spo_gen_noise(float *x, size_t n, uint64_t seed, uint32_t pid, uint32_t j);
/* x_T of images first .. first+m-1 into x (m, C, h, w). */
int spo_gen_init_latents(const spo_gen *g, const spo_gen_opts *o, int first, int m, float *x);

/* Denoise images first .. first+m-1 (m, C, h, w) in place: x_T in, x_0 out.
 * Host memory. */
int spo_gen_denoise(spo_gen *g, const spo_gen_opts *o, int first, int m, float *x);
/* Decode m latents x (m, C, h, w) into img (m, 3, H, W), H = h * vae factor,
 * as the decoder gives them (about [-1, 1]): vae.decode(x / scaling_factor). */
int spo_gen_decode(spo_gen *g, const float *x, int m, int h, int w, float *img);
/* Both: x_T in x (x_0 on return) to img. */
int spo_gen_run(spo_gen *g, const spo_gen_opts *o, int first, int m, float *x, float *img);

/* img (3, H, W) -> out (H, W, 3) = (img / 2 + 0.5).clamp(0, 1) in float32:
 * the pipeline's output_type="np". */
void spo_gen_to_unit(const float *img, int H, int W, float *out);

#endif
