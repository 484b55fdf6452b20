/* unet_params.c — declare every UNet tensor with its exact diffusers name
 * and shape into the parameter table, and lay out the module structs
 * (channels of every resnet, attention and sampler) from the config, the
 * way diffusers 0.26.1 UNet2DConditionModel.__init__ builds them. */
#include <stdio.h>
#include <stdlib.h>

#include "nn/unet_impl.h"

/* b = "pre.suf" (b holds 256 chars; names are far shorter) */
static const char *nm(char *b, const char *pre, const char *suf)
{
    if (snprintf(b, 256, "%s.%s", pre, suf) >= 256) b[0] = 0;
    return b;
}

/* b = formatted block prefix */
static const char *pf(char *b, const char *fmt, int i, int j)
{
    if (snprintf(b, 256, fmt, i, j) >= 256) b[0] = 0;
    return b;
}

static int p_conv(spo_unet *u, uconv *c, const char *pre, int cin, int cout, int k, int stride, int pad)
{
    c->cin = cin, c->cout = cout, c->k = k, c->stride = stride, c->pad = pad;
    SPO_TRY(spo_params_addf(&u->ps, &c->w, cout, cin, k, k, "%s.weight", pre));
    return spo_params_addf(&u->ps, &c->b, cout, 0, 0, 0, "%s.bias", pre);
}

static int p_lin(spo_unet *u, ulin *l, const char *pre, int in, int out, int bias)
{
    l->in = in, l->out = out, l->b = NULL;
    SPO_TRY(spo_params_addf(&u->ps, &l->w, out, in, 0, 0, "%s.weight", pre));
    return bias ? spo_params_addf(&u->ps, &l->b, out, 0, 0, 0, "%s.bias", pre) : SPO_OK;
}

static int p_norm(spo_unet *u, unorm *n, const char *pre, int c)
{
    SPO_TRY(spo_params_addf(&u->ps, &n->g, c, 0, 0, 0, "%s.weight", pre));
    return spo_params_addf(&u->ps, &n->b, c, 0, 0, 0, "%s.bias", pre);
}

/* ResnetBlock2D `pre` (e.g. "down_blocks.0.resnets.1") */
static int p_resnet(spo_unet *u, uresnet *r, const char *pre, int cin, int cout)
{
    char b[256];
    int tdim = 4 * u->cfg.block_out[0];
    r->cin = cin, r->cout = cout, r->has_sc = cin != cout;
    SPO_TRY(p_norm(u, &r->n1, nm(b, pre, "norm1"), cin));
    SPO_TRY(p_conv(u, &r->c1, nm(b, pre, "conv1"), cin, cout, 3, 1, 1));
    SPO_TRY(p_lin(u, &r->temb, nm(b, pre, "time_emb_proj"), tdim, cout, 1));
    SPO_TRY(p_norm(u, &r->n2, nm(b, pre, "norm2"), cout));
    SPO_TRY(p_conv(u, &r->c2, nm(b, pre, "conv2"), cout, cout, 3, 1, 1));
    if (r->has_sc) SPO_TRY(p_conv(u, &r->sc, nm(b, pre, "conv_shortcut"), cin, cout, 1, 1, 0));
    return SPO_OK;
}

/* BasicTransformerBlock `pre` */
static int p_tblock(spo_unet *u, utblock *t, const char *pre, int c)
{
    char b[256];
    int d = u->cfg.cross_dim;
    SPO_TRY(p_norm(u, &t->ln1, nm(b, pre, "norm1"), c));
    SPO_TRY(p_lin(u, &t->q1, nm(b, pre, "attn1.to_q"), c, c, 0));
    SPO_TRY(p_lin(u, &t->k1, nm(b, pre, "attn1.to_k"), c, c, 0));
    SPO_TRY(p_lin(u, &t->v1, nm(b, pre, "attn1.to_v"), c, c, 0));
    SPO_TRY(p_lin(u, &t->o1, nm(b, pre, "attn1.to_out.0"), c, c, 1));
    SPO_TRY(p_norm(u, &t->ln2, nm(b, pre, "norm2"), c));
    SPO_TRY(p_lin(u, &t->q2, nm(b, pre, "attn2.to_q"), c, c, 0));
    SPO_TRY(p_lin(u, &t->k2, nm(b, pre, "attn2.to_k"), d, c, 0));
    SPO_TRY(p_lin(u, &t->v2, nm(b, pre, "attn2.to_v"), d, c, 0));
    SPO_TRY(p_lin(u, &t->o2, nm(b, pre, "attn2.to_out.0"), c, c, 1));
    SPO_TRY(p_norm(u, &t->ln3, nm(b, pre, "norm3"), c));
    SPO_TRY(p_lin(u, &t->ff0, nm(b, pre, "ff.net.0.proj"), c, 8 * c, 1));
    SPO_TRY(p_lin(u, &t->ff2, nm(b, pre, "ff.net.2"), 4 * c, c, 1));
    return SPO_OK;
}

/* Transformer2DModel `pre` (e.g. "mid_block.attentions.0"); inner dim = c */
static int p_xformer(spo_unet *u, uxformer *t, const char *pre, int c, int heads, int ntb)
{
    char b[256];
    t->c = c, t->heads = heads, t->ntb = ntb, t->linear = u->cfg.linear_proj;
    t->tb = calloc(ntb, sizeof *t->tb);
    if (!t->tb) return spo_err(SPO_EIO, "out of memory");
    SPO_TRY(p_norm(u, &t->gn, nm(b, pre, "norm"), c));
    nm(b, pre, "proj_in");
    SPO_TRY(t->linear ? p_lin(u, &t->pin_l, b, c, c, 1) : p_conv(u, &t->pin_c, b, c, c, 1, 1, 0));
    for (int i = 0; i < ntb; i++) {
        char bb[256];
        if (snprintf(bb, sizeof bb, "%s.transformer_blocks.%d", pre, i) >= (int)sizeof bb) bb[0] = 0;
        SPO_TRY(p_tblock(u, &t->tb[i], bb, c));
    }
    nm(b, pre, "proj_out");
    return t->linear ? p_lin(u, &t->pout_l, b, c, c, 1) : p_conv(u, &t->pout_c, b, c, c, 1, 1, 0);
}

/* layer j of `kind` ("down"/"up") block i: a resnet cin -> out, then the
 * block's attention (if it has one) with the heads of down block r */
static int p_layer(spo_unet *u, ublock *bl, const char *kind, int i, int j, int cin, int out, int r)
{
    char b[256];
    snprintf(b, sizeof b, "%s_blocks.%d.resnets.%d", kind, i, j);
    SPO_TRY(p_resnet(u, &bl->res[j], b, cin, out));
    if (!bl->attn) return SPO_OK;
    snprintf(b, sizeof b, "%s_blocks.%d.attentions.%d", kind, i, j);
    return p_xformer(u, &bl->attn[j], b, out, u->cfg.heads[r], u->cfg.tlayers[r]);
}

/* the 3x3 down- (stride 2) or up-sampler conv of block i */
static int p_sampler(spo_unet *u, ublock *bl, const char *fmt, int i, int c, int stride)
{
    char b[256];
    return p_conv(u, &bl->samp, pf(b, fmt, i, 0), c, c, 3, stride, 1);
}

static int alloc_block(ublock *bl, int nl, int attn, int up)
{
    bl->nl = nl;
    bl->res = calloc(nl, sizeof *bl->res);
    bl->attn = attn ? calloc(nl, sizeof *bl->attn) : NULL;
    if (up) {
        bl->cat = calloc(nl, sizeof *bl->cat);
        bl->skip_idx = calloc(nl, sizeof *bl->skip_idx);
        bl->hin_c = calloc(nl, sizeof *bl->hin_c);
    }
    if (!bl->res || (attn && !bl->attn) || (up && (!bl->cat || !bl->skip_idx || !bl->hin_c)))
        return spo_err(SPO_EIO, "out of memory");
    return SPO_OK;
}

int spo_unet_declare(spo_unet *u)
{
    const spo_unet_config *c = &u->cfg;
    int nb = c->nblocks, c0 = c->block_out[0];
    SPO_TRY(p_conv(u, &u->conv_in, "conv_in", c->in_channels, c0, 3, 1, 1));
    SPO_TRY(p_lin(u, &u->t1, "time_embedding.linear_1", c0, 4 * c0, 1));
    SPO_TRY(p_lin(u, &u->t2, "time_embedding.linear_2", 4 * c0, 4 * c0, 1));
    if (c->add_time_dim) { /* TimestepEmbedding(projection_class_embeddings_input_dim, 4*C0) */
        SPO_TRY(p_lin(u, &u->a1, "add_embedding.linear_1", c->add_text_dim + c->add_ntime * c->add_time_dim, 4 * c0, 1));
        SPO_TRY(p_lin(u, &u->a2, "add_embedding.linear_2", 4 * c0, 4 * c0, 1));
    }

    for (int i = 0; i < nb; i++) { /* down */
        ublock *bl = &u->down[i];
        int in = i ? c->block_out[i - 1] : c0, out = c->block_out[i];
        SPO_TRY(alloc_block(bl, c->layers[i], c->down_attn[i], 0));
        for (int j = 0; j < bl->nl; j++) SPO_TRY(p_layer(u, bl, "down", i, j, j ? out : in, out, i));
        if ((bl->has_samp = i < nb - 1)) SPO_TRY(p_sampler(u, bl, "down_blocks.%d.downsamplers.0.conv", i, out, 2));
    }

    int cm = c->block_out[nb - 1]; /* mid */
    SPO_TRY(p_resnet(u, &u->mid_r[0], "mid_block.resnets.0", cm, cm));
    SPO_TRY(p_xformer(u, &u->mid_a, "mid_block.attentions.0", cm, c->heads[nb - 1], c->tlayers[nb - 1]));
    SPO_TRY(p_resnet(u, &u->mid_r[1], "mid_block.resnets.1", cm, cm));

    int prev = cm;
    for (int i = 0; i < nb; i++) { /* up: block i mirrors down block nb-1-i */
        ublock *bl = &u->up[i];
        int r = nb - 1 - i, out = c->block_out[r], in = c->block_out[r ? r - 1 : 0];
        SPO_TRY(alloc_block(bl, c->layers[r] + 1, c->up_attn[i], 1));
        for (int j = 0; j < bl->nl; j++) {
            int skip_c = j == bl->nl - 1 ? in : out, hin = j ? out : prev;
            bl->hin_c[j] = hin;
            SPO_TRY(p_layer(u, bl, "up", i, j, hin + skip_c, out, r));
        }
        if ((bl->has_samp = i < nb - 1)) SPO_TRY(p_sampler(u, bl, "up_blocks.%d.upsamplers.0.conv", i, out, 1));
        prev = out;
    }

    SPO_TRY(p_norm(u, &u->gn_out, "conv_norm_out", c0));
    return p_conv(u, &u->conv_out, "conv_out", c0, c->out_channels, 3, 1, 1);
}

/* free what spo_unet_declare allocated (the table-only model of a check) */
static void undeclare(spo_unet *u)
{
    for (int i = 0; i < SPO_UNET_MAXB; i++) {
        ublock *bl[2] = {&u->down[i], &u->up[i]};
        for (int k = 0; k < 2; k++) {
            for (int j = 0; bl[k]->attn && j < bl[k]->nl; j++) free(bl[k]->attn[j].tb);
            free(bl[k]->res), free(bl[k]->attn), free(bl[k]->cat), free(bl[k]->skip_idx), free(bl[k]->hin_c);
        }
    }
    free(u->mid_a.tb);
    spo_params_free(&u->ps);
}

int spo_unet_check_weights(const spo_unet_config *cfg, const char *path)
{
    SPO_TRY(spo_unet_config_check(cfg));
    spo_unet *u = calloc(1, sizeof *u);
    if (!u) return spo_err(SPO_EIO, "out of memory");
    u->cfg = *cfg;
    spo_params_init(&u->ps);
    int rc = spo_unet_declare(u);
    if (rc) rc = spo_err_prefix(rc, "%s", path);
    else rc = spo_params_check_file(&u->ps, path, NULL, 0);
    undeclare(u);
    free(u);
    return rc;
}
