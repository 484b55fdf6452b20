/* resample.h — pick one child of every prompt of a pool as the next state
 * (DESIGN.md §1 step 5).
 *
 * THE CHOICE: child = spo_choose_child(seed, prompt id, pool step, K), a
 * pure function of those four (never of the batch or shard). Word j of
 * the Philox stream (seed, prompt id, step, SPO_PHILOX_CHILD_CHOICE) is
 * w_j; the child is w_j % K for the first j with w_j < 2^32 - (2^32 % K)
 * (rejection sampling, so every child has probability exactly 1/K). When K
 * is a power of two no word is rejected and the child is w_0 % K. */
#ifndef SPO_RESAMPLE_H
#define SPO_RESAMPLE_H

#include <stdint.h>

#include "io/h5io.h"

/* Child index in 0..k-1 (k >= 1). */
uint32_t spo_choose_child(uint64_t seed, uint32_t prompt_id, uint32_t step, uint32_t k);

/* Write the state/1 that follows pool into out (created by the caller, who
 * commits it): for each prompt the chosen child as /latents, its /eps when
 * the pool has one, /chosen (i32 [B]) and /prompt_id; attributes step =
 * pool step + 1, timestep = the pool's child_timestep, model_id, lora_id,
 * seed and num_steps copied from the pool, choice_seed = seed. After the
 * last step (pool step = num_steps - 1) the state holds the final latents:
 * step = num_steps, timestep = child_timestep (0), no /eps. */
int spo_resample(spo_h5 *out, const spo_h5 *pool, uint64_t seed);

#endif
