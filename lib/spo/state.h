/* state.h — state/1 files (schemas/state.json): the current latent of every
 * prompt. spo-init writes x_T (spo_state_init), spo-resample the chosen
 * children (spo/resample.h), spo-pool reads them. Reading validates the
 * attributes and every size the file declares (spo/loopfile.h) before
 * anything is allocated. */
#ifndef SPO_STATE_H
#define SPO_STATE_H

#include <stdint.h>

#include "io/h5io.h"
#include "spo/loop_state.h"
#include "spo/loopfile.h"

typedef struct {
    spo_loopattrs attrs; /* model_id, lora_id, seed, step, num_steps, timestep */
    int64_t B, C, h, w; /* /latents is [B,C,h,w] */
    int has_eps;        /* /eps present */
    int has_guidance;   /* the guidance the cached /eps was computed with is recorded */
    double guidance;
} spo_statemeta;

/* Read and check the metadata of a state opened with schema "state":
 * num_steps in 1..SPO_MAX_INFER_STEPS, step in 0..num_steps, C, h, w in
 * range and [B,C,h,w] floats within memory. */
int spo_state_meta(const spo_h5 *f, spo_statemeta *m);
/* x [B,C,h,w] and ids [B] (each a valid prompt id, 0..2^32-1); eps
 * [B,C,h,w] too when not NULL (the file must have /eps). */
int spo_state_read(const spo_h5 *f, const spo_statemeta *m, float *x, int64_t *ids, float *eps);

/* Write a state/1 file into out (created by the caller, who commits it):
 * x_T [P,C,h,w] and /prompt_id for every prompt of embeds, step 0,
 * lora_id "none", model_id copied from embeds. Prompt ids must be distinct
 * and in 0..2^32-1. */
int spo_state_init(spo_h5 *out, const spo_h5 *embeds, const spo_init_opts *o);

#endif
