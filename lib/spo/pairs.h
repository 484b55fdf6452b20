/* pairs.h — choosing training pairs from a scored pool, and pairs files.
 *
 * THE RULE (DESIGN.md §1 step 4; the official SPO code's
 * preference_score_compare): among the K scores of a prompt take the best
 * (largest) and the worst (smallest) child; p = softmax([s_best, s_worst])
 * over the raw scores, with no further temperature (spo-score already
 * returns exp(logit_scale) * cos); keep the pair when
 * p_best - p_worst > threshold (strictly). p_best - p_worst equals
 * tanh((s_best - s_worst) / 2), which is how it is computed (in double, no
 * overflow). Ties: the best is the lowest index among the largest scores,
 * the worst the lowest index among the smallest; when all K scores are
 * equal (or K = 1) best = worst and the gap is 0, so nothing is kept.
 *
 * A PAIR is keyed by (seed, prompt id, step, lora step) (pairs/1 /key).
 * Writing pairs files merges any number of sources — the pairs just chosen
 * from a pool, and existing pairs files — into one: sorted by key
 * (lexicographic, as signed int64), each key once (the first source that
 * has it wins: for spo-pair -a the existing file, for --merge the earlier
 * file). Sources must agree on model_id, num_steps, guidance, eta, the
 * latent shape [C,h,w], the text shape [L,D] and /uncond (to 1e-2
 * relative), else SPO_EINVAL naming both files. Rows are copied one pair at
 * a time, so merging shards needs memory for one pair, not for all. */
#ifndef SPO_PAIRS_H
#define SPO_PAIRS_H

#include <stdint.h>

#include "io/h5io.h"

/* ---- the rule (pure functions) ---- */
/* Indices of the best and worst of s[0..k), ties to the lowest index. */
void spo_pair_pick(const float *s, int k, int *best, int *worst);
/* p_best - p_worst of softmax([s_best, s_worst]). */
double spo_pair_gap(double s_best, double s_worst);
/* Pick best and worst of s[0..k); return 1 when the pair is kept. */
int spo_pair_select(const float *s, int k, double threshold, int *best, int *worst);

/* ---- merging by key (pure) ---- */
typedef struct {
    int32_t src; /* source index */
    int64_t row; /* row in that source */
} spo_pairref;

/* -1, 0, 1 comparing keys a[4] and b[4] lexicographically. */
int spo_key_cmp(const int64_t *a, const int64_t *b);
/* keys[i] is source i's [n[i], 4] key array. *out (malloc'd, free()) gets
 * the union sorted by key, each key once: the lowest source index, then the
 * lowest row, wins. *nout its length. */
int spo_pairs_plan(const int64_t *const *keys, const int64_t *n, int nsrc, spo_pairref **out, int64_t *nout);

/* ---- sources and pairs files ---- */
typedef struct spo_pairsrc spo_pairsrc;

/* The pairs a pool yields: pool/1, its scores/1 (same prompt ids in the
 * same order, same B, K and step) and the embeds/1 holding every prompt
 * of the pool (same model_id). The files must stay open while the source
 * is used. threshold in [0, 1]. */
int spo_pairsrc_from_pool(spo_pairsrc **s, const spo_h5 *pool, const spo_h5 *scores, const spo_h5 *embeds,
                          double threshold);
/* An existing pairs/1 file (open, validated). */
int spo_pairsrc_open(spo_pairsrc **s, const spo_h5 *pairs);
int64_t spo_pairsrc_count(const spo_pairsrc *s);
void spo_pairsrc_free(spo_pairsrc *s);

/* Write the merged sources as a pairs/1 file into out (created by the
 * caller, who commits it). *written (may be NULL) gets the number of pairs. */
int spo_pairs_write(spo_h5 *out, spo_pairsrc *const *src, int nsrc, int64_t *written);

#endif
