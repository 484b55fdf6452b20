/* score_run.h — spo-score's whole job: read a pool, decode the predicted
 * clean latent of every child with the model's VAE, score it (step-aware
 * preference model at the child's timestep, with the prompt's SPM ids from
 * the embeds file, or a built-in scorer) and write the scores file. */
#ifndef SPO_SCORE_RUN_H
#define SPO_SCORE_RUN_H

#include "core/hooks.h"
#include "ops/ops.h" /* spo_devkind */

typedef struct {
    const char *model, *pool, *embeds, *out; /* embeds: needed with spm only */
    const char *vae;                         /* NULL: model/vae */
    const char *spm, *spm_weights, *scorer;  /* one of spm and scorer */
    int force, batch;
    spo_devkind device; /* SPO_DEV_CPU (0, the default) or SPO_DEV_CUDA */
    spo_hooks hooks; /* progress: images scored; phases "load", "init", "work" */
} spo_score_job;

/* SPO_EINVAL naming the file for bad input (pool of another model, embeds
 * of another model or without /spm_ids), SPO_EIO for a failed job. Nothing
 * is left at j->out on failure. */
int spo_score_run(const spo_score_job *j);

#endif
