/* lora.h — LoRA on the UNet's attention projections (DESIGN.md §1).
 *
 * Targets: to_q, to_k, to_v and to_out.0 of every attention (self attn1
 * and cross attn2) in the UNet, named as diffusers names the modules
 * ("down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"). Each has
 * A (down) [r, in] and B (up) [out, r]; the layer computes
 * y = x W^T + b + (alpha / r) (x A^T) B^T. A fresh LoRA has
 * A ~ N(0, (1/r)^2) (peft's "gaussian" init, as the official recipe) and
 * B = 0, so it starts equal to the base model.
 *
 * Files: lora/1 (schemas/lora.json): /modules, /lora/<module>/down and
 * /up, optional AdamW moments under /adam; attributes lora_id, model_id,
 * rank, alpha, step. */
#ifndef SPO_LORA_H
#define SPO_LORA_H

#include <stdint.h>

#include "io/h5io.h"
#include "nn/unet.h"

typedef struct {
    char *name;    /* module name (without ".weight") */
    int in, out;
    float *down;   /* A (r, in), host */
    float *up;     /* B (out, r), host */
} spo_lora_module;

typedef struct {
    int n, rank;
    float alpha;
    int64_t step;             /* optimizer steps taken */
    char lora_id[64], model_id[256];
    spo_lora_module *m;
} spo_lora;

/* The target modules of a UNet, with shapes (down/up NULL). */
int spo_lora_targets(spo_lora *l, spo_unet *u);
/* A fresh LoRA for u: rank, alpha, A ~ N(0, 1/r^2) from seed, B = 0. */
int spo_lora_new(spo_lora *l, spo_unet *u, int rank, float alpha, uint64_t seed, const char *model_id);
void spo_lora_free(spo_lora *l);
/* Write into a file being created with schema "lora" (the caller commits). */
int spo_lora_write(spo_h5 *f, const spo_lora *l);
/* Read a lora/1 file opened with schema "lora". */
int spo_lora_read(spo_lora *l, const spo_h5 *f);
/* Check the LoRA fits u (same modules and shapes) — a message names the
 * first mismatch. */
int spo_lora_check(const spo_lora *l, spo_unet *u);
/* W += sign * (alpha / r) B A for every module (sign +1 merges, -1
 * unmerges): for sampling, where the merged layer is exact to rounding. */
int spo_lora_merge(const spo_lora *l, spo_unet *u, float sign);
/* "ID@STEP" for state and pool files. */
int spo_lora_tag_of(const spo_lora *l, char *buf, size_t n);

/* "none" -> 0; "<id>@<step>" -> step. Anything else: SPO_EINVAL. */
int spo_lora_step(const char *lora_id, int64_t *step);
/* Write "<id>@<step>" into buf[n]; SPO_EINVAL when it does not fit or id is
 * empty, "none" or contains '@'. */
int spo_lora_tag(char *buf, size_t n, const char *id, int64_t step);

#endif
