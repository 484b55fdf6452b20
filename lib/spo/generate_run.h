/* generate_run.h — spo-generate's whole job: text to images with a base
 * model and an optional LoRA (spo/generate.h: diffusers'
 * StableDiffusionPipeline with a DDIM scheduler), the PNGs written as one
 * output (io/imgout.h: a folder, one PNG file, a tar file or a tar stream),
 * image k of prompt id p named p<p>_i<k>.png. Each PNG carries the prompt
 * and an A1111-style "parameters" text. The library prints nothing: the
 * tool gets progress and timings through callbacks. */
#ifndef SPO_GENERATE_RUN_H
#define SPO_GENERATE_RUN_H

#include <stdint.h>

#include "core/hooks.h"
#include "ops/ops.h" /* spo_devkind */

typedef struct {
    const char *model, *lora, *out;      /* lora may be NULL; out: DIR|FILE.png|FILE.tar|- (io/imgout.h) */
    const char *vae;                     /* NULL, or a VAE directory to use instead of model/vae */
    const char *const *prompt;           /* nprompt prompts (ids 0..nprompt-1), or */
    int nprompt;
    const char *prompts;                 /* a prompts file (text/prompts.h), "-": stdin */
    const char *negative;                /* NULL: the empty prompt */
    const char *latents;                 /* NULL (x_T from Philox), or a file whose /latents [n,C,h,w] is x_T */
    const char *software;                /* the PNGs' Software text ("spo-generate 0.1.0") */
    int steps, per_prompt, batch, force; /* DDIM steps, images per prompt, images denoised at once */
    int H, W;                            /* image size; 0 0: the model's */
    double guidance, eta;
    spo_devkind device; /* SPO_DEV_CPU (0, the default) or SPO_DEV_CUDA */
    uint64_t seed;
    spo_hooks hooks; /* progress: denoising steps of all batches; phases "load", "encode";
                      * timings "denoise", "decode", "png" */
} spo_generate_job;

/* SPO_EINVAL naming the file or option for bad input (more than 1000000
 * images, a size that is not a multiple of the VAE factor or that the
 * UNet cannot take, latents of another shape, a LoRA for another model),
 * SPO_EIO for a failed job. The outputs are checked before the model is
 * loaded; on failure nothing is left at j->out. */
int spo_generate_run(const spo_generate_job *j);

#endif
