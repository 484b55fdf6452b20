/* ops_extra.h — ops added after lib/ops.h was fixed, same conventions
 * (pointers are memory of `dev` unless said otherwise; forward writes its
 * output). Implemented in lib/cpu_extra.c in terms of the spo_dev_* calls,
 * so they work unchanged on every device; a backend may replace them with
 * a kernel later. */
#ifndef SPO_OPS_EXTRA_H
#define SPO_OPS_EXTRA_H

#include <stdint.h>

#include "ops.h"

/* embedding gather: table (vocab, dim), ids (n) HOST int32 -> y (n, dim),
 * y[i] = table[ids[i]]. An id outside [0, vocab) is SPO_EINVAL naming it.
 * (The ids live on the host because they come from the tokenizer; CUDA does
 * n device-to-device row copies, or uploads ids for a gather kernel.) */
int spo_embed_fwd(spo_dev *d, float *y, const float *table, const int32_t *ids, int n, int dim, int vocab);

#endif
