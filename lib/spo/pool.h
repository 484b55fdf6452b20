/* pool.h — pool/1 files (schemas/pool.json): one sampling step for every
 * prompt, K children each. Reading validates the attributes and every size
 * the file declares (spo/loopfile.h) before anything is allocated; writing
 * takes the arrays spo_pool_step (spo/sampler.h) fills. */
#ifndef SPO_POOL_H
#define SPO_POOL_H

#include <stdint.h>

#include "io/h5io.h"
#include "spo/loop_state.h"
#include "spo/loopfile.h"

/* Attributes and sizes of a pool/1 file. */
typedef struct {
    spo_loopattrs attrs; /* model_id, lora_id, seed, step, num_steps, timestep */
    int64_t child_timestep;
    int64_t inner;         /* inner steps of each child's chain (/inner [B,K,inner,C,h,w]); 0: none */
    int64_t end_timestep;  /* the chains' ends' timestep (child_timestep without inner steps; 0: final) */
    double guidance, eta;
    int64_t B, K, C, h, w; /* /children is [B,K,C,h,w] */
    int has_eps;           /* /eps present */
    char text_clean[16];   /* the embeddings' text_clean; "" when not recorded */
} spo_poolmeta;

/* Read and check the metadata of a pool opened with schema "pool": step in
 * 0..num_steps-1, timesteps in range, K in 1..SPO_MAX_CHILDREN, C, h, w in
 * range and [B,K,C,h,w] floats within memory. */
int spo_pool_meta(const spo_h5 *pool, spo_poolmeta *m);

/* Write a pool into out (created with schema "pool", committed by the
 * caller): m gives the attributes and sizes (has_eps is ignored: /eps is
 * written when eps is not NULL). pid [B]; parent, parent_eps [B,C,h,w];
 * children, x0 and eps [B,K,C,h,w]; inner [B,K,m->inner,C,h,w] (NULL when
 * m->inner is 0). */
int spo_pool_write(spo_h5 *out, const spo_poolmeta *m, const int64_t *pid, const float *parent,
                   const float *parent_eps, const float *children, const float *inner, const float *x0,
                   const float *eps);

/* Chain k of prompt b of a pool read into children [B,K,chw] and inner
 * [B,K,N,chw]: its latent after j steps (j = 0: the child; j = N: the end). */
static inline const float *spo_pool_chain_at(const float *children, const float *inner, int64_t K, int64_t N,
                                             int64_t b, int64_t k, int64_t j, size_t chw)
{
    return j == 0 ? children + ((size_t)(b * K + k)) * chw : inner + ((size_t)((b * K + k) * N + j - 1)) * chw;
}

#endif
