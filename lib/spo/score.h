/* score.h — decode predicted clean latents and score them (spo-score's work).
 *
 * A scoring is the VAE decoder of the base model plus either the step-aware
 * preference model (each image scored against its prompt at its own
 * timestep) or a built-in analytic scorer (no text, no timestep; a
 * diagnostic with a known optimum, see scorers.h). */
#ifndef SPO_SCORE_H
#define SPO_SCORE_H

#include <stdint.h>

#include "ops/ops.h"

typedef struct spo_scoring spo_scoring;

/* vae_dir: a diffusers vae/ directory. Exactly one of spm_dir (a CLIP
 * directory; spm_weights the SPM .bin/.safetensors or NULL) and builtin
 * (a scorer name) is given. */
int spo_scoring_open(spo_scoring **s, const char *vae_dir, const char *spm_dir, const char *spm_weights,
                     const char *builtin, spo_dev *dev);
void spo_scoring_close(spo_scoring *s);
/* "spm:<clip dir>" or "builtin:<name>" for the scores file. */
const char *spo_scoring_name(const spo_scoring *s);
/* Width of a text embedding, 0 for a built-in scorer (needs no text). */
int spo_scoring_text_dim(const spo_scoring *s);
/* Text length the preference model's ids must have (77). */
int spo_scoring_text_len(const spo_scoring *s);
/* ids (n, text_len) -> emb (n, text_dim). */
int spo_scoring_text(spo_scoring *s, const int32_t *ids, int n, float *emb);
/* Latent channels and the VAE's upsampling factor. */
int spo_scoring_latent_channels(const spo_scoring *s);
/* x0 (n, C, h, w) latents as the pipeline holds them; t (n) timesteps;
 * text (n, text_dim) or NULL for a built-in scorer -> scores (n). Images are
 * decoded and scored `batch` at a time to bound memory. */
int spo_scoring_run(spo_scoring *s, const float *x0, int n, int h, int w, const float *t, const float *text,
                    float *scores, int batch);

#endif
