/* cpu_extra.c — the ops of lib/ops_extra.h, written with spo_dev_* calls
 * only, so they serve the CPU device and any other. */
#include "ops_extra.h"

int spo_embed_fwd(spo_dev *d, float *y, const float *table, const int32_t *ids, int n, int dim, int vocab)
{
    if (n < 0 || dim <= 0) return spo_err(SPO_EINVAL, "embed: bad shape n=%d dim=%d", n, dim);
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= vocab)
            return spo_err(SPO_EINVAL, "embed: token id %d at position %d is outside the vocabulary [0,%d)",
                           (int)ids[i], i, vocab);
        int rc = spo_dev_copy(d, y + (size_t)i * dim, table + (size_t)ids[i] * dim, (size_t)dim);
        if (rc) return rc;
    }
    return SPO_OK;
}
