/* unet_arena.c — the UNet's two activation arenas (forward and backward):
 * bump allocation from one device buffer, sized by a dry run. Used by
 * unet.c, unet_attn.c and unet_resnet.c; uses nothing of theirs. */
#include <stddef.h>

#include "nn/unet_impl.h"

float *spo_unet_arena_take(spo_unet *u, spo_unet_arena *a, size_t n)
{
    size_t o = a->top;
    a->top += (n + 15) & ~(size_t)15; /* 64-byte aligned */
    if (a->top > a->peak) a->peak = a->top;
    if (u->dry) return NULL;
    if (a->top > a->cap) {
        a->bad = 1;
        return NULL;
    }
    return a->base + o;
}

int spo_unet_bwd_zeroed(spo_unet *u, float **p, size_t n)
{
    *p = spo_unet_arena_take(u, &u->ba, n);
    RUN(u, spo_dev_zero(u->dev, *p, n));
    return SPO_OK;
}

