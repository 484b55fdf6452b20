/* loop_state.h — what the loop's tools share: the initial noise, the
 * noise streams, prompt ids and LoRA tags (the files themselves: state.h,
 * pool.h, scores.h, pairs.h).
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

/* A prompt id (int64 in files) as the uint32 the noise streams take. */
int spo_prompt_u32(int64_t id, const char *file, uint32_t *out);


#endif
