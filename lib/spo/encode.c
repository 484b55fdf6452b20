/* encode.c — tokenizer + CLIP text encoder of a diffusers model directory
 * (see encode.h). */
#include "spo/encode.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <string.h>

#include "core/err.h"
#include "spo/encode_impl.h"

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int spo_encoder_load(spo_encoder **out, const char *model_dir, spo_dev *dev)
{
    char path[4096];
    *out = NULL;
    if (!is_dir(model_dir)) return spo_err(SPO_EINVAL, "%s: not a model directory", model_dir);
    spo_encoder *e = calloc(1, sizeof *e);
    if (!e) return spo_err(SPO_EIO, "out of memory");
    int rc;
    snprintf(path, sizeof path, "%s/tokenizer", model_dir);
    if (!is_dir(path)) {
        rc = spo_err(SPO_EINVAL, "%s: no tokenizer folder", model_dir);
        goto fail;
    }
    if ((rc = spo_tok_load(&e->tok, path))) goto fail;
    snprintf(path, sizeof path, "%s/text_encoder", model_dir);
    if (!is_dir(path)) {
        rc = spo_err(SPO_EINVAL, "%s: no text_encoder folder", model_dir);
        goto fail;
    }
    if ((rc = spo_clip_text_load(&e->te, path, dev))) goto fail;
    const spo_clip_text_config *c = spo_clip_text_cfg(e->te);
    e->len = spo_tok_max_length(e->tok);
    e->dim = c->dim;
    if (e->len < 2 || e->len > c->max_pos) {
        rc = spo_err(SPO_EINVAL, "%s/tokenizer: model_max_length %d does not fit the text encoder (%d positions)",
                     model_dir, e->len, c->max_pos);
        goto fail;
    }
    if ((rc = spo_encoder_load_xl(e, model_dir, dev))) goto fail;
    *out = e;
    return SPO_OK;
fail:
    spo_encoder_free(e);
    return rc;
}

int spo_encoder_len(const spo_encoder *e) { return e->len; }
int spo_encoder_dim(const spo_encoder *e) { return e->dim; }
const spo_tok *spo_encoder_tok(const spo_encoder *e) { return e->tok; }
int spo_encoder_pooled_dim(const spo_encoder *e) { return e->pdim; }
int spo_encoder_uncond_zeros(const spo_encoder *e) { return e->zeros; }
const spo_tok *spo_encoder_tok2(const spo_encoder *e) { return e->tok2; }

int spo_encoder_set_mode(spo_encoder *e, int mode)
{
    int rc = spo_tok_set_mode(e->tok, mode);
    if (!rc && e->tok2) rc = spo_tok_set_mode(e->tok2, mode);
    return rc;
}

int spo_encode_prompts(spo_encoder *e, const char *const *text, int n, int32_t *ids, float *hidden)
{
    return spo_encode_prompts_ex(e, text, n, ids, NULL, hidden, NULL);
}

int spo_encode_prompts_ex(spo_encoder *e, const char *const *text, int n, int32_t *ids, int32_t *ids2,
                          float *hidden, float *pooled)
{
    if (e->te2) return spo_encode_xl(e, text, n, ids, ids2, hidden, pooled);
    int rc = spo_tokenize(e->tok, text, n, e->len, ids);
    if (rc) return rc;
    return spo_clip_text_forward(e->te, hidden, NULL, ids, n, e->len);
}

int spo_encode_uncond(spo_encoder *e, float *hidden, float *pooled)
{
    const char *empty = "";
    int32_t *ids = malloc((size_t)e->len * sizeof *ids);
    if (!ids) return spo_err(SPO_EIO, "out of memory");
    int rc = SPO_OK;
    if (e->te2 && e->zeros) {
        memset(hidden, 0, (size_t)e->len * e->dim * sizeof *hidden);
        if (pooled) memset(pooled, 0, (size_t)e->pdim * sizeof *pooled);
    } else
        rc = spo_encode_prompts_ex(e, &empty, 1, ids, NULL, hidden, pooled);
    free(ids);
    return rc;
}

void spo_encoder_free(spo_encoder *e)
{
    if (!e) return;
    spo_tok_free(e->tok), spo_tok_free(e->tok2);
    spo_clip_text_free(e->te), spo_clip_text_free(e->te2);
    free(e);
}
