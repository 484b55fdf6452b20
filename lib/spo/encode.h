/* encode.h — prompts to text-encoder hidden states, as a diffusers SD
 * pipeline makes them (what spo-encode writes into embeds.h5):
 *
 *   ids    = tokenizer(text, padding="max_length", truncation=True,
 *                      max_length=L)               (n, L)  bos ... eos pad...
 *   hidden = text_encoder(ids).last_hidden_state   (n, L, D) after the final
 *                                                  LayerNorm, no attention mask
 *
 * L is the tokenizer's model_max_length (77 for SD v1.5; at most the text
 * encoder's max_position_embeddings) and D the encoder's hidden_size. The empty prompt "" gives the unconditional embedding.
 *
 * An SDXL model (model_index.json names text_encoder_2; without a
 * model_index.json, a text_encoder_2 folder) as
 * StableDiffusionXLPipeline.encode_prompt (diffusers 0.26.1) makes it:
 *
 *   ids    = tokenizer(text)       ids2 = tokenizer_2(text)      (n, L) each;
 *            tokenizer_2 pads as its files say (SDXL's: "!", id 0)
 *   hidden = cat(text_encoder(ids).hidden_states[-2],
 *                text_encoder_2(ids2).hidden_states[-2], -1)    (n, L, D1 + D2)
 *            (the input of each encoder's last layer: no final LayerNorm)
 *   pooled = text_encoder_2(ids2).text_embeds                   (n, E)
 *            (CLIPTextModelWithProjection: the pooled token after the final
 *            LayerNorm, through text_projection)
 *
 * The two tokenizers must have the same model_max_length (77 in SDXL; the
 * official SPO script pads both to the first one's). The unconditional
 * embedding is what the official SPO script takes
 * (pipeline.encode_prompt(prompt="", do_classifier_free_guidance=True),
 * outputs 1 and 3): zeros (hidden and pooled) when the pipeline's
 * force_zeros_for_empty_prompt is true (model_index.json; absent: true,
 * StableDiffusionXLPipeline's default, and SDXL base's value), else the
 * empty prompt through both encoders. */
#ifndef SPO_ENCODE_H
#define SPO_ENCODE_H

#include <stdint.h>

#include "ops/ops.h"
#include "text/tokenizer.h"

typedef struct spo_encoder spo_encoder;

/* Load model_dir/tokenizer and model_dir/text_encoder onto dev. Messages
 * name the missing or malformed file. The tokenizer is in SPO_TOK_FTFY mode
 * (the official run's); spo_encoder_set_mode changes it. */
int spo_encoder_load(spo_encoder **e, const char *model_dir, spo_dev *dev);
int spo_encoder_len(const spo_encoder *e); /* L */
int spo_encoder_dim(const spo_encoder *e); /* D */
int spo_encoder_pooled_dim(const spo_encoder *e); /* E; 0: not SDXL (one encoder, no pooled embedding) */
int spo_encoder_uncond_zeros(const spo_encoder *e); /* SDXL: 1 when the unconditional embedding is zeros */
const spo_tok *spo_encoder_tok2(const spo_encoder *e); /* SDXL's tokenizer_2, else NULL */
const spo_tok *spo_encoder_tok(const spo_encoder *e);
/* the tokenizers' mode: SPO_TOK_FTFY or SPO_TOK_BASIC (text/tokenizer.h) */
int spo_encoder_set_mode(spo_encoder *e, int mode);

/* Encode n prompts in one text-encoder batch: ids (n, L) and hidden
 * (n, L, D), both in host memory. */
int spo_encode_prompts(spo_encoder *e, const char *const *text, int n, int32_t *ids, float *hidden);
/* The same with SDXL's second ids (n, L) and pooled embeddings (n, E); for
 * an SD model they are not written. ids2 and pooled may be NULL. */
int spo_encode_prompts_ex(spo_encoder *e, const char *const *text, int n, int32_t *ids, int32_t *ids2,
                          float *hidden, float *pooled);
/* The unconditional embedding (see above): hidden (1, L, D) and, SDXL,
 * pooled (1, E) (may be NULL). */
int spo_encode_uncond(spo_encoder *e, float *hidden, float *pooled);
void spo_encoder_free(spo_encoder *e);

/* The tokenizer of a CLIP directory as Hugging Face saves it (vocab.json and
 * merges.txt at its top, or in its tokenizer/ folder): the preference
 * model's text side, in SPO_TOK_FAST mode (the official code loads it with
 * AutoTokenizer, which gives CLIPTokenizerFast). */
int spo_tok_load_clip_dir(spo_tok **t, const char *dir);
/* Tokenize n prompts to ids (n, len), padded and truncated as above. */
int spo_tokenize(const spo_tok *t, const char *const *text, int n, int len, int32_t *ids);

#endif
