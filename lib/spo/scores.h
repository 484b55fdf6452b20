/* scores.h — scores/1 files (schemas/scores.json): the preference score of
 * every child of a pool, written by spo-score and read by spo-pair. */
#ifndef SPO_SCORES_H
#define SPO_SCORES_H

#include <stdint.h>

#include "io/h5io.h"
#include "spo/pool.h"

/* Write scores [B,K] of pool m (model_id, step; children scored at
 * timestep) with prompt ids pid [B] into out (created with schema
 * "scores", committed by the caller). */
int spo_scores_write(spo_h5 *out, const spo_poolmeta *m, const char *scorer, int64_t timestep, const int64_t *pid,
                     const float *scores);
/* Check that scores file sc belongs to pool (metadata m, prompt ids ids
 * [B]): /scores is [B,K], same step, same prompt ids in the same order. */
int spo_scores_match(const spo_h5 *sc, const spo_h5 *pool, const spo_poolmeta *m, const int64_t *ids);

#endif
