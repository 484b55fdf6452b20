/* clip_text.c — CLIP text encoder: config, parameters, forward (see clip_text.h). */
#include "nn/clip_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn/clip_layer.h"
#include "io/jsoncfg.h"
#include "ops/ops_extra.h"
#include "nn/params.h"

struct spo_clip_text {
    spo_clip_text_config cfg;
    spo_dev *dev;
    spo_params ps;
    float *tok, *pos;          /* token_embedding (vocab,C), position_embedding (max_pos,C) */
    spo_clip_layer *layer;     /* cfg.layers */
    float *fw, *fb;            /* final_layer_norm (C) */
    float *pw;                 /* text_projection (proj_dim, C), with_proj only */
    /* activations for up to arena_tok tokens; proj: (arena_tok, proj_dim) */
    float *arena, *x, *y, *mean, *rstd, *scratch, *proj;
    size_t arena_tok;
};

static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; }

/* ---- config ------------------------------------------------------------ */

/* A CLIPTextConfig config.json, transformers 4.40.1 defaults for absent
 * keys; errors name the file and the key. */
static int parse_config(spo_clip_text_config *c, const cJSON *j)
{
    const char *arch[16];
    int narch = 0;
    spo_clip_tower t = {.dim = 512, .inter = 2048, .layers = 12, .heads = 8, .act = SPO_ACT_QUICK_GELU, .eps = 1e-5f};
    SPO_TRY(spo_clip_tower_read(&t, j));
    c->dim = t.dim, c->inter = t.inter, c->layers = t.layers, c->heads = t.heads, c->act = t.act, c->eps = t.eps;
    const spo_cfg_intkey ints[] = {{"vocab_size", 49408, &c->vocab}, {"max_position_embeddings", 77, &c->max_pos},
                                   {"eos_token_id", 49407, &c->eos}, {"projection_dim", 512, &c->proj_dim}};
    SPO_TRY(spo_cfg_ints(j, ints, (int)(sizeof ints / sizeof *ints)));
    SPO_TRY(spo_cfg_str_array(j, "architectures", arch, 16, &narch));
    c->with_proj = 0;
    for (int i = 0; i < narch; i++)
        if (!strcmp(arch[i], "CLIPTextModelWithProjection")) c->with_proj = 1;
    return SPO_OK;
}

/* v in lo..hi, else SPO_EINVAL naming the key */
static int in_range(const char *key, int v, int lo, int hi)
{
    return v >= lo && v <= hi ? SPO_OK : spo_err(SPO_EINVAL, "clip text: '%s' %d is not in %d..%d", key, v, lo, hi);
}

static int check_config(const spo_clip_text_config *c)
{
    SPO_TRY(in_range("vocab_size", c->vocab, 1, 1 << 24));
    SPO_TRY(in_range("hidden_size", c->dim, 1, 65536));
    SPO_TRY(in_range("intermediate_size", c->inter, 1, 1 << 20));
    SPO_TRY(in_range("num_hidden_layers", c->layers, 0, 1024));
    SPO_TRY(in_range("max_position_embeddings", c->max_pos, 1, 65536));
    if (c->heads < 1 || c->dim % c->heads)
        return spo_err(SPO_EINVAL, "clip text: 'num_attention_heads' %d does not divide hidden_size %d", c->heads,
                       c->dim);
    if (!(c->eps > 0)) return spo_err(SPO_EINVAL, "clip text: 'layer_norm_eps' must be positive");
    if (c->with_proj) SPO_TRY(in_range("projection_dim", c->proj_dim, 1, 65536));
    if (c->act != SPO_ACT_QUICK_GELU && c->act != SPO_ACT_GELU)
        return spo_err(SPO_EINVAL, "clip text: 'hidden_act' must be quick_gelu or gelu");
    return SPO_OK;
}

/* ---- parameters ------------------------------------------------------------ */

static int declare(void *model, spo_params *ps)
{
    spo_clip_text *m = model;
    const spo_clip_text_config *c = &m->cfg;
    SPO_TRY(check_config(c));
    char pre[96];
    SPO_TRY(spo_params_add(ps, &m->tok, "text_model.embeddings.token_embedding.weight", c->vocab, c->dim, 0, 0));
    SPO_TRY(spo_params_add(ps, &m->pos, "text_model.embeddings.position_embedding.weight", c->max_pos, c->dim, 0, 0));
    if (c->layers && !(m->layer = calloc((size_t)c->layers, sizeof *m->layer)))
        return spo_err(SPO_EIO, "out of memory");
    for (int i = 0; i < c->layers; i++) {
        spo_clip_layer *L = &m->layer[i];
        L->dim = c->dim;
        L->heads = c->heads;
        L->inter = c->inter;
        L->act = c->act;
        L->eps = c->eps;
        snprintf(pre, sizeof pre, "text_model.encoder.layers.%d.", i);
        SPO_TRY(spo_clip_layer_declare(L, ps, pre));
    }
    SPO_TRY(spo_params_add(ps, &m->fw, "text_model.final_layer_norm.weight", c->dim, 0, 0, 0));
    SPO_TRY(spo_params_add(ps, &m->fb, "text_model.final_layer_norm.bias", c->dim, 0, 0, 0));
    if (c->with_proj) SPO_TRY(spo_params_add(ps, &m->pw, "text_projection.weight", c->proj_dim, c->dim, 0, 0));
    /* a buffer (arange) that some files carry */
    return spo_params_ignore(ps, "text_model.embeddings.position_ids");
}

static void release(void *model) { spo_clip_text_free(model); }
static const spo_params_kind kind = {sizeof(spo_clip_text), offsetof(spo_clip_text, ps), declare, release};

int spo_clip_text_create(spo_clip_text **out, const spo_clip_text_config *cfg, spo_dev *dev)
{
    int rc;
    *out = spo_params_new(&kind, &(spo_clip_text){.cfg = *cfg, .dev = dev}, dev, NULL, &rc);
    return rc;
}

int spo_clip_text_alloc(spo_clip_text *m, spo_dev *dev)
{
    if (m->ps.buf) return spo_err(SPO_EINVAL, "clip text: parameters already allocated");
    m->dev = dev;
    return spo_params_alloc(&m->ps, dev);
}

static int read_config(void *c, const cJSON *j) { return spo_clip_text_config_parse(c, j); }

int spo_clip_text_load(spo_clip_text **out, const char *dir, spo_dev *dev)
{
    return spo_clip_text_load_as(out, dir, NULL, dev);
}

int spo_clip_text_load_as(spo_clip_text **out, const char *dir, const char *cls, spo_dev *dev)
{
    *out = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    spo_clip_text_config cfg;
    SPO_TRY(spo_cfg_read(path, read_config, &cfg));
    if (cls && !strcmp(cls, "CLIPTextModel")) cfg.with_proj = 0;
    else if (cls && !strcmp(cls, "CLIPTextModelWithProjection")) cfg.with_proj = 1;
    else if (cls)
        return spo_err(SPO_EINVAL, "%s: class %s is not a CLIP text encoder (CLIPTextModel or "
                       "CLIPTextModelWithProjection)", dir, cls);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (access(path, R_OK)) snprintf(path, sizeof path, "%s/model.fp16.safetensors", dir);
    if (access(path, R_OK)) return spo_err(SPO_EINVAL, "%s: no weights (model.safetensors or model.fp16.safetensors)", dir);
    int rc;
    *out = spo_params_new(&kind, &(spo_clip_text){.cfg = cfg, .dev = dev}, dev, path, &rc);
    return rc;
}

int spo_clip_text_config_parse(spo_clip_text_config *c, const cJSON *j)
{
    int rc = parse_config(c, j);
    if (rc) return rc;
    if ((rc = check_config(c))) return spo_err_prefix(rc, "%s", spo_cfg_name(j));
    return SPO_OK;
}

spo_params *spo_clip_text_params(spo_clip_text *m) { return &m->ps; }

int spo_clip_text_randn(spo_clip_text *m, uint64_t seed, float std) { return spo_params_randn(&m->ps, seed, std); }

const spo_clip_text_config *spo_clip_text_cfg(const spo_clip_text *m) { return &m->cfg; }

void spo_clip_text_free(spo_clip_text *m)
{
    if (!m) return;
    if (m->arena) spo_dev_free(m->dev, m->arena);
    free(m->layer);
    spo_params_free(&m->ps);
    free(m);
}

/* ---- forward ---------------------------------------------------------------- */

static int arena_fit(spo_clip_text *m, size_t ntok)
{
    if (m->arena && ntok <= m->arena_tok) return SPO_OK;
    const spo_clip_text_config *c = &m->cfg;
    size_t nc = align16(ntok * c->dim), st = 0, np = c->with_proj ? align16(ntok * c->proj_dim) : 0;
    if (c->layers) st = spo_clip_layer_scratch(&m->layer[0], ntok);
    if (m->arena) spo_dev_free(m->dev, m->arena);
    m->arena_tok = 0;
    m->arena = spo_dev_alloc(m->dev, 2 * nc + 2 * align16(ntok) + st + np);
    if (!m->arena) return SPO_EIO;
    m->x = m->arena;
    m->y = m->x + nc;
    m->mean = m->y + nc;
    m->rstd = m->mean + align16(ntok);
    m->scratch = m->rstd + align16(ntok);
    m->proj = m->scratch + st;
    m->arena_tok = ntok;
    return SPO_OK;
}

/* layers [from, to) on m->x */
static int layers_from(spo_clip_text *m, int from, int to, int batch, int len)
{
    for (int l = from; l < to; l++)
        SPO_TRY(spo_clip_layer_fwd(m->dev, &m->layer[l], m->x, m->scratch, batch, len, 1, NULL));
    return SPO_OK;
}

/* the position transformers 4.40.1 pools for one sequence */
static int pool_index(const spo_clip_text_config *c, const int32_t *ids, int len)
{
    int p = 0;
    if (c->eos == 2) { /* argmax of the ids, first on ties */
        for (int i = 1; i < len; i++)
            if (ids[i] > ids[p]) p = i;
        return p;
    }
    for (int i = 0; i < len; i++)
        if (ids[i] == c->eos) return i;
    return 0;
}

/* embeddings and layers 0..k-1: hidden_states[k] in m->x (b*len, C) */
static int embed_layers(spo_clip_text *m, int k, const int32_t *ids, int batch, int len)
{
    const spo_clip_text_config *c = &m->cfg;
    if (batch < 1 || len < 1 || len > c->max_pos)
        return spo_err(SPO_EINVAL, "clip text: bad shape batch=%d len=%d (max_position_embeddings %d)", batch, len,
                       c->max_pos);
    size_t n = (size_t)batch * len, tc = (size_t)len * c->dim;
    SPO_TRY(arena_fit(m, n));
    SPO_TRY(spo_embed_fwd(m->dev, m->x, m->tok, ids, (int)n, c->dim, c->vocab));
    for (int b = 0; b < batch; b++) SPO_TRY(spo_add_fwd(m->dev, m->x + b * tc, m->x + b * tc, m->pos, tc));
    return layers_from(m, 0, k, batch, len);
}

/* embeddings, layers, final norm: hidden (b*len, C) device memory, NULL for m->y */
static int encode(spo_clip_text *m, float *hidden, const int32_t *ids, int batch, int len)
{
    const spo_clip_text_config *c = &m->cfg;
    SPO_TRY(embed_layers(m, c->layers, ids, batch, len));
    return spo_layernorm_fwd(m->dev, hidden ? hidden : m->y, m->mean, m->rstd, m->x, m->fw, m->fb, batch * len,
                             c->dim, c->eps);
}

int spo_clip_text_forward_dev(spo_clip_text *m, float *hidden, float *pooled, const int32_t *ids, int batch, int len)
{
    int C = m->cfg.dim;
    SPO_TRY(encode(m, hidden, ids, batch, len));
    const float *h = hidden ? hidden : m->y; /* encode wrote m->y when hidden is NULL */
    for (int b = 0; pooled && b < batch; b++) {
        size_t row = (size_t)b * len + pool_index(&m->cfg, ids + (size_t)b * len, len);
        SPO_TRY(spo_dev_copy(m->dev, pooled + (size_t)b * C, h + row * C, (size_t)C));
    }
    return SPO_OK;
}

int spo_clip_text_forward(spo_clip_text *m, float *hidden, float *pooled, const int32_t *ids, int batch, int len)
{
    int C = m->cfg.dim;
    SPO_TRY(encode(m, NULL, ids, batch, len));
    if (hidden) SPO_TRY(spo_dev_download(m->dev, hidden, m->y, (size_t)batch * len * C));
    for (int b = 0; pooled && b < batch; b++) {
        size_t row = (size_t)b * len + pool_index(&m->cfg, ids + (size_t)b * len, len);
        SPO_TRY(spo_dev_download(m->dev, pooled + (size_t)b * C, m->y + row * C, (size_t)C));
    }
    return spo_dev_sync(m->dev);
}

int spo_clip_text_forward_hs(spo_clip_text *m, int k, float *hs, float *pooled, const int32_t *ids, int batch, int len)
{
    const spo_clip_text_config *c = &m->cfg;
    if (k < 0 || k > c->layers)
        return spo_err(SPO_EINVAL, "clip text: hidden state %d is not in 0..%d (num_hidden_layers)", k, c->layers);
    size_t n = (size_t)batch * len;
    SPO_TRY(embed_layers(m, k, ids, batch, len));
    if (hs) SPO_TRY(spo_dev_download(m->dev, hs, m->x, n * c->dim));
    if (!pooled) return spo_dev_sync(m->dev);
    SPO_TRY(layers_from(m, k, c->layers, batch, len));
    SPO_TRY(spo_layernorm_fwd(m->dev, m->y, m->mean, m->rstd, m->x, m->fw, m->fb, (int)n, c->dim, c->eps));
    /* the pooled rows (batch, C) into x, which the final norm has consumed */
    for (int b = 0; b < batch; b++) {
        size_t row = (size_t)b * len + pool_index(c, ids + (size_t)b * len, len);
        SPO_TRY(spo_dev_copy(m->dev, m->x + (size_t)b * c->dim, m->y + row * c->dim, (size_t)c->dim));
    }
    if (!c->with_proj) SPO_TRY(spo_dev_download(m->dev, pooled, m->x, (size_t)batch * c->dim));
    else {
        SPO_TRY(spo_linear_fwd(m->dev, m->proj, m->x, m->pw, NULL, batch, c->dim, c->proj_dim));
        SPO_TRY(spo_dev_download(m->dev, pooled, m->proj, (size_t)batch * c->proj_dim));
    }
    return spo_dev_sync(m->dev);
}
