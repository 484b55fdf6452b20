/* lora_opt.h — the AdamW state of a lora/1 file (schemas/lora.json):
 * /adam/<module>/down_m, down_v, up_m, up_v (the moments of A and B) and,
 * on the /adam group, the attributes `guidance` and `eta` of the pairs the
 * LoRA was trained on (so later pairs sampled otherwise are refused). The
 * step count is the root attribute `step` (nn/lora.h). Moments are in the
 * flat layout of nn/lora_train.h. */
#ifndef SPO_LORA_OPT_H
#define SPO_LORA_OPT_H

#include "io/h5io.h"
#include "nn/lora.h"

/* Write the state into a lora file being created (after spo_lora_write). */
int spo_lora_opt_write(spo_h5 *f, const spo_lora *l, const float *m, const float *v, double guidance, double eta);
/* Read it: m, v (flat, zeroed when the file has none: *has = 0);
 * *guidance and *eta NAN when not recorded. */
int spo_lora_opt_read(const spo_h5 *f, const spo_lora *l, float *m, float *v, int *has, double *guidance, double *eta);

#endif
