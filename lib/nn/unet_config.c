/* unet_config.c — read and check a diffusers UNet2DConditionModel config
 * (typed reads through lib/io/jsoncfg.h, so messages name the file and key).
 *
 * Absent keys take the diffusers 0.26.1 defaults (the SD v1.5 values).
 * The SD 1.x and SDXL families are supported (SDXL: per-level heads and
 * transformer depths, linear projections, addition_embed_type
 * "text_time"); every other key that would change the architecture must
 * hold its default, and a value we do not implement is SPO_EINVAL naming
 * the key. */
#include <stdio.h>
#include <string.h>

#include "io/jsoncfg.h"
#include "nn/unet.h"

#define MAXL 8 /* matches UNET_MAXL in unet_impl.h */
static const cJSON *item(const cJSON *j, const char *key)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(j, key);
    return o && !cJSON_IsNull(o) ? o : NULL;
}

static int unsupported(const cJSON *j, const char *key, const char *only)
{
    return spo_err(SPO_EINVAL, "%s: '%s' is not supported (only %s)", spo_cfg_name(j), key, only);
}

/* an integer for every block, or a list of nb integers; absent: def */
static int per_block(const cJSON *j, const char *key, int *v, int nb, int def)
{
    const cJSON *o = item(j, key);
    if (!o || cJSON_IsNumber(o)) {
        SPO_TRY(spo_cfg_int(j, key, def, &v[0]));
        for (int i = 1; i < nb; i++) v[i] = v[0];
        return SPO_OK;
    }
    int n;
    SPO_TRY(spo_cfg_int_array(j, key, v, SPO_UNET_MAXB, &n));
    if (n != nb) return spo_err(SPO_EINVAL, "%s: '%s' has %d entries for %d blocks", spo_cfg_name(j), key, n, nb);
    return SPO_OK;
}

static int want_null(const cJSON *j, const char *key) { return item(j, key) ? unsupported(j, key, "null") : SPO_OK; }

static int want_str(const cJSON *j, const char *key, const char *want)
{
    const char *s;
    SPO_TRY(spo_cfg_str(j, key, want, &s));
    if (strcmp(s, want)) {
        char b[128];
        snprintf(b, sizeof b, "\"%s\"", want);
        return unsupported(j, key, b);
    }
    return SPO_OK;
}

static int want_num(const cJSON *j, const char *key, double want)
{
    double v;
    SPO_TRY(spo_cfg_double(j, key, want, &v));
    if (v != want) {
        char b[64];
        snprintf(b, sizeof b, "%g", want);
        return unsupported(j, key, b);
    }
    return SPO_OK;
}

/* false, or a per-block list of false */
static int want_false(const cJSON *j, const char *key)
{
    const cJSON *o = item(j, key), *e;
    if (!o || cJSON_IsFalse(o)) return SPO_OK;
    int ok = cJSON_IsArray(o);
    if (ok) cJSON_ArrayForEach(e, o) ok = ok && cJSON_IsFalse(e);
    return ok ? SPO_OK : unsupported(j, key, "false");
}

/* addition_embed_type: null, or "text_time" with its two sizes */
static int added_cond(spo_unet_config *c, const cJSON *j)
{
    static const char *keys[2] = {"addition_time_embed_dim", "projection_class_embeddings_input_dim"};
    if (!item(j, "addition_embed_type")) {
        for (int i = 0; i < 2; i++) SPO_TRY(want_null(j, keys[i]));
        return SPO_OK;
    }
    const char *s;
    SPO_TRY(spo_cfg_str(j, "addition_embed_type", "", &s));
    if (strcmp(s, "text_time")) return unsupported(j, "addition_embed_type", "null, \"text_time\"");
    int v[2];
    for (int i = 0; i < 2; i++) {
        if (!item(j, keys[i]))
            return spo_err(SPO_EINVAL, "%s: addition_embed_type \"text_time\" needs '%s'", spo_cfg_name(j), keys[i]);
        SPO_TRY(spo_cfg_int(j, keys[i], 0, &v[i]));
        if (v[i] < 1 || v[i] > SPO_UNET_MAXCH * (SPO_UNET_TIME_IDS + 1))
            return spo_err(SPO_EINVAL, "%s: '%s'=%d is out of range", spo_cfg_name(j), keys[i], v[i]);
    }
    c->add_time_dim = v[0], c->add_ntime = SPO_UNET_TIME_IDS;
    c->add_text_dim = v[1] - SPO_UNET_TIME_IDS * v[0];
    if (c->add_text_dim < 1 || c->add_text_dim > SPO_UNET_MAXCH)
        return spo_err(SPO_EINVAL, "%s: 'projection_class_embeddings_input_dim' %d leaves a pooled text embedding of "
                       "%d (not in 1..%d) after %d time ids of 'addition_time_embed_dim' %d", spo_cfg_name(j), v[1],
                       c->add_text_dim, SPO_UNET_MAXCH, SPO_UNET_TIME_IDS, v[0]);
    return SPO_OK;
}

/* block type list -> attn flags; returns the count in *nb (unchanged if absent) */
static int block_types(const cJSON *j, const char *key, int *attn, int *nb, const char *plain, const char *cross)
{
    const char *s[SPO_UNET_MAXB];
    int n;
    SPO_TRY(spo_cfg_str_array(j, key, s, SPO_UNET_MAXB, &n));
    if (!item(j, key)) return SPO_OK;
    if (n < 1) return spo_err(SPO_EINVAL, "%s: '%s' is empty", spo_cfg_name(j), key);
    for (int i = 0; i < n; i++) {
        if (!strcmp(s[i], plain)) attn[i] = 0;
        else if (!strcmp(s[i], cross)) attn[i] = 1;
        else
            return spo_err(SPO_EINVAL, "%s: '%s' entry %d \"%s\" is not supported (only %s, %s)", spo_cfg_name(j), key,
                           i, s[i], plain, cross);
    }
    *nb = n;
    return SPO_OK;
}

int spo_unet_config_from_json(spo_unet_config *c, const cJSON *j)
{
    static const char *nulls[] = {"class_embed_type",
                                  "num_class_embeds", "encoder_hid_dim", "encoder_hid_dim_type",
                                  "time_cond_proj_dim", "time_embedding_act_fn", "time_embedding_dim",
                                  "timestep_post_act",
                                  "cross_attention_norm", "mid_block_only_cross_attention", "num_attention_heads",
                                  "reverse_transformer_layers_per_block"};
    static const char *falses[] = {"center_input_sample", "class_embeddings_concat", "dual_cross_attention",
                                   "only_cross_attention", "resnet_skip_time_act"};
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < sizeof nulls / sizeof *nulls; i++) SPO_TRY(want_null(j, nulls[i]));
    for (size_t i = 0; i < sizeof falses / sizeof *falses; i++) SPO_TRY(want_false(j, falses[i]));
    SPO_TRY(want_str(j, "act_fn", "silu"));
    SPO_TRY(want_str(j, "attention_type", "default"));
    SPO_TRY(want_str(j, "mid_block_type", "UNetMidBlock2DCrossAttn"));
    SPO_TRY(want_str(j, "resnet_time_scale_shift", "default"));
    SPO_TRY(want_str(j, "time_embedding_type", "positional"));
    SPO_TRY(want_num(j, "conv_in_kernel", 3));
    SPO_TRY(want_num(j, "conv_out_kernel", 3));
    SPO_TRY(want_num(j, "downsample_padding", 1));
    SPO_TRY(want_num(j, "dropout", 0));
    SPO_TRY(want_num(j, "mid_block_scale_factor", 1));
    SPO_TRY(want_num(j, "resnet_out_scale_factor", 1));
    /* upcast_attention only changes fp16 numerics; fp32 compute is the same either way */

    SPO_TRY(spo_cfg_int(j, "in_channels", 4, &c->in_channels));
    SPO_TRY(spo_cfg_int(j, "out_channels", 4, &c->out_channels));
    SPO_TRY(spo_cfg_int(j, "sample_size", 64, &c->sample_size));
    static const int sd[4] = {320, 640, 1280, 1280};
    SPO_TRY(spo_cfg_int_array(j, "block_out_channels", c->block_out, SPO_UNET_MAXB, &c->nblocks));
    if (!item(j, "block_out_channels")) c->nblocks = 4, memcpy(c->block_out, sd, sizeof sd);
    if (c->nblocks < 1) return spo_err(SPO_EINVAL, "%s: 'block_out_channels' is empty", spo_cfg_name(j));
    int nb = c->nblocks, nd = 4, nu = 4;
    for (int i = 0; i < 4; i++) c->down_attn[i] = i < 3, c->up_attn[i] = i > 0;
    SPO_TRY(block_types(j, "down_block_types", c->down_attn, &nd, "DownBlock2D", "CrossAttnDownBlock2D"));
    SPO_TRY(block_types(j, "up_block_types", c->up_attn, &nu, "UpBlock2D", "CrossAttnUpBlock2D"));
    if (nd != nb)
        return spo_err(SPO_EINVAL, "%s: 'down_block_types' has %d entries, 'block_out_channels' %d", spo_cfg_name(j),
                       nd, nb);
    if (nu != nb)
        return spo_err(SPO_EINVAL, "%s: 'up_block_types' has %d entries, 'block_out_channels' %d", spo_cfg_name(j), nu,
                       nb);
    SPO_TRY(per_block(j, "layers_per_block", c->layers, nb, 2));
    SPO_TRY(per_block(j, "attention_head_dim", c->heads, nb, 8)); /* a head COUNT in diffusers' UNet */
    SPO_TRY(per_block(j, "transformer_layers_per_block", c->tlayers, nb, 1));
    if (item(j, "cross_attention_dim") && !cJSON_IsNumber(item(j, "cross_attention_dim")))
        return unsupported(j, "cross_attention_dim", "one integer");
    SPO_TRY(spo_cfg_int(j, "cross_attention_dim", 1280, &c->cross_dim));
    SPO_TRY(spo_cfg_int(j, "norm_num_groups", 32, &c->groups));
    SPO_TRY(spo_cfg_float(j, "norm_eps", 1e-5f, &c->eps));
    SPO_TRY(spo_cfg_bool(j, "flip_sin_to_cos", 1, &c->flip_sin_to_cos));
    SPO_TRY(spo_cfg_float(j, "freq_shift", 0, &c->freq_shift));
    SPO_TRY(spo_cfg_bool(j, "use_linear_projection", 0, &c->linear_proj));
    SPO_TRY(added_cond(c, j));
    int rc = spo_unet_config_check(c);
    return rc ? spo_err_prefix(rc, "%s", spo_cfg_name(j)) : SPO_OK;
}

/* v in lo..hi, else SPO_EINVAL naming the key (and the block when i >= 0) */
static int in_range(const char *key, int i, int v, int lo, int hi)
{
    if (v >= lo && v <= hi) return SPO_OK;
    if (i < 0) return spo_err(SPO_EINVAL, "'%s'=%d is not in %d..%d", key, v, lo, hi);
    return spo_err(SPO_EINVAL, "'%s'[%d]=%d is not in %d..%d", key, i, v, lo, hi);
}

int spo_unet_config_check(const spo_unet_config *c)
{
    if (c->nblocks < 1 || c->nblocks > SPO_UNET_MAXB)
        return spo_err(SPO_EINVAL, "'block_out_channels' must have 1..%d entries", SPO_UNET_MAXB);
    SPO_TRY(in_range("in_channels", -1, c->in_channels, 1, SPO_UNET_MAXCH));
    SPO_TRY(in_range("out_channels", -1, c->out_channels, 1, SPO_UNET_MAXCH));
    SPO_TRY(in_range("sample_size", -1, c->sample_size, 1, SPO_UNET_MAXCH));
    SPO_TRY(in_range("norm_num_groups", -1, c->groups, 1, SPO_UNET_MAXCH));
    SPO_TRY(in_range("cross_attention_dim", -1, c->cross_dim, 1, SPO_UNET_MAXCH));
    if (!(c->eps > 0)) return spo_err(SPO_EINVAL, "'norm_eps' must be positive");
    if (c->block_out[0] % 2) return spo_err(SPO_EINVAL, "'block_out_channels'[0] must be even (time_proj)");
    if (c->add_time_dim) {
        SPO_TRY(in_range("addition_time_embed_dim", -1, c->add_time_dim, 1, SPO_UNET_MAXCH));
        SPO_TRY(in_range("time ids", -1, c->add_ntime, 1, 16));
        SPO_TRY(in_range("pooled text width", -1, c->add_text_dim, 1, SPO_UNET_MAXCH));
    }
    for (int i = 0; i < c->nblocks; i++) {
        int ch = c->block_out[i];
        SPO_TRY(in_range("block_out_channels", i, ch, 1, SPO_UNET_MAXCH));
        if (ch % c->groups)
            return spo_err(SPO_EINVAL, "'block_out_channels'[%d]=%d is not a multiple of 'norm_num_groups' %d", i, ch,
                           c->groups);
        SPO_TRY(in_range("layers_per_block", i, c->layers[i], 1, MAXL));
        if (c->heads[i] < 1 || ch % c->heads[i])
            return spo_err(SPO_EINVAL, "'attention_head_dim'[%d]=%d heads do not divide %d channels", i, c->heads[i],
                           ch);
        SPO_TRY(in_range("transformer_layers_per_block", i, c->tlayers[i], 1, 16));
    }
    return SPO_OK;
}

int spo_unet_config_parse(spo_unet_config *c, const char *text)
{
    cJSON *j;
    SPO_TRY(spo_cfg_parse(&j, text, strlen(text), "unet config"));
    int rc = spo_unet_config_from_json(c, j);
    cJSON_Delete(j);
    return rc;
}

static int read_config(void *c, const cJSON *j) { return spo_unet_config_from_json(c, j); }

int spo_unet_config_load(spo_unet_config *c, const char *path) { return spo_cfg_read(path, read_config, c); }
