/* encode_xl.c — SDXL's second tokenizer and text encoder, the concatenated
 * penultimate hidden states and the pooled embedding (see encode.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/err.h"
#include "io/modeldir.h"
#include "spo/encode_impl.h"

static int exists(const char *dir, const char *sub)
{
    char p[4200];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, sub);
    return stat(p, &st) == 0;
}

/* Is model_dir SDXL? *cls gets text_encoder_2's class (NULL: its config
 * decides), *zeros force_zeros_for_empty_prompt. */
static int detect(const char *model_dir, int *xl, char *cls, size_t ncls, int *zeros)
{
    *xl = 0;
    *zeros = 1; /* StableDiffusionXLPipeline's default */
    cls[0] = 0;
    if (!exists(model_dir, "model_index.json")) {
        *xl = exists(model_dir, "text_encoder_2");
        return SPO_OK;
    }
    spo_modeldir *md;
    SPO_TRY(spo_md_open(&md, model_dir));
    const char *c = spo_md_class(md, "text_encoder_2");
    int rc = SPO_OK;
    if (c) {
        *xl = 1;
        snprintf(cls, ncls, "%s", c);
        rc = spo_cfg_bool(spo_md_index(md), "force_zeros_for_empty_prompt", 1, zeros);
    }
    spo_md_close(md);
    return rc;
}

int spo_encoder_load_xl(spo_encoder *e, const char *model_dir, spo_dev *dev)
{
    char cls[128], path[4200];
    int xl, rc;
    SPO_TRY(detect(model_dir, &xl, cls, sizeof cls, &e->zeros));
    if (!xl) return SPO_OK;
    snprintf(path, sizeof path, "%s/tokenizer_2", model_dir);
    if (!exists(model_dir, "tokenizer_2")) return spo_err(SPO_EINVAL, "%s: SDXL model without a tokenizer_2 folder", model_dir);
    SPO_TRY(spo_tok_load(&e->tok2, path));
    snprintf(path, sizeof path, "%s/text_encoder_2", model_dir);
    if (!exists(model_dir, "text_encoder_2"))
        return spo_err(SPO_EINVAL, "%s: model_index.json names text_encoder_2 but there is no such folder", model_dir);
    SPO_TRY(spo_clip_text_load_as(&e->te2, path, cls[0] ? cls : NULL, dev));
    const spo_clip_text_config *c1 = spo_clip_text_cfg(e->te), *c2 = spo_clip_text_cfg(e->te2);
    if (!c2->with_proj)
        return spo_err(SPO_EINVAL, "%s: text_encoder_2 is not a CLIPTextModelWithProjection (SDXL's pooled embedding "
                       "is its text_embeds)", model_dir);
    if (c1->layers < 1 || c2->layers < 1)
        return spo_err(SPO_EINVAL, "%s: SDXL takes hidden_states[-2]: each text encoder needs a layer", model_dir);
    int len2 = spo_tok_max_length(e->tok2);
    if (len2 != e->len)
        return spo_err(SPO_EINVAL, "%s/tokenizer_2: model_max_length %d differs from tokenizer's %d", model_dir, len2,
                       e->len);
    if (len2 > c2->max_pos)
        return spo_err(SPO_EINVAL, "%s/tokenizer_2: model_max_length %d does not fit text_encoder_2 (%d positions)",
                       model_dir, len2, c2->max_pos);
    if ((rc = spo_tok_set_mode(e->tok2, spo_tok_mode(e->tok)))) return rc;
    e->dim1 = c1->dim;
    e->dim2 = c2->dim;
    e->dim = c1->dim + c2->dim;
    e->pdim = c2->proj_dim;
    return SPO_OK;
}

int spo_encode_xl(spo_encoder *e, const char *const *text, int n, int32_t *ids, int32_t *ids2, float *hidden,
                  float *pooled)
{
    size_t L = (size_t)e->len, nt = (size_t)n * L;
    int32_t *own = ids2 ? NULL : malloc(nt * sizeof *own);
    float *h1 = malloc(nt * e->dim1 * sizeof *h1), *h2 = malloc(nt * e->dim2 * sizeof *h2);
    int rc = (ids2 || own) && h1 && h2 ? SPO_OK : spo_err(SPO_EIO, "out of memory for %d prompts", n);
    if (!ids2) ids2 = own;
    int k1 = spo_clip_text_cfg(e->te)->layers - 1, k2 = spo_clip_text_cfg(e->te2)->layers - 1;
    if (!rc) rc = spo_tokenize(e->tok, text, n, e->len, ids);
    if (!rc) rc = spo_tokenize(e->tok2, text, n, e->len, ids2);
    if (!rc) rc = spo_clip_text_forward_hs(e->te, k1, h1, NULL, ids, n, e->len);
    if (!rc) rc = spo_clip_text_forward_hs(e->te2, k2, h2, pooled, ids2, n, e->len);
    for (size_t t = 0; !rc && hidden && t < nt; t++) { /* cat on the last dim */
        memcpy(hidden + t * e->dim, h1 + t * e->dim1, (size_t)e->dim1 * sizeof *h1);
        memcpy(hidden + t * e->dim + e->dim1, h2 + t * e->dim2, (size_t)e->dim2 * sizeof *h2);
    }
    free(own);
    free(h1);
    free(h2);
    return rc;
}
