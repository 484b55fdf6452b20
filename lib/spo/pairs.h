/* pairs.h — choosing training pairs from a scored pool, and pairs files.
 *
 * THE RULE (DESIGN.md §1 step 4; the official SPO code's
 * preference_score_compare): among the K scores of a prompt take the best
 * (largest) and the worst (smallest) child; p = softmax([s_best, s_worst])
 * over the raw scores, with no further temperature (spo-score already
 * returns exp(logit_scale) * cos); keep the pair when
 * p_best - p_worst > threshold (strictly). p_best - p_worst equals
 * tanh((s_best - s_worst) / 2), which is how it is computed (in double, no
 * overflow). Ties as the official torch.sort(scores, descending=True)
 * orders them (stable on the CPU: equal scores keep their index order),
 * taking its first and last: the best is the lowest index among the
 * largest scores, the worst the highest index among the smallest; when all
 * K scores are equal the gap is 0 (and for K = 1 best = worst), so nothing
 * is kept.
 *
 * A PAIR is keyed by (seed, prompt id, step, lora step) (/key).
 * Writing pairs files merges any number of sources — the pairs just chosen
 * from a pool, and existing pairs files — into one: sorted by key
 * (lexicographic, as signed int64), each key once (the first source that
 * has it wins: for spo-pair -a the existing file, for --merge the earlier
 * file). Sources must agree on model_id, text_clean, num_steps, guidance, eta, the
 * latent shape [C,h,w], the text shape [L,D] and /uncond (to 1e-2
 * relative), else SPO_EINVAL naming both files. Rows are copied one pair at
 * a time, so merging shards needs memory for one pair, not for all.
 *
 * FILES: spo-pair writes pairs/2 (schemas/pairs.json): every prompt's
 * conditional embedding once, in a table (/prompt_id [P] strictly
 * increasing, /cond [P,L,D]); pair i's embedding is the row whose prompt id
 * is /key[i,1]. pairs/1 (schemas/pairs1.json: one /cond row per pair) is
 * still read. The row reader below hides the difference.
 *
 * TRAJECTORY PAIRS (spo_pairsrc_from_chains; spo-pair --trajectory): winner
 * and loser are the steps at the same t of two independent sampling
 * chains of a prompt, chosen by the chains' final scores (Diffusion-DPO
 * style), so each has its own parent: the optional /parent_lose of pairs/2
 * holds the loser's. A file without it (every SPO pair) is read as if
 * /parent_lose were /parent. */
#ifndef SPO_PAIRS_H
#define SPO_PAIRS_H

#include <stdint.h>

#include "io/h5io.h"
#include "io/schema.h"

/* ---- the rule (pure functions) ---- */
/* Indices of the best and worst of s[0..k): ties to the lowest index for
 * the best, to the highest for the worst (see above). */
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

/* ---- reading a pairs file by rows (pairs/1 or pairs/2) ----
 *
 * For training: open once, then read any range of pairs; memory is the
 * prompt table's ids (8 bytes a prompt) and /uncond, never the pairs.
 *
 *     spo_pairs *p;
 *     if ((rc = spo_pairs_open(&p, "pairs.h5", NULL))) return rc;
 *     const spo_pairsinfo *in = spo_pairs_info(p);
 *     size_t chw = in->C * in->h * in->w, ld = in->L * in->D;
 *     // caller's arrays for n rows: parent/win/lose n*chw, cond n*ld, ...
 *     spo_pairbatch b = {.parent = ..., .win = ..., .lose = ..., .cond = ..., .timestep = ...};
 *     rc = spo_pairs_read(p, i0, n, &b);     // pairs i0 .. i0+n-1
 *     const float *uncond = spo_pairs_uncond(p);  // [L*D], shared by all pairs
 *     spo_pairs_close(p);
 *
 * Opening checks the schema of the file's own version, the attributes, and
 * every size against the others and the machine (spo/loopfile.h) before
 * allocating. Reading checks each row's timestep (0..SPO_MAX_TIMESTEP) and,
 * for pairs/2, that its prompt id is in the table: SPO_EINVAL naming the
 * file and the pair. */
typedef struct spo_pairs spo_pairs;

typedef struct {
    int version;            /* 1 or 2 */
    char model_id[256];
    char text_clean[16];    /* the embeddings' tokenizer mode (spo_text_clean) */
    int64_t num_steps;
    double guidance, eta;
    int64_t n;              /* pairs */
    int64_t P;              /* prompts in the table (pairs/2; pairs/1: n) */
    int64_t C, h, w, L, D;  /* latent [C,h,w], text [L,D] */
    spo_dtype_t cond_type;  /* stored type of /cond: SPO_T_F32 or SPO_T_F16 */
    int has_parent_lose;    /* /parent_lose present (trajectory pairs) */
    int64_t E;              /* SDXL: /pooled [P,E] and /uncond_pooled [1,E]; 0 without them */
} spo_pairsinfo;

/* Rows i0 .. i0+n-1 of each field, into the caller's arrays; any pointer may
 * be NULL to skip that field. Sizes per pair: key 4, timestep 1, prompt_id
 * 1 (= key[1]), score_win/score_lose 1, parent/win/lose/parent_lose
 * C*h*w, cond L*D (the prompt's row of the table, converted to float).
 * parent_lose is /parent where the file has no /parent_lose. */
typedef struct {
    int64_t *key, *prompt_id;
    int32_t *timestep;
    float *score_win, *score_lose;
    float *parent, *win, *lose, *cond;
    float *parent_lose;
    float *pooled; /* E: the prompt's /pooled row (SDXL pairs only) */
} spo_pairbatch;

/* Open path ("-": stdin) for reading. pre: extra dimension bindings for the
 * schema check (e.g. {"C", 4}), or NULL. */
int spo_pairs_open(spo_pairs **p, const char *path, const spo_dimbind *pre);
const spo_pairsinfo *spo_pairs_info(const spo_pairs *p);
/* The empty-prompt embedding [L*D]; SDXL's pooled one [E] (NULL when E is 0). */
const float *spo_pairs_uncond(const spo_pairs *p);
const float *spo_pairs_uncond_pooled(const spo_pairs *p);
/* The open HDF5 file (for attributes such as history). */
const spo_h5 *spo_pairs_h5(const spo_pairs *p);
int spo_pairs_read(const spo_pairs *p, int64_t i0, int64_t n, spo_pairbatch *b);
/* Safe on NULL. */
void spo_pairs_close(spo_pairs *p);

/* ---- sources and pairs files ---- */
typedef struct spo_pairsrc spo_pairsrc;

/* The pairs a pool yields: pool/1, its scores/1 (same prompt ids in the
 * same order, same B, K and step) and the embeds/1 holding every prompt
 * of the pool (same model_id). The files must stay open while the source
 * is used. threshold in [0, 1]. */
int spo_pairsrc_from_pool(spo_pairsrc **s, const spo_h5 *pool, const spo_h5 *scores, const spo_h5 *embeds,
                          double threshold);
/* Trajectory pairs from N >= 2 independent chains of the same prompts:
 * pool[c] is chain c's pool/1 at one step (K = 1; all of the same step,
 * prompt ids in the same order, model, LoRA, schedule, guidance and eta),
 * final[c] the scores/1 of chain c's final images (K = 1, its last step,
 * the same prompt ids in the same order). Per prompt the best and the
 * worst chain by final score form the pair under the rule above
 * (threshold); parent and win are the best chain's x_t and x_{t-1},
 * parent_lose and lose the worst chain's. Key: (pool[0]'s seed, prompt
 * id, step, lora step). */
int spo_pairsrc_from_chains(spo_pairsrc **s, const spo_h5 *const *pool, const spo_h5 *const *final, int nchains,
                            const spo_h5 *embeds, double threshold);
/* An existing pairs file (pairs/1 or pairs/2), open while s is used. */
int spo_pairsrc_open(spo_pairsrc **s, const spo_pairs *pairs);
int64_t spo_pairsrc_count(const spo_pairsrc *s);
void spo_pairsrc_free(spo_pairsrc *s);

/* Write the merged sources as a pairs/2 file into out (created with
 * schema "pairs" by the caller, who commits it), with /parent_lose when
 * any source has loser parents of their own: pairs in key order, then
 * the table of their prompts in prompt-id order, each prompt's embedding
 * taken from the first pair (in key order) that has it. *written (may be
 * NULL) gets the number of pairs. */
int spo_pairs_write(spo_h5 *out, spo_pairsrc *const *src, int nsrc, int64_t *written);

#endif
