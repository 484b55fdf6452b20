/* pairs_impl.h — the pair source shared by pairs_src.c (making sources) and
 * pairs_write.c (merging them into a file). Not a public header. */
#ifndef SPO_PAIRS_IMPL_H
#define SPO_PAIRS_IMPL_H

#include "spo/loop_state.h"
#include "spo/pairs.h"
#include "spo/pool.h"

struct spo_pairsrc {
    const spo_h5 *f;       /* the pairs file, or the pool */
    const spo_pairs *file; /* a pairs file source only */
    char model_id[SPO_ID_MAX];
    char text_clean[16];   /* spo_text_clean of the embeddings */
    int64_t num_steps;
    double guidance, eta;
    int64_t n;             /* pairs */
    int64_t C, h, w, L, D; /* latent [C,h,w], text [L,D] */
    spo_dtype_t cond_type; /* stored dtype of /cond (F32 or F16) */
    int64_t *key;          /* [n,4] */
    float *uncond;         /* [L*D] */
    int64_t E;             /* SDXL's pooled width (0: none) */
    float *uncond_pooled;  /* [E] */
    int own_lose_parent;   /* losers have parents of their own (/parent_lose, or chains) */
    int chains;            /* a chains source: K chains, parent [B,K,C*h*w] */
    /* a pool or chains source only (f is the pool, of chain 0): */
    const spo_h5 *embeds;
    int64_t K;
    int32_t timestep;      /* the pool's parent timestep */
    int32_t dt;            /* timestep - child_timestep: inner transition j is at timestep - j dt */
    int64_t inner;         /* a pool with inner steps: each kept prompt gives 1 + inner pairs */
    float *parent;         /* [B, C*h*w] */
    float *children;       /* [B, K, C*h*w] */
    float *chain;          /* [B, K, inner, C*h*w]: /inner, when inner > 0 */
    int32_t *tr;           /* per pair: its transition (0: parent -> child; j: chain step j) */
    float *scores;         /* [B, K] */
    int64_t *pb, *erow;    /* per pair: pool row, embeds row */
    int32_t *win, *lose;   /* per pair: child indices */
};

/* One pair; the arrays are the caller's ([C*h*w] each, cond [L*D] or NULL
 * to skip it). */
typedef struct {
    int64_t key[4];
    int32_t timestep;
    float score_win, score_lose;
    float *parent, *win, *lose, *cond;
    float *parent_lose; /* NULL to skip; /parent where the source has none */
} spo_pairrow;

/* s's text shape, its /cond type and /uncond from embeds file f
 * (/cond [P,L,D], /uncond [1,L,D]), and SDXL's pooled width and
 * /uncond_pooled. */
int spo_pairs_text_shape(spo_pairsrc *s, const spo_h5 *f);
/* s's arrays for B prompts of K children and np parents each (1, or K for
 * chains), children and parents of chw floats; SPO_EIO when out of memory
 * (spo_pairsrc_free frees what was allocated). */
int spo_pairsrc_alloc(spo_pairsrc *s, size_t B, size_t np, size_t K, size_t chw);
/* Keep each of B prompts' best and worst of s->scores [B, K] (spo_pair_select
 * with threshold) as a pair keyed (seed, ids[b], step, lstep), its text row
 * erow[b]; with s->inner, also the pairs of the chains' inner steps, keyed
 * step + j. */
void spo_pairsrc_select(spo_pairsrc *s, size_t B, const int64_t *ids, const int64_t *erow, int64_t seed, int64_t step,
                        int64_t lstep, double threshold);
/* Fetch pair i of s into r. */
int spo_pairsrc_row(const spo_pairsrc *s, int64_t i, spo_pairrow *r);
/* The conditional embedding [L*D] of pair i's prompt. */
int spo_pairsrc_cond(const spo_pairsrc *s, int64_t i, float *cond);
/* SDXL: the pooled embedding [E] of pair i's prompt. */
int spo_pairsrc_pooled(const spo_pairsrc *s, int64_t i, float *pooled);

#endif
