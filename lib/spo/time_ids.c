/* time_ids.c — SDXL's added time ids (see time_ids.h). */
#include "spo/time_ids.h"

#include "core/err.h"

spo_time_size spo_time_size_default(int height, int width)
{
    return (spo_time_size){{height, width}, {0, 0}, {height, width}};
}

void spo_time_ids(float ids[6], const spo_time_size *s)
{
    const int v[6] = {s->original[0], s->original[1], s->crop[0], s->crop[1], s->target[0], s->target[1]};
    for (int i = 0; i < 6; i++) ids[i] = (float)v[i];
}

int spo_time_ids_check(int addition_time_embed_dim, int pooled_dim, int add_in_features)
{
    long passed = (long)addition_time_embed_dim * 6 + pooled_dim;
    if (passed == add_in_features) return SPO_OK;
    return spo_err(SPO_EINVAL,
                   "the UNet expects an added time embedding vector of length %d, but %ld (6 x %d time ids + %d "
                   "pooled) was made: check unet addition_time_embed_dim and text_encoder_2 projection_dim",
                   add_in_features, passed, addition_time_embed_dim, pooled_dim);
}
