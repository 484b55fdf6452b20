/* spm.c — the step-aware preference model: config, loading, text tower,
 * image batches, scores (see spm.h; the vision tower is lib/nn/spm_vision.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/image.h"
#include "io/jsoncfg.h"
#include "nn/spm_impl.h"

/* ---- config ------------------------------------------------------------ */

/* transformers 4.40.1 CLIPConfig: a non-null text_config_dict (old files)
 * replaces text_config entirely (absent keys take the defaults). */
static const cJSON *sub_config(const cJSON *j, const char *key, const char *old_key)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(j, old_key);
    if (cJSON_IsObject(o)) return o;
    return cJSON_GetObjectItemCaseSensitive(j, key);
}

static int parse_vision(spo_spm_config *c, const cJSON *v)
{
    int ch;
    spo_clip_tower t = {.dim = 768, .inter = 3072, .layers = 12, .heads = 12, .act = SPO_ACT_QUICK_GELU, .eps = 1e-5f};
    SPO_TRY(spo_clip_tower_read(&t, v));
    c->width = t.dim, c->inter = t.inter, c->layers = t.layers, c->heads = t.heads, c->act = t.act, c->eps = t.eps;
    const spo_cfg_intkey ints[] = {{"image_size", 224, &c->image_size}, {"patch_size", 32, &c->patch},
                                   {"num_channels", 3, &ch}};
    SPO_TRY(spo_cfg_ints(v, ints, (int)(sizeof ints / sizeof *ints)));
    if (ch != 3) return spo_err(SPO_EINVAL, "%s: 'num_channels' %d is unsupported (3)", spo_cfg_name(v), ch);
    return SPO_OK;
}

static int check_config(const spo_spm_config *c)
{
    if (c->width < 1 || c->width > 65536) return spo_err(SPO_EINVAL, "spm: vision 'hidden_size' %d is out of range", c->width);
    if (c->heads < 1 || c->width % c->heads)
        return spo_err(SPO_EINVAL, "spm: vision 'num_attention_heads' %d does not divide hidden_size %d", c->heads,
                       c->width);
    if (c->inter < 1) return spo_err(SPO_EINVAL, "spm: vision 'intermediate_size' %d is out of range", c->inter);
    if (c->layers < 0 || c->layers > 1024)
        return spo_err(SPO_EINVAL, "spm: vision 'num_hidden_layers' %d is out of range", c->layers);
    if (c->inter > 1 << 20) return spo_err(SPO_EINVAL, "spm: vision 'intermediate_size' %d is out of range", c->inter);
    if (c->patch < 1 || c->image_size < c->patch || c->image_size > 4096 ||
        (int64_t)(c->image_size / c->patch) * (c->image_size / c->patch) > 65536)
        return spo_err(SPO_EINVAL, "spm: vision 'image_size' %d / 'patch_size' %d are out of range", c->image_size,
                       c->patch);
    if (!(c->eps > 0)) return spo_err(SPO_EINVAL, "spm: vision 'layer_norm_eps' must be positive");
    if (c->act != SPO_ACT_GELU && c->act != SPO_ACT_QUICK_GELU)
        return spo_err(SPO_EINVAL, "spm: vision 'hidden_act' must be gelu or quick_gelu");
    if (c->proj < 1 || c->proj > 65536) return spo_err(SPO_EINVAL, "spm: 'projection_dim' %d is out of range", c->proj);
    if (c->freq != 256) return spo_err(SPO_EINVAL, "spm: timestep frequency size %d (the official code has 256)", c->freq);
    return SPO_OK;
}

int spo_spm_config_parse(spo_spm_config *c, const cJSON *j)
{
    int rc;
    memset(c, 0, sizeof *c);
    cJSON *empty = cJSON_CreateObject();
    if (!empty) return spo_err(SPO_EIO, "out of memory");
    const cJSON *t = sub_config(j, "text_config", "text_config_dict");
    const cJSON *v = sub_config(j, "vision_config", "vision_config_dict");
    rc = spo_clip_text_config_parse(&c->text, cJSON_IsObject(t) ? t : empty);
    if (!rc) rc = parse_vision(c, cJSON_IsObject(v) ? v : empty);
    if (!rc) rc = spo_cfg_int(j, "projection_dim", 512, &c->proj);
    cJSON_Delete(empty);
    if (rc) return rc;
    c->freq = 256;
    return check_config(c);
}

/* ---- create, load, free --------------------------------------------------- */

void spo_spm_free(spo_spm *m)
{
    if (!m) return;
    if (m->varena) spo_dev_free(m->dev, m->varena);
    if (m->tarena) spo_dev_free(m->dev, m->tarena);
    spo_clip_text_free(m->text);
    free(m->layer);
    spo_params_free(&m->ps);
    free(m);
}

static int fetch_logit(spo_spm *m)
{
    int rc = spo_dev_download(m->dev, &m->logit_host, m->logit, 1);
    return rc ? rc : spo_dev_sync(m->dev);
}

/* Declare both towers for cfg, then with a weights source: check its names
 * and shapes, allocate and load; without: allocate zeroed. */
static int make(spo_spm **out, const spo_spm_config *cfg, spo_dev *dev, const spo_tensor_src *src)
{
    *out = NULL;
    SPO_TRY(check_config(cfg));
    spo_spm *m = calloc(1, sizeof *m);
    if (!m) return spo_err(SPO_EIO, "out of memory");
    m->cfg = *cfg;
    m->dev = dev;
    spo_params_init(&m->ps);
    int rc = spo_clip_text_create(&m->text, &cfg->text, NULL);
    spo_params *tabs[2] = {m->text ? spo_clip_text_params(m->text) : NULL, &m->ps};
    if (!rc) rc = spo_spm_vision_declare(m);
    if (!rc) rc = spo_params_ignore(&m->ps, "model.text_model.embeddings.position_ids");
    if (!rc && src) rc = spo_params_check_src(tabs, 2, src, "model.", 0);
    if (!rc) rc = spo_clip_text_alloc(m->text, dev);
    if (!rc) rc = spo_params_alloc(&m->ps, dev);
    if (!rc && src) rc = spo_params_load_src(tabs, 2, src, "model.", 0);
    if (!rc && src) rc = fetch_logit(m);
    if (rc) {
        spo_spm_free(m);
        return rc;
    }
    *out = m;
    return SPO_OK;
}

int spo_spm_create(spo_spm **out, const spo_spm_config *cfg, spo_dev *dev) { return make(out, cfg, dev, NULL); }

int spo_spm_randn(spo_spm *m, uint64_t seed, float std)
{
    SPO_TRY(spo_clip_text_randn(m->text, seed, std));
    SPO_TRY(spo_params_randn(&m->ps, seed + 1, std));
    return fetch_logit(m);
}

/* the whole file's config; messages of its sub-objects get the file name */
static int read_config(void *c, const cJSON *j)
{
    int rc = spo_spm_config_parse(c, j);
    return rc ? spo_err_prefix(rc, "%s", spo_cfg_name(j)) : SPO_OK;
}

int spo_spm_load(spo_spm **out, const char *clip_dir, const char *spm_bin, spo_dev *dev)
{
    *out = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", clip_dir);
    spo_spm_config cfg;
    SPO_TRY(spo_cfg_read(path, read_config, &cfg));
    if (!spm_bin) snprintf(path, sizeof path, "%s/model.safetensors", clip_dir);
    const char *wpath = spm_bin ? spm_bin : path;
    spm_src src;
    SPO_TRY(spo_spm_src_open(&src, wpath));
    int rc = make(out, &cfg, dev, &src.src);
    spo_spm_src_close(&src);
    return rc;
}

const spo_spm_config *spo_spm_cfg(const spo_spm *m) { return &m->cfg; }
float spo_spm_logit_scale(const spo_spm *m) { return m->logit_host; }

/* ---- forward ---------------------------------------------------------------- */

int spo_spm_text(spo_spm *m, const int32_t *ids, int n, float *text_embeds)
{
    const spo_spm_config *c = &m->cfg;
    int Wt = c->text.dim, L = c->text.max_pos;
    if (!ids || !text_embeds || n < 1) return spo_err(SPO_EINVAL, "spm text: bad arguments (n=%d)", n);
    size_t np = ((size_t)n * Wt + 15) & ~(size_t)15;
    if (!m->tarena || n > m->tarena_n) {
        if (m->tarena) spo_dev_free(m->dev, m->tarena);
        m->tarena_n = 0;
        if (!(m->tarena = spo_dev_alloc(m->dev, np + (size_t)n * c->proj))) return SPO_EIO;
        m->tarena_n = n;
    }
    float *pooled = m->tarena, *emb = m->tarena + np;
    SPO_TRY(spo_clip_text_forward_dev(m->text, NULL, pooled, ids, n, L));
    SPO_TRY(spo_linear_fwd(m->dev, emb, pooled, m->tproj, NULL, n, Wt, c->proj));
    SPO_TRY(spo_dev_download(m->dev, text_embeds, emb, (size_t)n * c->proj));
    return spo_dev_sync(m->dev);
}

int spo_spm_image_pixels(spo_spm *m, const float *pixels, int n, const float *timesteps, float *image_embeds)
{
    const spo_spm_config *c = &m->cfg;
    int P = c->proj;
    size_t img = (size_t)3 * c->image_size * c->image_size;
    if (!pixels || !timesteps || !image_embeds || n < 1) return spo_err(SPO_EINVAL, "spm image: bad arguments (n=%d)", n);
    for (int i = 0; i < n; i++)
        if (!isfinite(timesteps[i])) return spo_err(SPO_EINVAL, "spm image: timestep %d is not finite", i);
    int chunk = n < SPM_CHUNK ? n : SPM_CHUNK;
    if (!m->varena || chunk > m->varena_n) {
        if (m->varena) spo_dev_free(m->dev, m->varena);
        m->varena_n = 0;
        if (!(m->varena = spo_dev_alloc(m->dev, spo_spm_vision_arena(c, chunk)))) return SPO_EIO;
        m->varena_n = chunk;
    }
    for (int i = 0; i < n; i += chunk) {
        int nb = n - i < chunk ? n - i : chunk;
        float *px, *t, *o;
        spo_spm_vision_io(m, nb, &px, &t, &o);
        SPO_TRY(spo_dev_upload(m->dev, px, pixels + i * img, nb * img));
        SPO_TRY(spo_dev_upload(m->dev, t, timesteps + i, (size_t)nb));
        SPO_TRY(spo_spm_vision_fwd(m, o, px, t, nb));
        SPO_TRY(spo_dev_download(m->dev, image_embeds + (size_t)i * P, o, (size_t)nb * P));
    }
    return spo_dev_sync(m->dev);
}

int spo_spm_image(spo_spm *m, const float *img, int n, int h, int w, const float *timesteps, float *image_embeds)
{
    int rc = SPO_OK, S = m->cfg.image_size, P = m->cfg.proj;
    if (!img || n < 1 || h < 1 || w < 1) return spo_err(SPO_EINVAL, "spm image: bad shape n=%d h=%d w=%d", n, h, w);
    int chunk = n < SPM_CHUNK ? n : SPM_CHUNK;
    float *pix = malloc(sizeof(float) * chunk * 3 * S * S);
    if (!pix) return spo_err(SPO_EIO, "out of memory");
    for (int i = 0; i < n && !rc; i += chunk) {
        int nb = n - i < chunk ? n - i : chunk;
        rc = spo_clip_preprocess(img + (size_t)i * 3 * h * w, nb, h, w, S, pix);
        if (!rc) rc = spo_spm_image_pixels(m, pix, nb, timesteps + i, image_embeds + (size_t)i * P);
    }
    free(pix);
    return rc;
}

int spo_spm_score(spo_spm *m, const float *image_embeds, const float *text_embeds, int n, float *scores)
{
    int P = m->cfg.proj;
    if (!image_embeds || !text_embeds || !scores || n < 1) return spo_err(SPO_EINVAL, "spm score: bad arguments");
    double s = exp((double)m->logit_host);
    for (int i = 0; i < n; i++) {
        const float *a = image_embeds + (size_t)i * P, *b = text_embeds + (size_t)i * P;
        double ab = 0, aa = 0, bb = 0;
        for (int k = 0; k < P; k++) ab += (double)a[k] * b[k], aa += (double)a[k] * a[k], bb += (double)b[k] * b[k];
        scores[i] = aa > 0 && bb > 0 ? (float)(s * ab / sqrt(aa * bb)) : 0.0f;
    }
    return SPO_OK;
}

spo_params *spo_spm_text_params(spo_spm *m) { return spo_clip_text_params(m->text); }
spo_params *spo_spm_other_params(spo_spm *m) { return &m->ps; }
