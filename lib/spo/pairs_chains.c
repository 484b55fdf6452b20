/* pairs_chains.c — trajectory pairs: per prompt, the best and the worst of
 * N independent sampling chains by their final scores, paired at one step
 * (Diffusion-DPO's labels on SPO's step-wise training; see pairs.h). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "io/h5rows.h"
#include "nn/lora.h"
#include "spo/embeds.h"
#include "spo/loopfile.h"
#include "spo/pairs_impl.h"
#include "spo/scores.h"

#define MAX_CHAINS 64

static void *alloc(size_t n, size_t size) { return malloc(n ? n * size : 1); }

/* chain c's pool agrees with chain 0's: one child, the same step of the
 * same sampling setup over the same prompts, another noise seed */
static int same_setup(const spo_h5 *p0, const spo_poolmeta *a, const spo_h5 *pc, const spo_poolmeta *b)
{
    const char *an = spo_h5_path(p0), *bn = spo_h5_path(pc);
    if (b->K != 1) return spo_err(SPO_EINVAL, "%s: a chain's pool has one child, not %" PRId64, bn, b->K);
    int rc = spo_same_model(an, a->attrs.model_id, bn, b->attrs.model_id);
    if (rc) return rc;
    if (strcmp(a->attrs.lora_id, b->attrs.lora_id))
        return spo_err(SPO_EINVAL, "%s: sampled with LoRA '%s', but %s with '%s'", bn, b->attrs.lora_id, an,
                       a->attrs.lora_id);
    if (a->attrs.step != b->attrs.step || a->attrs.num_steps != b->attrs.num_steps ||
        a->attrs.timestep != b->attrs.timestep)
        return spo_err(SPO_EINVAL, "%s: step %" PRId64 " of %" PRId64 ", but %s is step %" PRId64 " of %" PRId64, bn,
                       b->attrs.step, b->attrs.num_steps, an, a->attrs.step, a->attrs.num_steps);
    if (strcmp(a->text_clean, b->text_clean))
        return spo_same_text_clean(an, a->text_clean, bn, b->text_clean);
    if (a->guidance != b->guidance || a->eta != b->eta)
        return spo_err(SPO_EINVAL, "%s: guidance %g, eta %g; %s: guidance %g, eta %g", bn, b->guidance, b->eta, an,
                       a->guidance, a->eta);
    if (a->B != b->B || a->C != b->C || a->h != b->h || a->w != b->w)
        return spo_err(SPO_EINVAL, "%s: %" PRId64 " latents [%" PRId64 ",%" PRId64 ",%" PRId64 "], but %s has %" PRId64
                       " [%" PRId64 ",%" PRId64 ",%" PRId64 "]", bn, b->B, b->C, b->h, b->w, an, a->B, a->C, a->h, a->w);
    if (a->attrs.seed == b->attrs.seed)
        return spo_err(SPO_EINVAL, "%s and %s: the same noise seed %" PRId64 "; chains must be independent", an, bn,
                       a->attrs.seed);
    return SPO_OK;
}

int spo_pairsrc_from_chains(spo_pairsrc **out, const spo_h5 *const *pool, const spo_h5 *const *final, int N,
                            const spo_h5 *emb, double threshold)
{
    *out = NULL;
    if (!(threshold >= 0 && threshold <= 1)) return spo_err(SPO_EINVAL, "threshold %g out of range 0..1", threshold);
    if (N < 2 || N > MAX_CHAINS) return spo_err(SPO_EINVAL, "%d chains: give 2 to %d", N, MAX_CHAINS);
    spo_poolmeta m0, mc;
    int64_t lstep;
    char emid[SPO_ID_MAX];
    int rc = spo_pool_meta(pool[0], &m0);
    if (rc) return rc;
    if (m0.K != 1) return spo_err(SPO_EINVAL, "%s: a chain's pool has one child, not %" PRId64, spo_h5_path(pool[0]), m0.K);
    if (spo_lora_step(m0.attrs.lora_id, &lstep)) return spo_err_prefix(SPO_EINVAL, "%s", spo_h5_path(pool[0]));
    if ((rc = spo_h5_get_attr_str(emb, NULL, "model_id", emid, sizeof emid))) return rc;
    if ((rc = spo_same_model(spo_h5_path(pool[0]), m0.attrs.model_id, spo_h5_path(emb), emid))) return rc;
    char etc[16]; /* the embeddings' text cleaning, as the chains' pools record it */
    if ((rc = spo_text_clean(emb, etc, sizeof etc))) return rc;
    if (m0.text_clean[0] && (rc = spo_same_text_clean(spo_h5_path(pool[0]), m0.text_clean, spo_h5_path(emb), etc)))
        return rc;
    spo_pairsrc *s = calloc(1, sizeof *s);
    if (!s) return spo_err(SPO_EIO, "out of memory");
    memcpy(s->text_clean, etc, sizeof s->text_clean);
    s->f = pool[0];
    s->embeds = emb;
    s->chains = s->own_lose_parent = 1;
    memcpy(s->model_id, m0.attrs.model_id, sizeof s->model_id);
    s->num_steps = m0.attrs.num_steps, s->guidance = m0.guidance, s->eta = m0.eta;
    s->C = m0.C, s->h = m0.h, s->w = m0.w, s->K = N;
    s->timestep = (int32_t)m0.attrs.timestep;
    size_t B = (size_t)m0.B, K = (size_t)N, chw = (size_t)(m0.C * m0.h * m0.w);
    int64_t *ids = alloc(B, sizeof *ids), *idc = alloc(B, sizeof *idc), *erow = alloc(B, sizeof *erow);
    float *tmp = alloc(B * chw, sizeof *tmp), *sc = alloc(B, sizeof *sc);
    if ((rc = spo_pairsrc_alloc(s, B, K, K, chw))) goto out;
    if (!ids || !idc || !erow || !tmp || !sc) {
        rc = spo_err(SPO_EIO, "out of memory");
        goto out;
    }
    if ((rc = spo_h5_read_i64(pool[0], "/prompt_id", ids, B))) goto out;
    if ((rc = spo_ids_distinct(ids, m0.B, spo_h5_path(pool[0])))) goto out;
    if ((rc = spo_embeds_rows(emb, ids, m0.B, spo_h5_path(pool[0]), erow))) goto out;
    if ((rc = spo_pairs_text_shape(s, emb))) goto out;
    for (int c = 0; c < N && !rc; c++) {
        if (c && (rc = spo_pool_meta(pool[c], &mc))) break;
        if (c && (rc = same_setup(pool[0], &m0, pool[c], &mc))) break;
        for (int d = 1; d < c && !rc; d++) { /* every pair of chains independent */
            spo_poolmeta md;
            if (!(rc = spo_pool_meta(pool[d], &md)) && md.attrs.seed == mc.attrs.seed)
                rc = spo_err(SPO_EINVAL, "%s and %s: the same noise seed %" PRId64 "; chains must be independent",
                             spo_h5_path(pool[d]), spo_h5_path(pool[c]), mc.attrs.seed);
        }
        if (rc) break;
        if ((rc = spo_h5_read_i64(pool[c], "/prompt_id", idc, B))) break;
        for (size_t b = 0; b < B && !rc; b++)
            if (idc[b] != ids[b])
                rc = spo_err(SPO_EINVAL, "%s: prompt %zu is id %" PRId64 ", but %" PRId64 " in %s", spo_h5_path(pool[c]),
                             b, idc[b], ids[b], spo_h5_path(pool[0]));
        /* the chain's final scores: one per prompt, of its last step */
        spo_poolmeta fm = c ? mc : m0;
        fm.attrs.step = fm.attrs.num_steps - 1, fm.K = 1;
        if (!rc) rc = spo_scores_match(final[c], pool[c], &fm, ids);
        if (!rc) rc = spo_h5_read_f32(final[c], "/scores", sc, B);
        for (size_t b = 0; b < B && !rc; b++) s->scores[b * K + (size_t)c] = sc[b];
        if (!rc) rc = spo_h5_read_f32(pool[c], "/parent", tmp, B * chw);
        for (size_t b = 0; b < B && !rc; b++) memcpy(s->parent + (b * K + (size_t)c) * chw, tmp + b * chw, chw * sizeof *tmp);
        if (!rc) rc = spo_h5_read_f32(pool[c], "/children", tmp, B * chw);
        for (size_t b = 0; b < B && !rc; b++)
            memcpy(s->children + (b * K + (size_t)c) * chw, tmp + b * chw, chw * sizeof *tmp);
    }
    if (!rc) spo_pairsrc_select(s, B, ids, erow, m0.attrs.seed, m0.attrs.step, lstep, threshold);
out:
    free(ids), free(idc), free(erow), free(tmp), free(sc);
    if (rc) spo_pairsrc_free(s);
    else *out = s;
    return rc;
}
