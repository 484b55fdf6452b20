/* ops_extra.h — ops added after lib/ops/ops.h was fixed, same conventions
 * (pointers are memory of `dev` unless said otherwise; forward writes its
 * output). Implemented in lib/ops/cpu/cpu_extra.c in terms of the spo_dev_* calls,
 * so they work unchanged on every device; a backend may replace them with
 * a kernel later. */
#ifndef SPO_OPS_EXTRA_H
#define SPO_OPS_EXTRA_H

#include <stdint.h>

#include "ops/ops.h"

/* embedding gather: table (vocab, dim), ids (n) HOST int32 -> y (n, dim),
 * y[i] = table[ids[i]]. An id outside [0, vocab) is SPO_EINVAL naming it.
 * (The ids live on the host because they come from the tokenizer; CUDA does
 * n device-to-device row copies, or uploads ids for a gather kernel.) */
int spo_embed_fwd(spo_dev *d, float *y, const float *table, const int32_t *ids, int n, int dim, int vocab);

/* ---- adaLN modulation (DiT; the step-aware preference model) ----------
 * Per-sample vectors come as rows of a (b, ld) matrix (chunks of one
 * Linear's output): row i of shift is shift[i*ld .. i*ld + c), and so on.
 * CPU only for now (a kernel for CUDA is still to be written); on another
 * device they fail with SPO_EINVAL. No backward yet (nothing trains them). */

/* modulate: x (b,t,c), shift/scale rows of stride ld ->
 * y[i,j,:] = x[i,j,:] * (1 + scale[i,:]) + shift[i,:]; y may equal x. */
int spo_modulate_fwd(spo_dev *d, float *y, const float *x, const float *shift, const float *scale, int ld, int b,
                     int t, int c);
/* gated residual: x (b,t,c) += gate[i,:] * y[i,j,:], gate rows of stride ld. */
int spo_gate_add_fwd(spo_dev *d, float *x, const float *y, const float *gate, int ld, int b, int t, int c);

#endif
