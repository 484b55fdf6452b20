/* score.c — VAE decode + preference scoring of predicted clean latents. */
#include "spo/score.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "spo/scorers.h"
#include "nn/spm.h"
#include "nn/vae.h"

struct spo_scoring {
    spo_vae *vae;
    spo_spm *spm;
    const spo_scorer *builtin;
    char name[512];
};

int spo_scoring_open(spo_scoring **out, const char *vae_dir, const char *spm_dir, const char *spm_weights,
                     const char *builtin, spo_dev *dev)
{
    *out = NULL;
    if (!spm_dir == !builtin) return spo_err(SPO_EINVAL, "give either a preference model or a built-in scorer");
    spo_scoring *s = calloc(1, sizeof *s);
    if (!s) return spo_err(SPO_EIO, "out of memory");
    int rc;
    if (builtin) {
        if (!(s->builtin = spo_scorer_find(builtin))) {
            free(s);
            return SPO_EINVAL;
        }
        snprintf(s->name, sizeof s->name, "builtin:%s", builtin);
    } else {
        if ((rc = spo_spm_load(&s->spm, spm_dir, spm_weights, dev))) {
            free(s);
            return rc;
        }
        snprintf(s->name, sizeof s->name, "spm:%s", spm_dir);
    }
    if ((rc = spo_vae_load(&s->vae, vae_dir, dev))) {
        spo_scoring_close(s);
        return rc;
    }
    *out = s;
    return SPO_OK;
}

void spo_scoring_close(spo_scoring *s)
{
    if (!s) return;
    if (s->vae) spo_vae_free(s->vae);
    if (s->spm) spo_spm_free(s->spm);
    free(s);
}

const char *spo_scoring_name(const spo_scoring *s) { return s->name; }
int spo_scoring_text_dim(const spo_scoring *s) { return s->spm ? spo_spm_cfg(s->spm)->proj : 0; }
int spo_scoring_text_len(const spo_scoring *s) { return s->spm ? spo_spm_cfg(s->spm)->text.max_pos : 0; }
int spo_scoring_latent_channels(const spo_scoring *s) { return spo_vae_cfg(s->vae)->latent_channels; }

int spo_scoring_text(spo_scoring *s, const int32_t *ids, int n, float *emb)
{
    if (!s->spm) return spo_err(SPO_EINVAL, "a built-in scorer takes no text");
    return spo_spm_text(s->spm, ids, n, emb);
}

int spo_scoring_run(spo_scoring *s, const float *x0, int n, int h, int w, const float *t, const float *text,
                    float *scores, int batch)
{
    const spo_vae_config *vc = spo_vae_cfg(s->vae);
    int f = spo_vae_factor(s->vae), C = vc->latent_channels, E = spo_scoring_text_dim(s);
    if (s->spm && !text) return spo_err(SPO_EINVAL, "the preference model needs text embeddings");
    if (batch < 1) batch = 1;
    size_t lat = (size_t)C * h * w, pix = (size_t)vc->out_channels * h * f * w * f;
    float *img = malloc((size_t)batch * pix * sizeof *img);
    float *emb = s->spm ? malloc((size_t)batch * E * sizeof *emb) : NULL;
    int rc = (!img || (s->spm && !emb)) ? spo_err(SPO_EIO, "out of memory") : SPO_OK;
    for (int i = 0; i < n && !rc; i += batch) {
        int m = n - i < batch ? n - i : batch;
        if ((rc = spo_vae_decode(s->vae, img, x0 + (size_t)i * lat, m, h, w))) break;
        if (s->builtin) rc = spo_scorer_run(s->builtin, img, m, h * f, w * f, scores + i);
        else if (!(rc = spo_spm_image(s->spm, img, m, h * f, w * f, t + i, emb)))
            rc = spo_spm_score(s->spm, emb, text + (size_t)i * E, m, scores + i);
    }
    free(img);
    free(emb);
    return rc;
}
