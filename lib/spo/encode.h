/* encode.h — prompts to text-encoder hidden states, as a diffusers SD
 * pipeline makes them (what spo-encode writes into embeds.h5):
 *
 *   ids    = tokenizer(text, padding="max_length", truncation=True,
 *                      max_length=L)               (n, L)  bos ... eos pad...
 *   hidden = text_encoder(ids).last_hidden_state   (n, L, D) after the final
 *                                                  LayerNorm, no attention mask
 *
 * L is the tokenizer's model_max_length (77 for SD v1.5; at most the text
 * encoder's max_position_embeddings) and D the encoder's hidden_size. The empty prompt "" gives the unconditional embedding. */
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
const spo_tok *spo_encoder_tok(const spo_encoder *e);
/* the tokenizer's mode: SPO_TOK_FTFY or SPO_TOK_BASIC (text/tokenizer.h) */
int spo_encoder_set_mode(spo_encoder *e, int mode);

/* Encode n prompts in one text-encoder batch: ids (n, L) and hidden
 * (n, L, D), both in host memory. */
int spo_encode_prompts(spo_encoder *e, const char *const *text, int n, int32_t *ids, float *hidden);
void spo_encoder_free(spo_encoder *e);

/* The tokenizer of a CLIP directory as Hugging Face saves it (vocab.json and
 * merges.txt at its top, or in its tokenizer/ folder): the preference
 * model's text side, in SPO_TOK_FAST mode (the official code loads it with
 * AutoTokenizer, which gives CLIPTokenizerFast). */
int spo_tok_load_clip_dir(spo_tok **t, const char *dir);
/* Tokenize n prompts to ids (n, len), padded and truncated as above. */
int spo_tokenize(const spo_tok *t, const char *const *text, int n, int len, int32_t *ids);

#endif
