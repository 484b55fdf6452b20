/* vae.c — AutoencoderKL decoder: config, parameter table, load (see vae.h).
 * The forward pass is in vae_decode.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/jsoncfg.h"
#include "nn/vae_impl.h"

/* ---- config ------------------------------------------------------------ */

/* An AutoencoderKL config.json, diffusers 0.26.1 defaults for absent keys;
 * errors name the file and the key. */
static int parse_config(spo_vae_config *c, const cJSON *j)
{
    int n;
    const char *s, *types[SPO_VAE_MAX_BLOCKS + 1];
    const char *file = spo_cfg_name(j);
    memset(c, 0, sizeof *c);
    SPO_TRY(spo_cfg_str(j, "_class_name", "AutoencoderKL", &s));
    if (strcmp(s, "AutoencoderKL")) return spo_err(SPO_EINVAL, "%s: '_class_name' %s is not AutoencoderKL", file, s);
    SPO_TRY(spo_cfg_int_array(j, "block_out_channels", c->ch, SPO_VAE_MAX_BLOCKS, &c->nblocks));
    if (!c->nblocks) c->ch[0] = 64, c->nblocks = 1;
    SPO_TRY(spo_cfg_str_array(j, "up_block_types", types, SPO_VAE_MAX_BLOCKS + 1, &n));
    if (!n) types[0] = "UpDecoderBlock2D", n = 1;
    if (n != c->nblocks)
        return spo_err(SPO_EINVAL, "%s: 'up_block_types' has %d entries for %d block_out_channels", file, n,
                       c->nblocks);
    for (int i = 0; i < n; i++)
        if (strcmp(types[i], "UpDecoderBlock2D"))
            return spo_err(SPO_EINVAL, "%s: 'up_block_types' entry %s is unsupported (only UpDecoderBlock2D)", file,
                           types[i]);
    SPO_TRY(spo_cfg_str(j, "act_fn", "silu", &s));
    if (strcmp(s, "silu")) return spo_err(SPO_EINVAL, "%s: 'act_fn' %s is unsupported (only silu)", file, s);
    SPO_TRY(spo_cfg_str(j, "norm_type", "group", &s));
    if (strcmp(s, "group")) return spo_err(SPO_EINVAL, "%s: 'norm_type' %s is unsupported (only group)", file, s);
    const spo_cfg_intkey ints[] = {
        {"layers_per_block", 1, &c->layers_per_block},
        {"latent_channels", 4, &c->latent_channels},
        {"out_channels", 3, &c->out_channels},
        {"norm_num_groups", 32, &c->groups},
    };
    SPO_TRY(spo_cfg_ints(j, ints, (int)(sizeof ints / sizeof *ints)));
    SPO_TRY(spo_cfg_bool(j, "mid_block_add_attention", 1, &c->mid_attn));
    SPO_TRY(spo_cfg_float(j, "scaling_factor", 0.18215f, &c->scaling_factor));
    /* keys of later diffusers releases that would change the decode */
    float shift;
    int use;
    SPO_TRY(spo_cfg_float(j, "shift_factor", 0, &shift));
    if (shift != 0) return spo_err(SPO_EINVAL, "%s: 'shift_factor' is unsupported", file);
    const char *must_true[] = {"use_quant_conv", "use_post_quant_conv"};
    for (int i = 0; i < 2; i++) {
        SPO_TRY(spo_cfg_bool(j, must_true[i], 1, &use));
        if (!use) return spo_err(SPO_EINVAL, "%s: '%s' false is unsupported", file, must_true[i]);
    }
    return SPO_OK;
}

static int check_config(const spo_vae_config *c)
{
    if (c->nblocks < 1 || c->nblocks > SPO_VAE_MAX_BLOCKS)
        return spo_err(SPO_EINVAL, "vae: 'block_out_channels' must have 1 to %d entries", SPO_VAE_MAX_BLOCKS);
    if (c->layers_per_block < 0 || c->layers_per_block > 64)
        return spo_err(SPO_EINVAL, "vae: 'layers_per_block' %d is out of range", c->layers_per_block);
    if (c->latent_channels < 1 || c->latent_channels > 4096)
        return spo_err(SPO_EINVAL, "vae: 'latent_channels' %d is out of range", c->latent_channels);
    if (c->out_channels < 1 || c->out_channels > 4096)
        return spo_err(SPO_EINVAL, "vae: 'out_channels' %d is out of range", c->out_channels);
    if (c->groups < 1 || c->groups > 65536) return spo_err(SPO_EINVAL, "vae: 'norm_num_groups' %d is out of range", c->groups);
    for (int i = 0; i < c->nblocks; i++)
        if (c->ch[i] < 1 || c->ch[i] > 65536 || c->ch[i] % c->groups)
            return spo_err(SPO_EINVAL, "vae: 'block_out_channels' entry %d is not a multiple of norm_num_groups %d",
                           c->ch[i], c->groups);
    if (!(c->scaling_factor > 0) && !(c->scaling_factor < 0))
        return spo_err(SPO_EINVAL, "vae: 'scaling_factor' must be non-zero");
    return SPO_OK;
}

/* ---- parameter table ------------------------------------------------------ */

#define ADD(slot, d0, d1, d2, d3, ...)                                                 \
    do {                                                                             \
        if ((rc = spo_params_addf(ps, slot, d0, d1, d2, d3, __VA_ARGS__))) return rc; \
    } while (0)

static int declare_resnet(spo_params *ps, vae_resnet *r, int cin, int cout, const char *pre)
{
    int rc;
    r->cin = cin;
    r->cout = cout;
    ADD(&r->n1w, cin, 0, 0, 0, "%s.norm1.weight", pre);
    ADD(&r->n1b, cin, 0, 0, 0, "%s.norm1.bias", pre);
    ADD(&r->c1w, cout, cin, 3, 3, "%s.conv1.weight", pre);
    ADD(&r->c1b, cout, 0, 0, 0, "%s.conv1.bias", pre);
    ADD(&r->n2w, cout, 0, 0, 0, "%s.norm2.weight", pre);
    ADD(&r->n2b, cout, 0, 0, 0, "%s.norm2.bias", pre);
    ADD(&r->c2w, cout, cout, 3, 3, "%s.conv2.weight", pre);
    ADD(&r->c2b, cout, 0, 0, 0, "%s.conv2.bias", pre);
    if (cin != cout) {
        ADD(&r->scw, cout, cin, 1, 1, "%s.conv_shortcut.weight", pre);
        ADD(&r->scb, cout, 0, 0, 0, "%s.conv_shortcut.bias", pre);
    }
    return SPO_OK;
}

/* one linear of the mid-block attention, also accepted under its legacy name */
static int declare_attn_linear(spo_params *ps, float **w, float **b, int c, const char *name, const char *legacy)
{
    static const char pre[] = "decoder.mid_block.attentions.0.";
    char n[128], l[128];
    int rc;
    const char *sfx[2] = {"weight", "bias"};
    float **slot[2] = {w, b};
    for (int i = 0; i < 2; i++) {
        snprintf(n, sizeof n, "%s%s.%s", pre, name, sfx[i]);
        snprintf(l, sizeof l, "%s%s.%s", pre, legacy, sfx[i]);
        if ((rc = spo_params_add(ps, slot[i], n, c, i ? 0 : c, 0, 0))) return rc;
        if ((rc = spo_params_alias(ps, n, l))) return rc;
        if (i == 0 && (rc = spo_params_unit_dims(ps, n))) return rc;
    }
    return SPO_OK;
}

static int declare(void *model, spo_params *ps)
{
    spo_vae *v = model;
    const spo_vae_config *c = &v->cfg;
    SPO_TRY(check_config(c));
    int rc, lat = c->latent_channels, top = c->ch[c->nblocks - 1];
    char pre[96];
    ADD(&v->pqw, lat, lat, 1, 1, "post_quant_conv.weight");
    ADD(&v->pqb, lat, 0, 0, 0, "post_quant_conv.bias");
    ADD(&v->ciw, top, lat, 3, 3, "decoder.conv_in.weight");
    ADD(&v->cib, top, 0, 0, 0, "decoder.conv_in.bias");
    for (int i = 0; i < 2; i++) {
        snprintf(pre, sizeof pre, "decoder.mid_block.resnets.%d", i);
        if ((rc = declare_resnet(ps, &v->mid[i], top, top, pre))) return rc;
    }
    if (c->mid_attn) {
        vae_attn *a = &v->attn;
        ADD(&a->gnw, top, 0, 0, 0, "decoder.mid_block.attentions.0.group_norm.weight");
        ADD(&a->gnb, top, 0, 0, 0, "decoder.mid_block.attentions.0.group_norm.bias");
        if ((rc = declare_attn_linear(ps, &a->qw, &a->qb, top, "to_q", "query"))) return rc;
        if ((rc = declare_attn_linear(ps, &a->kw, &a->kb, top, "to_k", "key"))) return rc;
        if ((rc = declare_attn_linear(ps, &a->vw, &a->vb, top, "to_v", "value"))) return rc;
        if ((rc = declare_attn_linear(ps, &a->ow, &a->ob, top, "to_out.0", "proj_attn"))) return rc;
    }
    int prev = top, nres = c->layers_per_block + 1;
    for (int i = 0; i < c->nblocks; i++) {
        int out = c->ch[c->nblocks - 1 - i];
        vae_up *u = &v->up[i];
        if (!(u->res = calloc((size_t)nres, sizeof *u->res))) return spo_err(SPO_EIO, "out of memory");
        for (int j = 0; j < nres; j++) {
            snprintf(pre, sizeof pre, "decoder.up_blocks.%d.resnets.%d", i, j);
            if ((rc = declare_resnet(ps, &u->res[j], j ? out : prev, out, pre))) return rc;
        }
        if (i < c->nblocks - 1) {
            ADD(&u->upw, out, out, 3, 3, "decoder.up_blocks.%d.upsamplers.0.conv.weight", i);
            ADD(&u->upb, out, 0, 0, 0, "decoder.up_blocks.%d.upsamplers.0.conv.bias", i);
        }
        prev = out;
    }
    ADD(&v->now, c->ch[0], 0, 0, 0, "decoder.conv_norm_out.weight");
    ADD(&v->nob, c->ch[0], 0, 0, 0, "decoder.conv_norm_out.bias");
    ADD(&v->cow, c->out_channels, c->ch[0], 3, 3, "decoder.conv_out.weight");
    ADD(&v->cob, c->out_channels, 0, 0, 0, "decoder.conv_out.bias");
    /* the encoder half of the file is not ours */
    if ((rc = spo_params_ignore(ps, "encoder.")) || (rc = spo_params_ignore(ps, "quant_conv."))) return rc;
    return SPO_OK;
}

static void release(void *model) { spo_vae_free(model); }
static const spo_params_kind kind = {sizeof(spo_vae), offsetof(spo_vae, ps), declare, release};

/* ---- public --------------------------------------------------------------- */

/* Zeroed weights for cfg (a table only without dev). */
int spo_vae_create(spo_vae **out, const spo_vae_config *cfg, spo_dev *dev)
{
    int rc;
    *out = spo_params_new(&kind, &(spo_vae){.cfg = *cfg, .dev = dev}, dev, NULL, &rc);
    return rc;
}

static int read_config(void *c, const cJSON *j) { return spo_vae_config_from_json(c, j); }

/* dir/name for the first name that is a file; SPO_EINVAL listing them if none */
static int find_weights(const char *dir, char *buf, size_t n)
{
    static const char *const names[] = {"diffusion_pytorch_model.safetensors",
                                        "diffusion_pytorch_model.fp16.safetensors"};
    for (int i = 0; i < 2; i++) {
        snprintf(buf, n, "%s/%s", dir, names[i]);
        if (access(buf, R_OK) == 0) return SPO_OK;
    }
    return spo_err(SPO_EINVAL, "%s: no weights (%s or %s)", dir, names[0], names[1]);
}

int spo_vae_config_load(spo_vae_config *c, const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    return spo_cfg_read(path, read_config, c);
}

int spo_vae_load(spo_vae **out, const char *dir, spo_dev *dev)
{
    *out = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    spo_vae_config cfg;
    SPO_TRY(spo_cfg_read(path, read_config, &cfg));
    SPO_TRY(find_weights(dir, path, sizeof path));
    int rc;
    *out = spo_params_new(&kind, &(spo_vae){.cfg = cfg, .dev = dev}, dev, path, &rc);
    return rc;
}

int spo_vae_randn(spo_vae *v, uint64_t seed, float std) { return spo_params_randn(&v->ps, seed, std); }

const spo_vae_config *spo_vae_cfg(const spo_vae *v) { return &v->cfg; }

int spo_vae_factor(const spo_vae *v) { return 1 << (v->cfg.nblocks - 1); }

void spo_vae_free(spo_vae *v)
{
    if (!v) return;
    for (int i = 0; i < SPO_VAE_MAX_BLOCKS; i++) free(v->up[i].res);
    if (v->arena) spo_dev_free(v->dev, v->arena);
    spo_params_free(&v->ps);
    free(v);
}

spo_params *spo_vae_params(spo_vae *v) { return &v->ps; }

int spo_vae_config_from_json(spo_vae_config *c, const cJSON *j)
{
    SPO_TRY(parse_config(c, j));
    int rc = check_config(c);
    return rc ? spo_err_prefix(rc, "%s", spo_cfg_name(j)) : SPO_OK;
}
