/* encode_impl.h — the encoder of encode.c and encode_xl.c (private). */
#ifndef SPO_ENCODE_IMPL_H
#define SPO_ENCODE_IMPL_H

#include "nn/clip_text.h"
#include "spo/encode.h"

struct spo_encoder {
    spo_tok *tok, *tok2;       /* tok2, te2: SDXL's second tokenizer and encoder, else NULL */
    spo_clip_text *te, *te2;
    int len, dim;              /* L, D (SDXL: dim1 + dim2) */
    int dim1, dim2, pdim;      /* SDXL: the two widths and the pooled width E */
    int zeros;                 /* SDXL: force_zeros_for_empty_prompt */
};

/* If model_dir is an SDXL model (model_index.json names text_encoder_2, or
 * without a model_index.json a text_encoder_2 folder exists), load
 * tokenizer_2 and text_encoder_2 into e (whose te and len are set). */
int spo_encoder_load_xl(spo_encoder *e, const char *model_dir, spo_dev *dev);
/* The SDXL encoding of n prompts (see encode.h); ids2 may be NULL. */
int spo_encode_xl(spo_encoder *e, const char *const *text, int n, int32_t *ids, int32_t *ids2, float *hidden,
                  float *pooled);

#endif
