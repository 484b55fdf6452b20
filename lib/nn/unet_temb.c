/* unet_temb.c — the UNet's time embedding, with SDXL's added conditioning
 * (diffusers 0.26.1 UNet2DConditionModel.get_time_embed / get_aug_embed):
 *
 *   temb = linear_2(silu(linear_1(sinusoid(t))))                 (n, 4*C0)
 *   text_time models (addition_embed_type "text_time"):
 *     e    = sinusoid_{add_time_dim}(time_ids.flatten())          (n*6, D)
 *     a    = cat[text_embeds (n, P), e.reshape(n, 6*D)]           (n, P + 6*D)
 *     temb = temb + add_embedding.linear_2(silu(linear_1(a)))
 *   temba = silu(temb), what every resnet's time_emb_proj sees.
 * Both sinusoids use the config's flip_sin_to_cos and freq_shift and max
 * period 10000, in float32 like diffusers' Timesteps. Forward only: no
 * parameter here is trained and t is not differentiated, so the backward
 * never comes back here; the added path's temporaries are released at
 * once even in a train forward. */
#include "nn/unet_impl.h"

/* the added embedding of a text_time model, added into u->temb */
static int added(spo_unet *u, const float *text, const float *ids)
{
    spo_dev *d = u->dev;
    const spo_unet_config *c = &u->cfg;
    spo_unet_arena *a = &u->fa;
    int n = u->n, td = 4 * c->block_out[0], nt = c->add_ntime * c->add_time_dim, P = c->add_text_dim;
    size_t m = spo_unet_arena_mark(a);
    float *e = spo_unet_arena_take(u, a, (size_t)n * nt);
    float *cat = spo_unet_arena_take(u, a, (size_t)n * (P + nt));
    float *h1 = spo_unet_arena_take(u, a, (size_t)n * td);
    float *h2 = spo_unet_arena_take(u, a, (size_t)n * td);
    RUN(u, spo_timestep_embed(d, e, ids, n * c->add_ntime, c->add_time_dim, c->flip_sin_to_cos, c->freq_shift,
                              10000.0f));
    RUN(u, spo_concat_fwd(d, cat, text, e, n, P, nt, 1));
    SPO_TRY(spo_unet_lin_fwd(u, &u->a1, h1, cat, n));
    RUN(u, spo_act_fwd(d, SPO_ACT_SILU, h1, h1, (size_t)n * td));
    SPO_TRY(spo_unet_lin_fwd(u, &u->a2, h2, h1, n));
    RUN(u, spo_add_fwd(d, u->temb, u->temb, h2, (size_t)n * td));
    spo_unet_arena_release(a, m);
    return SPO_OK;
}

int spo_unet_temb_fwd(spo_unet *u, const float *t, const float *text, const float *ids)
{
    spo_dev *d = u->dev;
    const spo_unet_config *c = &u->cfg;
    spo_unet_arena *a = &u->fa;
    int n = u->n, c0 = c->block_out[0], td = 4 * c0;
    u->ts = spo_unet_arena_take(u, a, (size_t)n * c0);
    RUN(u, spo_timestep_embed(d, u->ts, t, n, c0, c->flip_sin_to_cos, c->freq_shift, 10000.0f));
    u->e1 = spo_unet_arena_take(u, a, (size_t)n * td);
    SPO_TRY(spo_unet_lin_fwd(u, &u->t1, u->e1, u->ts, n));
    RUN(u, spo_act_fwd(d, SPO_ACT_SILU, u->e1, u->e1, (size_t)n * td));
    u->temb = spo_unet_arena_take(u, a, (size_t)n * td);
    SPO_TRY(spo_unet_lin_fwd(u, &u->t2, u->temb, u->e1, n));
    if (c->add_time_dim) SPO_TRY(added(u, text, ids));
    u->temba = spo_unet_arena_take(u, a, (size_t)n * td);
    RUN(u, spo_act_fwd(d, SPO_ACT_SILU, u->temba, u->temb, (size_t)n * td));
    return SPO_OK;
}
