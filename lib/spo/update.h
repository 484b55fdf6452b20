/* update.h — the SPO update of a LoRA from pairs (spo-step-update's work).
 *
 * The loss (DESIGN.md §1; train_spo.py of the official SPO code). For a
 * pair (x_t, t, x_win, x_lose, prompt) with guided eps of the policy
 * (LoRA on) and of the reference (LoRA off) at (x_t, t):
 *   mu = DDIM mean of x_p from x_t and eps (p = max(t - 1000/steps, 0)),
 *   log p(x) = mean over elements of log N(x; mu, sigma^2), sigma from eta,
 *   r_w = clamp(exp(log p_pol(win) - log p_ref(win)), 1 - clip, 1 + clip)
 *   r_l likewise; no gradient where the clamp is active;
 *   loss = -log sigmoid(beta log r_w - beta log r_l), mean over the batch.
 * Win and lose share the parent, so ONE guided policy pass (with backward)
 * and ONE guided reference pass per pair serve both (the official script
 * runs two of each). Guidance as in sampling: eps = eps_u + g (eps_c - eps_u)
 * from one UNet call on [x, x] with context [uncond, cond].
 *
 * Trajectory pairs (pairs files with /parent_lose, spo/pairs.h): the loser
 * has its own parent x_t' at the same t, so log p(lose) takes mu from the
 * policy's and the reference's guided eps at x_t' (a second pair of images
 * in the same UNet calls); the loss is otherwise the same. Without
 * /parent_lose nothing of the above changes.
 *
 * The optimizer: global gradient-norm clipping as
 * torch.nn.utils.clip_grad_norm_, then torch.optim.AdamW (decoupled weight
 * decay, bias correction), on the flat LoRA vector (nn/lora_train.h). */
#ifndef SPO_UPDATE_H
#define SPO_UPDATE_H

#include <stddef.h>
#include <stdint.h>

#include "nn/lora_train.h"
#include "nn/unet.h"
#include "spo/ddim.h"

/* ---- the loss of one pair (update_loss.c) ---- */
typedef struct {
    double beta; /* 10 */
    double clip; /* ratio band half-width, 0.1 */
} spo_loss_cfg;

typedef struct {
    double loss;            /* -log sigmoid(beta (log r_w - log r_l)) */
    double rw, rl;          /* clamped ratios */
    int clamped_w, clamped_l;
} spo_pair_loss;

/* x, win, lose: x_t and the two children; eps, eps_ref: guided eps of the
 * policy and the reference (n elements each, host). g_eps (n, or NULL)
 * receives weight * d loss / d eps. */
void spo_pair_loss_eval(const spo_ddim *s, int t, float eta, const spo_loss_cfg *c, const float *x, const float *win,
                        const float *lose, const float *eps, const float *eps_ref, size_t n, double weight,
                        spo_pair_loss *out, float *g_eps);

/* The same with the loser's own parent xl and its guided eps eps_l,
 * eps_ref_l (trajectory pairs); x, eps, eps_ref are the winner's. g_eps and
 * g_eps_l (n each, or both NULL) receive weight * d loss / d eps of the
 * winner's and the loser's policy pass. */
void spo_pair_loss_eval2(const spo_ddim *s, int t, float eta, const spo_loss_cfg *c, const float *x, const float *xl,
                         const float *win, const float *lose, const float *eps, const float *eps_l,
                         const float *eps_ref, const float *eps_ref_l, size_t n, double weight, spo_pair_loss *out,
                         float *g_eps, float *g_eps_l);

/* ---- the optimizer (adamw.c) ---- */
typedef struct {
    double lr, beta1, beta2, eps, weight_decay; /* 6e-5, 0.9, 0.999, 1e-8, 1e-4 */
    double max_grad_norm;                      /* 1.0; 0 turns clipping off */
} spo_adamw_cfg;

/* Scale g (n) so its 2-norm is at most max_norm (torch: coefficient
 * max_norm / (norm + 1e-6), capped at 1); returns the norm before. */
double spo_clip_grad_norm(float *g, size_t n, double max_norm);
/* One AdamW step on p with gradient g and moments m, v (n each); step is
 * the step count AFTER this step (1 for the first). */
void spo_adamw_step(const spo_adamw_cfg *c, int64_t step, float *p, const float *g, float *m, float *v, size_t n);

/* ---- pairs input (update_batch.c) ---- */
typedef struct spo_pairs_in spo_pairs_in;

typedef struct {
    char model_id[256];
    char text_clean[16]; /* the embeddings' tokenizer mode */
    int64_t num_steps;
    double guidance, eta;
    int C, h, w, L, D;
    int64_t n;              /* pairs over all files */
    int own_lose_parent;    /* some file has /parent_lose (trajectory pairs) */
    int E;                  /* SDXL: the pooled text width of /pooled; 0 for SD pairs */
} spo_pairs_meta;

/* Open pairs files (validated); they must agree on model, steps, guidance,
 * eta and shapes (SPO_EINVAL naming the file and the problem), and hold at
 * least one pair. Reads rows only when asked: memory does not grow with
 * the files. */
int spo_pairs_in_open(spo_pairs_in **p, const char *const *paths, int npaths);
void spo_pairs_in_close(spo_pairs_in *p);
const spo_pairs_meta *spo_pairs_in_meta(const spo_pairs_in *p);
const float *spo_pairs_in_uncond(const spo_pairs_in *p); /* (L, D) */
const float *spo_pairs_in_uncond_pooled(const spo_pairs_in *p); /* (E); NULL when E is 0 */

/* Pair i (over all files, in order) into the caller's arrays:
 * parent, win, lose (C*h*w), cond (L*D), *t its timestep. */
int spo_pairs_in_row(spo_pairs_in *p, int64_t i, float *parent, float *win, float *lose, float *cond, int *t);
/* The loser's parent of pair i (C*h*w): /parent_lose, or /parent in a
 * file without it. */
int spo_pairs_in_parent_lose(spo_pairs_in *p, int64_t i, float *parent_lose);
/* SDXL: the pooled text embedding (E) of pair i's prompt. */
int spo_pairs_in_pooled(spo_pairs_in *p, int64_t i, float *pooled);

/* perm (n) = the seeded permutation of 0..n-1 for pass `pass` of the run
 * that starts at LoRA step `step0` (Fisher-Yates on Philox words). */
void spo_update_perm(int64_t *perm, int64_t n, uint64_t seed, int64_t step0, int64_t pass);

/* ---- one optimizer step's gradient (update.c) ---- */
typedef struct {
    spo_unet *unet;
    spo_lora_train *lt;
    spo_ddim sched;         /* with the pairs' num_steps set */
    float guidance, eta;
    spo_loss_cfg loss;
    int micro;              /* pairs per UNet call (>= 1) */
    /* SDXL (a UNet with added conditioning): the time ids of the pairs'
     * image size, for both halves, as the official script passes them */
    float time_ids[SPO_UNET_TIME_IDS];
} spo_update;

typedef struct {
    double loss, rw, rl;    /* sums over pairs */
    int64_t clamped;        /* pairs with r_w or r_l clamped */
    int64_t pairs;
} spo_update_stats;

/* For pairs idx[0..n) of p: reference and policy passes, loss, backward.
 * gsum (numel of the LoRA, double) += weight * d loss_i / d theta summed
 * over the pairs (weight = 1 / global batch for the mean); st += sums.
 * Per-pair gradients are added in double, so the sum does not depend on
 * how the batch is split (across ranks). */
int spo_update_grad(spo_update *u, spo_pairs_in *p, const int64_t *idx, int n, double weight, double *gsum,
                    spo_update_stats *st);

/* ---- one optimizer step (update.c) ---- */
/* Sum buf[0..n) over all processes in place (an MPI_Allreduce); NULL for
 * a single process. */
typedef int (*spo_allreduce_fn)(void *ctx, double *buf, size_t n);

typedef struct {
    spo_allreduce_fn reduce;
    void *ctx;
    int rank, nranks;       /* this process's share of every batch */
} spo_update_comm;

typedef struct {
    double loss, rw, rl;    /* means over the batch */
    double clamped;         /* share of pairs with a clamped ratio */
    double grad_norm;       /* before clipping */
    int64_t pairs;
} spo_step_result;

/* One optimizer step on the global batch batch[0..nb): this process takes
 * its contiguous share, gradients of the batch mean are summed over the
 * processes, clipped and applied by AdamW to theta, m, v (flat, numel)
 * identically everywhere; the LoRA on the device is updated. step: the
 * count after this step. A NaN or Inf in the loss or the gradient is
 * SPO_EIO, theta untouched. */
int spo_update_step(spo_update *u, spo_pairs_in *p, const int64_t *batch, int nb, const spo_update_comm *comm,
                    const spo_adamw_cfg *opt, int64_t step, float *theta, float *m, float *v, spo_step_result *res);

#endif
