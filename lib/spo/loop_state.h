/* loop_state.h — the sampling loop's state files (state/1) and what the
 * network-free loop tools share: initial noise, pool metadata, LoRA tags.
 *
 * NOISE STREAMS (lib/core/philox.h, keyed by seed, prompt id, step, child):
 *   x_T of a prompt          step SPO_STEP_INIT_NOISE, child 0
 *   children of a pool       step = the parent's step index, child k
 *   resampling choice        step = the pool's step, child SPO_PHILOX_CHILD_CHOICE
 * so a prompt's numbers never depend on its batch, shard or device.
 *
 * LORA TAGS: the lora_id attribute of state and pool files is "none"
 * (sampling with the base model; its optimizer step counts as 0) or
 * "<lora id>@<optimizer step>", e.g. "3f9a0c1e@12" (spo_lora_tag writes
 * it). spo-pair keys pairs by that step. */
#ifndef SPO_LOOP_STATE_H
#define SPO_LOOP_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "io/h5io.h"

/* Philox step reserved for the initial noise x_T (never a real step). */
#define SPO_STEP_INIT_NOISE 0xFFFFFFFEu

#define SPO_ID_MAX 256 /* model_id / lora_id buffers */

/* What spo-init needs besides the embeds file. */
typedef struct {
    uint64_t seed;
    int num_steps;        /* inference steps (20) */
    int timestep;         /* first timestep of the schedule (951 for 20 steps of SD v1.5) */
    int C, h, w;          /* latent channels and size (4, 64, 64) */
} spo_init_opts;

/* SD v1.5 defaults for num_steps: C 4, 64x64, the first timestep of the
 * default scheduler (lib/spo/ddim.h). */
int spo_init_defaults(spo_init_opts *o, int num_steps);
/* From a diffusers model directory: latent channels and size from
 * unet/config.json (in_channels, sample_size: an integer or [h, w]) and
 * the first timestep from scheduler/scheduler_config.json. */
int spo_init_from_model(spo_init_opts *o, const char *model_dir, int num_steps);

/* x_T of one prompt: n normals of stream (seed, prompt_id,
 * SPO_STEP_INIT_NOISE, 0). */
void spo_init_noise(float *x, size_t n, uint64_t seed, uint32_t prompt_id);

/* Write a state/1 file into out (created by the caller, who commits it):
 * x_T [P,C,h,w] and /prompt_id for every prompt of embeds, step 0,
 * lora_id "none", model_id copied from embeds. Prompt ids must be distinct
 * and in 0..2^32-1. */
int spo_state_init(spo_h5 *out, const spo_h5 *embeds, const spo_init_opts *o);

/* Attributes and sizes of a pool/1 file (already validated on open). */
typedef struct {
    char model_id[SPO_ID_MAX], lora_id[SPO_ID_MAX];
    int64_t seed, step, num_steps, timestep, child_timestep;
    double guidance, eta;
    int64_t B, K, C, h, w; /* /children is [B,K,C,h,w] */
    int has_eps;           /* /eps present */
} spo_poolmeta;

int spo_pool_meta(const spo_h5 *pool, spo_poolmeta *m);

/* A prompt id (int64 in files) as the uint32 the noise streams take. */
int spo_prompt_u32(int64_t id, const char *file, uint32_t *out);


#endif
