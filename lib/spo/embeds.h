/* embeds.h — finding prompts in an embeddings file (embeds/1) by prompt id,
 * the one lookup spo-pool, spo-score, spo-pair and spo-decode share. */
#ifndef SPO_EMBEDS_H
#define SPO_EMBEDS_H

#include <stdint.h>

#include "io/h5io.h"

/* row[i] = the row of emb's /prompt_id that holds ids[i], for i < n.
 * A missing id is SPO_EINVAL: "<emb>: no prompt id N (it is in <where>)". */
int spo_embeds_rows(const spo_h5 *emb, const int64_t *ids, int64_t n, const char *where, int64_t *row);

#endif
