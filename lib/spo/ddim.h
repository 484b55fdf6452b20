/* ddim.h — the DDIM scheduler of SD v1.5 (diffusers DDIMScheduler) and the
 * per-step Gaussian log-likelihood SPO trains on (DESIGN.md §1).
 *
 * Computed in float32 in the same order as diffusers 0.26.1, so timesteps,
 * alphas_cumprod and step results match it to rounding. The step math works
 * on host arrays; it is elementwise and cheap next to the UNet (the CUDA
 * path will run the same formulas as a kernel). */
#ifndef SPO_DDIM_H
#define SPO_DDIM_H

#include <stddef.h>

#define SPO_MAX_TRAIN_STEPS 4096
#define SPO_MAX_INFER_STEPS 1000

typedef struct {
    int num_train;          /* num_train_timesteps (1000) */
    float alphas_cumprod[SPO_MAX_TRAIN_STEPS];
    float final_alpha_cumprod; /* 1 if set_alpha_to_one, else alphas_cumprod[0] */
    int steps_offset;       /* 1 for SD v1.5 */
    int spacing;            /* 0 leading, 1 trailing, 2 linspace */
    int num_steps;          /* inference steps set by spo_ddim_set_steps */
    int timesteps[SPO_MAX_INFER_STEPS]; /* descending: 951, 901, ..., 1 */
} spo_ddim;

/* Defaults of SD v1.5's scheduler_config.json. */
void spo_ddim_sd15(spo_ddim *s);
/* From a diffusers scheduler directory (scheduler_config.json) or the file
 * itself. Refuses what spo does not implement (v_prediction, clip_sample,
 * thresholding, trained_betas) and schedules that would give NaN or
 * infinite steps (spo_ddim_check) with a message naming the file and key. */
int spo_ddim_load(spo_ddim *s, const char *path);
/* Checks of a schedule (SPO_EINVAL naming the key, no file: callers prefix
 * it): 0 < beta_start <= beta_end < 1; a filled schedule's alphas_cumprod
 * falling from 1 and staying above SPO_MIN_ALPHA_CUMPROD, steps_offset in
 * 0..num_train-1. spo_ddim_load runs both. */
#define SPO_MIN_ALPHA_CUMPROD 1e-10f
int spo_ddim_check_betas(double beta_start, double beta_end);
int spo_ddim_check(const spo_ddim *s);
/* Set the inference steps and the timestep list (diffusers set_timesteps). */
int spo_ddim_set_steps(spo_ddim *s, int num_steps);
/* Previous timestep of t (t - num_train/num_steps; may be negative). */
int spo_ddim_prev(const spo_ddim *s, int t);
/* alphas_cumprod at t, or final_alpha_cumprod for t < 0. */
float spo_ddim_abar(const spo_ddim *s, int t);
/* sigma_t = eta * sqrt(variance(t, prev)). */
float spo_ddim_sigma(const spo_ddim *s, int t, int prev, float eta);

/* One DDIM step without the noise: from x_t and eps (n elements) compute
 * x0_hat (may be NULL) and the mean mu of x_prev; returns sigma via *sigma.
 * x_prev = mu + sigma * z. */
void spo_ddim_mean(const spo_ddim *s, int t, int prev, float eta, const float *x, const float *eps, float *x0_hat,
                   float *mu, float *sigma, size_t n);
/* x_prev = mu + sigma * z (n elements). */
void spo_ddim_add_noise(float *x_prev, const float *mu, float sigma, const float *z, size_t n);
/* Mean over the n elements of log N(x_prev; mu, sigma^2) (DESIGN.md §1). */
double spo_ddim_logprob(const float *x_prev, const float *mu, float sigma, size_t n);

#endif
