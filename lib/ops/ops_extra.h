/* ops_extra.h — kept for the callers that include it: the embedding gather
 * and the adaLN ops (spo_embed_fwd, spo_modulate_fwd, spo_gate_add_fwd) are
 * now entries of the one op list (ops_list.h), declared by ops.h and
 * dispatched through the op table like every other op. */
#ifndef SPO_OPS_EXTRA_H
#define SPO_OPS_EXTRA_H

#include "ops/ops.h"

#endif
