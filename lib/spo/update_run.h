/* update_run.h — spo-step-update's whole job: read the pairs, the model and
 * a LoRA with its AdamW state, take optimizer steps over seeded batches of
 * the pairs (spo/update.h), append one JSON line per step to a metrics
 * file, and write the LoRA with its moments. Under MPI every rank runs it
 * with its share of each batch and a reduce function; rank 0 writes. The
 * library prints nothing: the tool gets progress and timings through
 * callbacks. */
#ifndef SPO_UPDATE_RUN_H
#define SPO_UPDATE_RUN_H

#include <stdint.h>

#include "core/hooks.h"
#include "ops/ops.h" /* spo_devkind */
#include "spo/update.h"

typedef struct {
    const char *model, *lora, *out; /* paths */
    const char *const *pairs;       /* npairs pairs files, read by rows */
    int npairs, force;
    int batch, micro, threads; /* pairs per step over all ranks; per UNet call; CPU threads (0: all) */
    long steps;                /* 0: one pass over the pairs */
    spo_devkind device;        /* SPO_DEV_CPU (0, the default) or SPO_DEV_CUDA */
    uint64_t seed;
    spo_adamw_cfg opt;
    spo_loss_cfg loss;
    const char *metrics; /* NULL, or a file to append a JSON line per step to (rank 0) */
    spo_update_comm comm; /* rank, nranks and the reduce of a data-parallel run */
    spo_hooks hooks;      /* progress: optimizer steps; timings "load", then "total" */
} spo_update_job;

/* Checks: the pairs, the LoRA (and the guidance and eta it was trained on)
 * and the model are of the same model; eta > 0. SPO_EINVAL naming the file
 * for bad input, SPO_EIO for a failed job ("step N: ..." for a NaN);
 * nothing is written at j->out unless every step succeeded. */
int spo_update_run(const spo_update_job *j);

#endif
