/* unet_lora.c — unmerged LoRA on the UNet's transformer linears (training).
 *
 * For a linear with a LoRA slot (A (r,in), B (out,r), scale = alpha/r):
 *   forward   xa = scale (x A^T)            (m,r)   kept in train mode
 *             y += xa B^T                   (m,out)
 *   backward  dB += dy^T xa;  dxa = scale (dy B);  dA += dxa^T x;  dx += dxa A
 * The frozen W gets no gradient. xa is taken from the forward arena whether
 * the LoRA is enabled or not, so one plan serves the policy pass (on) and
 * the reference pass (off) alike. */
#include <stdio.h>
#include <string.h>

#include "nn/unet_impl.h"

int spo_unet_lora_fwd(spo_unet *u, const ulin *l, float *y, const float *x, int m)
{
    spo_unet_lora *s = l->lora;
    spo_dev *d = u->dev;
    spo_unet_arena *a = &u->fa;
    size_t mark = spo_unet_arena_mark(a);
    float *xa = spo_unet_arena_take(u, a, (size_t)m * s->r);
    if (u->train) s->xa = xa, mark = spo_unet_arena_mark(a);
    float *t = spo_unet_arena_take(u, a, (size_t)m * l->out);
    if (!u->lora_off) {
        RUN(u, spo_linear_fwd(d, xa, x, s->a, NULL, m, l->in, s->r));
        RUN(u, spo_scale(d, xa, xa, s->scale, (size_t)m * s->r));
        RUN(u, spo_linear_fwd(d, t, xa, s->b, NULL, m, s->r, l->out));
        RUN(u, spo_add_fwd(d, y, y, t, (size_t)m * l->out));
    }
    spo_unet_arena_release(a, mark);
    return SPO_OK;
}

int spo_unet_lora_bwd(spo_unet *u, const ulin *l, float *dx, const float *dy, const float *x, int m)
{
    spo_unet_lora *s = l->lora;
    spo_dev *d = u->dev;
    if ((!u->dry && !u->lora_fwd) || (!dx && !s->da && !s->db)) return SPO_OK;
    size_t mark = spo_unet_arena_mark(&u->ba);
    float *dxa;
    SPO_TRY(spo_unet_bwd_zeroed(u, &dxa, (size_t)m * s->r));
    RUN(u, spo_linear_bwd(d, dxa, s->db, NULL, dy, s->xa, s->b, m, s->r, l->out));
    RUN(u, spo_scale(d, dxa, dxa, s->scale, (size_t)m * s->r));
    RUN(u, spo_linear_bwd(d, dx, s->da, NULL, dxa, x, s->a, m, l->in, s->r));
    spo_unet_arena_release(&u->ba, mark);
    return SPO_OK;
}

static ulin *in_xformer(uxformer *t, const float *w)
{
    if (t->pin_l.w == w) return &t->pin_l;
    if (t->pout_l.w == w) return &t->pout_l;
    for (int i = 0; i < t->ntb; i++) {
        utblock *b = &t->tb[i];
        ulin *all[] = {&b->q1, &b->k1, &b->v1, &b->o1, &b->q2, &b->k2, &b->v2, &b->o2, &b->ff0, &b->ff2};
        for (size_t k = 0; k < sizeof all / sizeof *all; k++)
            if (all[k]->w == w) return all[k];
    }
    return NULL;
}

static ulin *find_lin(spo_unet *u, const float *w)
{
    ulin *l = in_xformer(&u->mid_a, w);
    for (int i = 0; i < u->cfg.nblocks && !l; i++) {
        ublock *bl[2] = {&u->down[i], &u->up[i]};
        for (int k = 0; k < 2 && !l; k++)
            for (int j = 0; bl[k]->attn && j < bl[k]->nl && !l; j++) l = in_xformer(&bl[k]->attn[j], w);
    }
    return l;
}

int spo_unet_lora_attach(spo_unet *u, const char *module, spo_unet_lora *slot, int in, int out)
{
    char name[600];
    snprintf(name, sizeof name, "%s.weight", module);
    const spo_param *e = spo_params_find(&u->ps, name);
    ulin *l = e && u->ps.buf ? find_lin(u, u->ps.buf + e->offset) : NULL;
    if (!l) return spo_err(SPO_EINVAL, "the UNet has no transformer linear '%s'", module);
    if (l->in != in || l->out != out)
        return spo_err(SPO_EINVAL, "LoRA module '%s' is %dx%d, the UNet's layer is %dx%d", module, out, in, l->out, l->in);
    if (slot && (slot->r < 1 || !slot->a || !slot->b))
        return spo_err(SPO_EINVAL, "LoRA module '%s': no matrices or rank < 1", module);
    l->lora = slot;
    u->pl_n = 0, u->can_bwd = 0; /* replan: the arenas now hold the LoRA temporaries */
    return SPO_OK;
}

void spo_unet_lora_enable(spo_unet *u, int on) { u->lora_off = !on; }
