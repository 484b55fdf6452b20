/* cpu_embed.c — the embeddings on the CPU: the token gather (embed_fwd)
 * and the sinusoidal timestep embedding, as diffusers
 * get_timestep_embedding (float32 throughout, in the same order):
 *   half = dim / 2
 *   e_i  = (-ln(max_period) * i) / (half - shift)      i = 0..half-1
 *   a_i  = t * exp(e_i)
 *   y    = [sin a, cos a], or [cos a, sin a] with flip_sin_to_cos;
 *   an odd dim gets a zero last column.
 * t (n) -> y (n, dim). */
#include <math.h>
#include <string.h>

#include "ops/ops_impl.h"

int spo_cpu_timestep_embed(spo_dev *d, float *y, const float *t, int n, int dim, int flip_sin_to_cos, float shift,
                           float max_period)
{
    (void)d;
    const int half = dim / 2;
    const float nl = (float)-log((double)max_period), div = (float)half - shift;
    for (int i = 0; i < n; i++) {
        float *yr = y + (size_t)i * dim;
        float *s = yr + (flip_sin_to_cos ? half : 0), *c = yr + (flip_sin_to_cos ? 0 : half);
        for (int j = 0; j < half; j++) {
            const float e = nl * (float)j / div;
            const float a = t[i] * expf(e);
            s[j] = sinf(a);
            c[j] = cosf(a);
        }
        if (dim % 2) yr[dim - 1] = 0.0f;
    }
    return SPO_OK;
}

/* y[i] = table[ids[i]]; the ids were checked against the vocabulary */
int spo_cpu_embed_fwd(spo_dev *d, float *y, const float *table, const int32_t *ids, int n, int dim, int vocab)
{
    (void)d, (void)vocab;
    for (int i = 0; i < n; i++)
        memmove(y + (size_t)i * dim, table + (size_t)ids[i] * dim, (size_t)dim * sizeof *y);
    return SPO_OK;
}
