/* pairs_src.c — pair sources: the pairs a scored pool yields, or an
 * existing pairs file (see pairs.h). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "nn/lora.h"
#include "spo/embeds.h"
#include "spo/loopfile.h"
#include "spo/scores.h"
#include "io/h5rows.h"
#include "spo/pairs_impl.h"

void spo_pairsrc_free(spo_pairsrc *s)
{
    if (!s) return;
    void *own[] = {s->key,    s->uncond, s->uncond_pooled, s->parent, s->children, s->chain,
                   s->tr,     s->scores, s->pb,            s->erow,   s->win,      s->lose};
    for (size_t i = 0; i < sizeof own / sizeof *own; i++) free(own[i]);
    free(s);
}

int64_t spo_pairsrc_count(const spo_pairsrc *s) { return s->n; }

static void *alloc(size_t n, size_t size) { return malloc(n ? n * size : 1); }

int spo_pairs_text_shape(spo_pairsrc *s, const spo_h5 *f)
{
    spo_dsinfo di;
    int rc = spo_h5_info(f, "/cond", &di);
    if (rc) return rc;
    if (di.ndim != 3) return spo_err(SPO_EINVAL, "%s: /cond has rank %d, expected 3", spo_h5_path(f), di.ndim);
    s->L = di.shape[1], s->D = di.shape[2];
    s->cond_type = di.type == SPO_T_F16 ? SPO_T_F16 : SPO_T_F32;
    int64_t ld[2] = {s->L, s->D};
    if ((rc = spo_size_check(spo_h5_path(f), "/cond", ld, 2, 1, sizeof(float), NULL))) return rc;
    if (!(s->uncond = alloc((size_t)(s->L * s->D), sizeof *s->uncond))) return spo_err(SPO_EIO, "out of memory");
    SPO_TRY(spo_h5_read_f32(f, "/uncond", s->uncond, (size_t)(s->L * s->D)));
    SPO_TRY(spo_embeds_pooled_dim(f, &s->E));
    if (!s->E) return SPO_OK;
    if (!(s->uncond_pooled = alloc((size_t)s->E, sizeof *s->uncond_pooled))) return spo_err(SPO_EIO, "out of memory");
    return spo_h5_read_f32(f, "/uncond_pooled", s->uncond_pooled, (size_t)s->E);
}

int spo_pairsrc_open(spo_pairsrc **out, const spo_pairs *p)
{
    *out = NULL;
    const spo_pairsinfo *in = spo_pairs_info(p);
    spo_pairsrc *s = calloc(1, sizeof *s);
    if (!s) return spo_err(SPO_EIO, "out of memory");
    s->f = spo_pairs_h5(p);
    s->file = p;
    memcpy(s->model_id, in->model_id, sizeof s->model_id);
    memcpy(s->text_clean, in->text_clean, sizeof s->text_clean);
    s->num_steps = in->num_steps, s->guidance = in->guidance, s->eta = in->eta;
    s->n = in->n, s->C = in->C, s->h = in->h, s->w = in->w, s->L = in->L, s->D = in->D;
    s->cond_type = in->cond_type;
    s->own_lose_parent = in->has_parent_lose;
    s->E = in->E;
    size_t ld = (size_t)(s->L * s->D);
    s->key = alloc((size_t)s->n * 4, sizeof *s->key);
    s->uncond = alloc(ld, sizeof *s->uncond);
    spo_pairbatch b = {.key = s->key};
    int rc = !s->key || !s->uncond ? spo_err(SPO_EIO, "out of memory") : SPO_OK;
    if (!rc) memcpy(s->uncond, spo_pairs_uncond(p), ld * sizeof *s->uncond);
    if (!rc && s->E && !(s->uncond_pooled = alloc((size_t)s->E, sizeof *s->uncond_pooled)))
        rc = spo_err(SPO_EIO, "out of memory");
    if (!rc && s->E) memcpy(s->uncond_pooled, spo_pairs_uncond_pooled(p), (size_t)s->E * sizeof *s->uncond_pooled);
    if (!rc) rc = spo_pairs_read(p, 0, s->n, &b); /* every key, and every timestep checked */
    if (rc) {
        spo_pairsrc_free(s);
        return rc;
    }
    *out = s;
    return SPO_OK;
}

int spo_pairsrc_alloc(spo_pairsrc *s, size_t B, size_t np, size_t K, size_t chw)
{
    size_t T = 1 + (size_t)s->inner; /* pairs per kept prompt */
    s->parent = alloc(B * np * chw, sizeof *s->parent);
    s->children = alloc(B * K * chw, sizeof *s->children);
    s->scores = alloc(B * K, sizeof *s->scores);
    s->key = alloc(B * T * 4, sizeof *s->key);
    s->pb = alloc(B * T, sizeof *s->pb);
    s->erow = alloc(B * T, sizeof *s->erow);
    s->win = alloc(B * T, sizeof *s->win);
    s->lose = alloc(B * T, sizeof *s->lose);
    s->tr = alloc(B * T, sizeof *s->tr);
    if (s->inner) s->chain = alloc(B * K * (size_t)s->inner * chw, sizeof *s->chain);
    if (!s->parent || !s->children || !s->scores || !s->key || !s->pb || !s->erow || !s->win || !s->lose || !s->tr ||
        (s->inner && !s->chain))
        return spo_err(SPO_EIO, "out of memory");
    return SPO_OK;
}

void spo_pairsrc_select(spo_pairsrc *s, size_t B, const int64_t *ids, const int64_t *erow, int64_t seed, int64_t step,
                        int64_t lstep, double threshold)
{
    size_t K = (size_t)s->K;
    for (size_t b = 0; b < B; b++) {
        int best, worst;
        if (!spo_pair_select(s->scores + b * K, (int)K, threshold, &best, &worst)) continue;
        for (int32_t j = 0; j <= (int32_t)s->inner; j++) { /* every transition of the two chains */
            int64_t *k = s->key + 4 * s->n;
            k[0] = seed, k[1] = ids[b], k[2] = step + j, k[3] = lstep;
            s->pb[s->n] = (int64_t)b;
            s->erow[s->n] = erow[b];
            s->win[s->n] = best;
            s->lose[s->n] = worst;
            s->tr[s->n] = j;
            s->n++;
        }
    }
}

/* erow[b] = the row of embeds holding prompt ids[b]; ids distinct. */
static int map_prompts(const spo_h5 *pool, const spo_h5 *emb, const int64_t *ids, int64_t B, int64_t *erow)
{
    int rc = spo_ids_distinct(ids, B, spo_h5_path(pool));
    return rc ? rc : spo_embeds_rows(emb, ids, B, spo_h5_path(pool), erow);
}

int spo_pairsrc_from_pool(spo_pairsrc **out, const spo_h5 *pool, const spo_h5 *sc, const spo_h5 *emb,
                          double threshold)
{
    *out = NULL;
    if (!(threshold >= 0 && threshold <= 1)) return spo_err(SPO_EINVAL, "threshold %g out of range 0..1", threshold);
    spo_poolmeta m;
    int64_t lstep;
    char emid[SPO_ID_MAX];
    int rc = spo_pool_meta(pool, &m);
    if (rc) return rc;
    if (spo_lora_step(m.attrs.lora_id, &lstep)) return spo_err_prefix(SPO_EINVAL, "%s", spo_h5_path(pool));
    if ((rc = spo_h5_get_attr_str(emb, NULL, "model_id", emid, sizeof emid))) return rc;
    if ((rc = spo_same_model(spo_h5_path(pool), m.attrs.model_id, spo_h5_path(emb), emid))) return rc;
    char etc[16];
    if ((rc = spo_text_clean(emb, etc, sizeof etc))) return rc;
    if (m.text_clean[0] && (rc = spo_same_text_clean(spo_h5_path(pool), m.text_clean, spo_h5_path(emb), etc))) return rc;
    spo_pairsrc *s = calloc(1, sizeof *s);
    if (!s) return spo_err(SPO_EIO, "out of memory");
    s->f = pool;
    s->embeds = emb;
    memcpy(s->model_id, m.attrs.model_id, sizeof s->model_id);
    if ((rc = spo_text_clean(emb, s->text_clean, sizeof s->text_clean))) {
        free(s);
        return rc;
    }
    s->num_steps = m.attrs.num_steps, s->guidance = m.guidance, s->eta = m.eta;
    s->C = m.C, s->h = m.h, s->w = m.w, s->K = m.K;
    s->timestep = (int32_t)m.attrs.timestep;
    s->dt = (int32_t)(m.attrs.timestep - m.child_timestep);
    s->inner = m.inner;
    s->own_lose_parent = m.inner > 0; /* inner steps: the loser's chain has its own x_t */
    size_t B = (size_t)m.B, K = (size_t)m.K, chw = (size_t)(m.C * m.h * m.w);
    int64_t *ids = alloc(B, sizeof *ids), *erow = alloc(B, sizeof *erow);
    if ((rc = spo_pairsrc_alloc(s, B, 1, K, chw))) goto out;
    if (!ids || !erow) {
        rc = spo_err(SPO_EIO, "out of memory");
        goto out;
    }
    if ((rc = spo_h5_read_i64(pool, "/prompt_id", ids, B))) goto out;
    if ((rc = spo_scores_match(sc, pool, &m, ids))) goto out;
    if ((rc = map_prompts(pool, emb, ids, m.B, erow))) goto out;
    if ((rc = spo_pairs_text_shape(s, emb))) goto out;
    if ((rc = spo_h5_read_f32(pool, "/parent", s->parent, B * chw))) goto out;
    if ((rc = spo_h5_read_f32(pool, "/children", s->children, B * K * chw))) goto out;
    if (m.inner && (rc = spo_h5_read_f32(pool, "/inner", s->chain, B * K * (size_t)m.inner * chw))) goto out;
    if ((rc = spo_h5_read_f32(sc, "/scores", s->scores, B * K))) goto out;
    spo_pairsrc_select(s, B, ids, erow, m.attrs.seed, m.attrs.step, lstep, threshold);
out:
    free(ids);
    free(erow);
    if (rc) spo_pairsrc_free(s);
    else *out = s;
    return rc;
}

int spo_pairsrc_row(const spo_pairsrc *s, int64_t i, spo_pairrow *r)
{
    size_t chw = (size_t)(s->C * s->h * s->w);
    if (s->file) {
        spo_pairbatch b = {.key = r->key, .timestep = &r->timestep, .score_win = &r->score_win,
                           .score_lose = &r->score_lose, .parent = r->parent, .win = r->win, .lose = r->lose,
                           .cond = r->cond, .parent_lose = r->parent_lose};
        return spo_pairs_read(s->file, i, 1, &b);
    }
    size_t b = (size_t)s->pb[i], K = (size_t)s->K;
    memcpy(r->key, s->key + 4 * i, sizeof r->key);
    r->timestep = s->timestep;
    if (s->inner && s->tr[i] > 0) { /* transition j of the chains: from their step j - 1 to j */
        int64_t j = s->tr[i], w = s->win[i], l = s->lose[i];
        r->timestep = s->timestep - (int32_t)j * s->dt;
        r->score_win = s->scores[b * K + (size_t)w];
        r->score_lose = s->scores[b * K + (size_t)l];
        memcpy(r->parent, spo_pool_chain_at(s->children, s->chain, s->K, s->inner, b, w, j - 1, chw), chw * sizeof(float));
        if (r->parent_lose)
            memcpy(r->parent_lose, spo_pool_chain_at(s->children, s->chain, s->K, s->inner, b, l, j - 1, chw), chw * sizeof(float));
        memcpy(r->win, spo_pool_chain_at(s->children, s->chain, s->K, s->inner, b, w, j, chw), chw * sizeof(float));
        memcpy(r->lose, spo_pool_chain_at(s->children, s->chain, s->K, s->inner, b, l, j, chw), chw * sizeof(float));
        return r->cond ? spo_pairsrc_cond(s, i, r->cond) : SPO_OK;
    }
    r->score_win = s->scores[b * K + (size_t)s->win[i]];
    r->score_lose = s->scores[b * K + (size_t)s->lose[i]];
    if (s->chains) { /* chain win's x_t and x_{t-1}, chain lose's */
        memcpy(r->parent, s->parent + (b * K + (size_t)s->win[i]) * chw, chw * sizeof *r->parent);
        if (r->parent_lose)
            memcpy(r->parent_lose, s->parent + (b * K + (size_t)s->lose[i]) * chw, chw * sizeof *r->parent_lose);
    } else {
        memcpy(r->parent, s->parent + b * chw, chw * sizeof *r->parent);
        if (r->parent_lose) memcpy(r->parent_lose, r->parent, chw * sizeof *r->parent_lose);
    }
    memcpy(r->win, s->children + (b * K + (size_t)s->win[i]) * chw, chw * sizeof *r->win);
    memcpy(r->lose, s->children + (b * K + (size_t)s->lose[i]) * chw, chw * sizeof *r->lose);
    return r->cond ? spo_pairsrc_cond(s, i, r->cond) : SPO_OK;
}

int spo_pairsrc_cond(const spo_pairsrc *s, int64_t i, float *cond)
{
    if (!s->file) return spo_h5_read_rows(s->embeds, "/cond", SPO_T_F32, s->erow[i], 1, cond);
    spo_pairbatch b = {.cond = cond};
    return spo_pairs_read(s->file, i, 1, &b);
}

int spo_pairsrc_pooled(const spo_pairsrc *s, int64_t i, float *pooled)
{
    if (!s->file) return spo_h5_read_rows(s->embeds, "/pooled", SPO_T_F32, s->erow[i], 1, pooled);
    spo_pairbatch b = {.pooled = pooled};
    return spo_pairs_read(s->file, i, 1, &b);
}
