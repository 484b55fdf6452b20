/* embeds.h — finding prompts in an embeddings file (embeds/1) by prompt id,
 * the one lookup spo-pool, spo-score, spo-pair and spo-decode share; the
 * SDXL part of the file (schemas/embeds.json): /pooled, /uncond_pooled,
 * /token_ids_2. */
#ifndef SPO_EMBEDS_H
#define SPO_EMBEDS_H

#include <stdint.h>

#include "io/h5io.h"

/* row[i] = the row of emb's /prompt_id that holds ids[i], for i < n.
 * A missing id is SPO_EINVAL: "<emb>: no prompt id N (it is in <where>)". */
int spo_embeds_rows(const spo_h5 *emb, const int64_t *ids, int64_t n, const char *where, int64_t *row);

/* Write the SDXL datasets into an embeddings file being made: /token_ids_2
 * (P, L) int32, /pooled (P, E) and /uncond_pooled (1, E) stored as dtype,
 * the attributes tokenizer_2 (tokdir2) and uncond ("zeros" or "empty
 * prompt"). */
int spo_embeds_write_xl(spo_h5 *out, spo_dtype_t dtype, int64_t P, int64_t L, int64_t E, const int32_t *ids2,
                        const float *pooled, const float *uncond_pooled, const char *tokdir2, int zeros);
/* *E = the pooled width of an SDXL embeddings file, 0 for one without
 * /pooled (SD); SPO_EINVAL naming the file when /pooled and /uncond_pooled
 * are not both there. */
int spo_embeds_pooled_dim(const spo_h5 *emb, int64_t *E);

#endif
