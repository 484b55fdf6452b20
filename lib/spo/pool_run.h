/* pool_run.h — spo-pool's whole job: read a state and the prompts'
 * embeddings, load the model (and a LoRA, merged), run one SPO pool step
 * (spo/sampler.h) and write the pool file. The library prints nothing: the
 * tool gets progress, notes and phase marks through callbacks. */
#ifndef SPO_POOL_RUN_H
#define SPO_POOL_RUN_H

#include "core/hooks.h"
#include "ops/ops.h" /* spo_devkind */

typedef struct {
    const char *model, *embeds, *state, *lora, *out; /* paths; "-" for stdin/stdout; lora may be NULL */
    int force, K, batch;
    int inner; /* inner steps of each child's chain (spo/sampler.h; 0: none, the SD v1.5 loop) */
    double guidance, eta;
    spo_devkind device; /* SPO_DEV_CPU (0, the default) or SPO_DEV_CUDA */
    spo_hooks hooks; /* progress: latents through the UNet; notes: why a cached eps is recomputed;
                      * phases "load", "init", "work" */
} spo_pool_job;

/* Checks: state, embeds, LoRA and model are for the same model
 * (spo_same_model); the state's step and timestep are on the model's
 * schedule; channels match the UNet. SPO_EINVAL naming the file for bad
 * input, SPO_EIO for a failed job. Nothing is left at j->out on failure. */
int spo_pool_run(const spo_pool_job *j);

#endif
