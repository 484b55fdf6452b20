/* lora_train.h — a LoRA attached unmerged to a UNet for training.
 *
 * The LoRA's matrices live in one device buffer and their gradients in
 * another, both in the FLAT layout: for each module in the LoRA's order,
 * A (r,in) then B (out,r), row-major. The same layout serves the optimizer
 * (lib/spo/adamw.h) and the all-reduce of data-parallel training. A train
 * forward of the UNet with the LoRA enabled, then its backward, ACCUMULATES
 * dA and dB into the gradient buffer; the frozen weights get none. */
#ifndef SPO_LORA_TRAIN_H
#define SPO_LORA_TRAIN_H

#include <stddef.h>

#include "nn/lora.h"
#include "nn/unet.h"

typedef struct spo_lora_train spo_lora_train;

/* Elements of l in the flat layout. */
size_t spo_lora_numel(const spo_lora *l);
/* l's matrices to flat, and back (l must have its matrices allocated). */
void spo_lora_pack(const spo_lora *l, float *flat);
void spo_lora_unpack(spo_lora *l, const float *flat);

/* Upload l to u's device and attach every module (names and shapes must
 * match u's linears: SPO_EINVAL naming the first that does not). Enabled,
 * gradients zero. */
int spo_lora_train_new(spo_lora_train **t, spo_unet *u, const spo_lora *l);
/* Detach from the UNet and free. Safe on NULL. */
void spo_lora_train_free(spo_lora_train *t);
size_t spo_lora_train_numel(const spo_lora_train *t);
/* Replace the matrices with flat (host, numel floats). */
int spo_lora_train_set(spo_lora_train *t, const float *flat);
int spo_lora_train_zero_grad(spo_lora_train *t);
/* The accumulated gradients into flat (host, numel floats). */
int spo_lora_train_grad(spo_lora_train *t, float *flat);

#endif
