/* loopfile.h — the checks every loop file (state, pool, scores, pairs)
 * shares: one model-id check, one duplicate-prompt check, sizes declared by
 * a file checked in 64-bit arithmetic before anything is allocated, and
 * timesteps in range. Each returns SPO_EINVAL with a message naming the
 * file and the field. */
#ifndef SPO_LOOPFILE_H
#define SPO_LOOPFILE_H

#include <stddef.h>
#include <stdint.h>

#include "io/h5io.h"
#include "nn/lora.h"
#include "nn/unet.h"
#include "spo/loop_state.h"

#define SPO_MAX_CHILDREN 64        /* K of a pool (spo-pool -K) */
#define SPO_MAX_LATENT_SIDE 4096   /* latent height and width (spo-init --latent-size) */
#define SPO_MAX_LATENT_CHANNELS 64 /* latent channels (a UNet's in_channels) */
#define SPO_MAX_TIMESTEP 4095      /* timesteps are 0..num_train_timesteps-1 <= SPO_MAX_TRAIN_STEPS-1 */

/* The root attributes every state and pool file carries: the model and
 * LoRA it was sampled with (lora_id "none" or a LoRA tag, loop_state.h),
 * the chain's seed, the inference step, the number of steps and the
 * timestep of its latents. */
typedef struct {
    char model_id[SPO_ID_MAX], lora_id[SPO_ID_MAX];
    int64_t seed, step, num_steps, timestep;
} spo_loopattrs;
/* Read them from f's root (all must be there; no range checks: each file
 * type checks its own) or write them to out's root. */
int spo_loopattrs_read(const spo_h5 *f, spo_loopattrs *a);
int spo_loopattrs_write(spo_h5 *out, const spo_loopattrs *a);

/* file_a (model_id ma) and file_b (model_id mb) are for the same model:
 * "A is for model 'x', B for model 'y'". The one model-id check. */
int spo_same_model(const char *file_a, const char *ma, const char *file_b, const char *mb);
/* The text_clean attribute of an embeddings or pairs file f into buf
 * ("ftfy" or "basic"; "basic" when the file has none: spo made no other
 * before the attribute existed). */
int spo_text_clean(const spo_h5 *f, char *buf, size_t n);
/* file_a and file_b were tokenized the same way: "cannot mix embeddings
 * made with --text-clean X (A) and Y (B)". */
int spo_same_text_clean(const char *file_a, const char *ta, const char *file_b, const char *tb);
/* file (model_id mid) was made for the model in model_dir (its id,
 * io/modelid.h). */
int spo_model_matches(const char *file, const char *mid, const char *model_dir);
/* No prompt id repeats among ids[0..n): "FILE: prompt id N appears more
 * than once". */
int spo_ids_distinct(const int64_t *ids, int64_t n, const char *file);
/* dims[0..nd) of field (a dataset) of file: each >= lo (0 or 1) and the
 * product times elem fits in memory (overflow-checked, and not more than
 * this machine's physical memory). *bytes (may be NULL) gets the size. */
int spo_size_check(const char *file, const char *field, const int64_t *dims, int nd, int64_t lo, size_t elem,
                   size_t *bytes);
/* Dataset name of f stores the data its shape declares (unless it is
 * compressed): a small file cannot declare gigabytes of unwritten or
 * missing data and make a reader allocate them. */
int spo_storage_check(const spo_h5 *f, const char *name);
/* One dimension in lo..hi. */
int spo_dim_check(const char *file, const char *field, int64_t v, int64_t lo, int64_t hi);
/* A timestep in 0..SPO_MAX_TIMESTEP. */
int spo_timestep_check(const char *file, const char *field, int64_t t);

/* Check f (opened without a schema) against the version of schema name
 * its own spo_schema attribute names ("pairs/1" or "pairs/2" for "pairs"),
 * with dimension bindings pre (may be NULL); *version gets the version. */
int spo_own_schema_check(const spo_h5 *f, const char *name, const spo_dimbind *pre, int *version);

/* The one way a LoRA joins a UNet (every --lora): read path in any format
 * (nn/lora_export.h spo_lora_load_any: lora/1, diffusers or kohya
 * safetensors, SDXL's kohya names for an SDXL UNet), checked against
 * u's modules and shapes, and, when model_file is not NULL and the LoRA
 * records a model id, against model_id (spo_same_model); then merged into
 * u. On failure *l is freed and u is unchanged. */
int spo_lora_attach(spo_lora *l, const char *path, spo_unet *u, const char *model_file, const char *model_id);

#endif
