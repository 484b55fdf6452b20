/* sampler.h — guided UNet evaluation and the SPO pool step (spo-pool's work).
 *
 * Classifier-free guidance as diffusers' StableDiffusionPipeline: the UNet
 * runs on [x, x] with context [uncond, cond]; eps = eps_u + g (eps_c - eps_u).
 *
 * A pool step from x_t at timestep t (inference step index `step`):
 * guided eps at x_t (or the cached one), DDIM mean mu and sigma (eta) for
 * the previous timestep p = t - 1000/num_steps, K children
 * x_p^k = mu + sigma z_k with z_k = Philox(seed, prompt, step, k); then the
 * guided eps of each child at p and its predicted clean latent. At the last
 * step (p < 0) the children are final latents: no UNet pass, x0_hat = the
 * children, and their timestep counts as 0.
 *
 * INNER STEPS (the official SDXL pipeline, multi_sample_pipeline_sdxl:
 * num_inner_step): each child then goes on as its own chain for N plain
 * guided DDIM steps, the step from step index s with noise
 * Philox(seed, prompt, s, k) for chain k, and the eps and x0_hat are those
 * at the chain's end. The official loop pools again N + 1 steps after a
 * pool, except that the step that would pool at or after the last step
 * instead runs every chain to the end (spo_inner_count). */
#ifndef SPO_SAMPLER_H
#define SPO_SAMPLER_H

#include <stdint.h>

#include "spo/ddim.h"
#include "ops/ops.h"
#include "nn/unet.h"

/* SDXL's added conditioning of a guided UNet call (unet.h: text_time):
 * each sample's pooled text embedding, the unconditional one for the
 * unconditional half, and the time ids (the same for both halves, as the
 * official sampler makes them). E 0: none (SD v1.5). */
typedef struct {
    int E;                      /* pooled width */
    const float *pooled;        /* (contexts, E) host, indexed like cond */
    const float *uncond_pooled; /* (E) host */
    float time_ids[SPO_UNET_TIME_IDS];
} spo_added;

typedef struct {
    spo_unet *unet;
    spo_dev *dev;
    spo_added add;        /* SDXL; zero for SD v1.5 */
    spo_ddim sched;
    float guidance, eta;
    int batch;            /* latents per guided UNet call (each is 2 UNet images) */
    int L, D;             /* text length and width */
    const float *uncond;  /* (L, D) host */
    void (*progress)(void *ctx, long done, long total);
    void *ctx;
    long done, total;     /* latents through the UNet so far / in this call */
} spo_sampler;

/* Guided eps of n latents x (n,C,h,w) host, each with its own timestep
 * t[i] and conditional context cond + ctx_of[i]*L*D (host), -> eps host. */
int spo_guided_eps(spo_sampler *s, const float *x, const float *t, const float *cond, const int *ctx_of, int n, int h,
                   int w, float *eps);

typedef struct {
    int B, K, C, h, w;
    int inner;            /* inner steps of each chain (spo_inner_count) */
    int step, t;          /* parent's step index and timestep */
    uint64_t seed;
    const uint32_t *pid;  /* (B) prompt ids for the noise */
} spo_pool_shape;

/* The inner steps of the chains of a pool at step of num_steps when N are
 * asked: N, but when the next pool (step + N + 1) would be at or after the
 * last step, as many as reach the end; 0 when N is 0. */
int spo_inner_count(int step, int num_steps, int N);

/* x (B,C,h,w), eps_in (B,C,h,w) or NULL, cond (B,L,D) host. Outputs host:
 * parent_eps (B,C,h,w), children and x0 (B,K,C,h,w), inner
 * (B,K,ps->inner,C,h,w; may be NULL when ps->inner is 0), eps_out
 * (B,K,C,h,w; untouched when the chains end in final latents), *child_t
 * (the children's timestep, 0 at the last step), *end_t (the chains' ends'
 * timestep, 0 when final), *final (1 when the chains end in final latents). */
int spo_pool_step(spo_sampler *s, const spo_pool_shape *ps, const float *x, const float *eps_in, const float *cond,
                  float *parent_eps, float *children, float *inner, float *x0, float *eps_out, int *child_t,
                  int *end_t, int *final);

#endif
