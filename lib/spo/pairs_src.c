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
    free(s->key);
    free(s->uncond);
    free(s->parent);
    free(s->children);
    free(s->scores);
    free(s->pb);
    free(s->erow);
    free(s->win);
    free(s->lose);
    free(s);
}

int64_t spo_pairsrc_count(const spo_pairsrc *s) { return s->n; }

static void *alloc(size_t n, size_t size) { return malloc(n ? n * size : 1); }

/* /cond [P,L,D] and /uncond [1,L,D] of an embeds or pairs file. */
static int text_shape(spo_pairsrc *s, const spo_h5 *f, int64_t *rows)
{
    spo_dsinfo di;
    int rc = spo_h5_info(f, "/cond", &di);
    if (rc) return rc;
    if (di.ndim != 3) return spo_err(SPO_EINVAL, "%s: /cond has rank %d, expected 3", spo_h5_path(f), di.ndim);
    *rows = di.shape[0], s->L = di.shape[1], s->D = di.shape[2];
    s->cond_type = di.type == SPO_T_F16 ? SPO_T_F16 : SPO_T_F32;
    if (!(s->uncond = alloc((size_t)(s->L * s->D), sizeof *s->uncond))) return spo_err(SPO_EIO, "out of memory");
    return spo_h5_read_f32(f, "/uncond", s->uncond, (size_t)(s->L * s->D));
}

int spo_pairsrc_open(spo_pairsrc **out, const spo_h5 *f)
{
    *out = NULL;
    spo_pairsrc *s = calloc(1, sizeof *s);
    if (!s) return spo_err(SPO_EIO, "out of memory");
    s->f = f;
    spo_dsinfo di;
    int64_t nc = 0;
    int rc = spo_h5_get_attr_str(f, NULL, "model_id", s->model_id, sizeof s->model_id);
    if (!rc) rc = spo_h5_get_attr_int(f, NULL, "num_steps", &s->num_steps);
    if (!rc) rc = spo_h5_get_attr_float(f, NULL, "guidance", &s->guidance);
    if (!rc) rc = spo_h5_get_attr_float(f, NULL, "eta", &s->eta);
    if (!rc) rc = spo_h5_info(f, "/parent", &di);
    if (!rc && di.ndim != 4) rc = spo_err(SPO_EINVAL, "%s: /parent has rank %d, expected 4", spo_h5_path(f), di.ndim);
    if (!rc) {
        s->n = di.shape[0], s->C = di.shape[1], s->h = di.shape[2], s->w = di.shape[3];
        rc = text_shape(s, f, &nc);
    }
    if (!rc && nc != s->n)
        rc = spo_err(SPO_EINVAL, "%s: /cond has %" PRId64 " rows, /parent %" PRId64, spo_h5_path(f), nc, s->n);
    if (!rc && !(s->key = alloc((size_t)s->n * 4, sizeof *s->key))) rc = spo_err(SPO_EIO, "out of memory");
    if (!rc) rc = spo_h5_read_i64(f, "/key", s->key, (size_t)s->n * 4);
    if (rc) {
        spo_pairsrc_free(s);
        return rc;
    }
    *out = s;
    return SPO_OK;
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
    int64_t lstep, nc;
    char emid[SPO_ID_MAX];
    int rc = spo_pool_meta(pool, &m);
    if (rc) return rc;
    if (spo_lora_step(m.lora_id, &lstep)) return spo_err_prefix(SPO_EINVAL, "%s", spo_h5_path(pool));
    if ((rc = spo_h5_get_attr_str(emb, NULL, "model_id", emid, sizeof emid))) return rc;
    if ((rc = spo_same_model(spo_h5_path(pool), m.model_id, spo_h5_path(emb), emid))) return rc;
    spo_pairsrc *s = calloc(1, sizeof *s);
    if (!s) return spo_err(SPO_EIO, "out of memory");
    s->f = pool;
    s->embeds = emb;
    memcpy(s->model_id, m.model_id, sizeof s->model_id);
    s->num_steps = m.num_steps, s->guidance = m.guidance, s->eta = m.eta;
    s->C = m.C, s->h = m.h, s->w = m.w, s->K = m.K;
    s->timestep = (int32_t)m.timestep;
    size_t B = (size_t)m.B, K = (size_t)m.K, chw = (size_t)(m.C * m.h * m.w);
    int64_t *ids = alloc(B, sizeof *ids);
    s->parent = alloc(B * chw, sizeof *s->parent);
    s->children = alloc(B * K * chw, sizeof *s->children);
    s->scores = alloc(B * K, sizeof *s->scores);
    s->key = alloc(B * 4, sizeof *s->key);
    s->pb = alloc(B, sizeof *s->pb);
    s->erow = alloc(B, sizeof *s->erow);
    s->win = alloc(B, sizeof *s->win);
    s->lose = alloc(B, sizeof *s->lose);
    int64_t *erow = alloc(B, sizeof *erow);
    if (!ids || !s->parent || !s->children || !s->scores || !s->key || !s->pb || !s->erow || !s->win || !s->lose ||
        !erow) {
        rc = spo_err(SPO_EIO, "out of memory");
        goto out;
    }
    if ((rc = spo_h5_read_i64(pool, "/prompt_id", ids, B))) goto out;
    if ((rc = spo_scores_match(sc, pool, &m, ids))) goto out;
    if ((rc = map_prompts(pool, emb, ids, m.B, erow))) goto out;
    if ((rc = text_shape(s, emb, &nc))) goto out;
    if ((rc = spo_h5_read_f32(pool, "/parent", s->parent, B * chw))) goto out;
    if ((rc = spo_h5_read_f32(pool, "/children", s->children, B * K * chw))) goto out;
    if ((rc = spo_h5_read_f32(sc, "/scores", s->scores, B * K))) goto out;
    for (size_t b = 0; b < B; b++) {
        int best, worst;
        if (!spo_pair_select(s->scores + b * K, (int)K, threshold, &best, &worst)) continue;
        int64_t *k = s->key + 4 * s->n;
        k[0] = m.seed, k[1] = ids[b], k[2] = m.step, k[3] = lstep;
        s->pb[s->n] = (int64_t)b;
        s->erow[s->n] = erow[b];
        s->win[s->n] = best;
        s->lose[s->n] = worst;
        s->n++;
    }
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
    if (s->embeds) { /* from a pool */
        size_t b = (size_t)s->pb[i], K = (size_t)s->K;
        memcpy(r->key, s->key + 4 * i, sizeof r->key);
        r->timestep = s->timestep;
        r->score_win = s->scores[b * K + (size_t)s->win[i]];
        r->score_lose = s->scores[b * K + (size_t)s->lose[i]];
        memcpy(r->parent, s->parent + b * chw, chw * sizeof *r->parent);
        memcpy(r->win, s->children + (b * K + (size_t)s->win[i]) * chw, chw * sizeof *r->win);
        memcpy(r->lose, s->children + (b * K + (size_t)s->lose[i]) * chw, chw * sizeof *r->lose);
        return spo_h5_read_rows(s->embeds, "/cond", SPO_T_F32, s->erow[i], 1, r->cond);
    }
    const spo_h5 *f = s->f;
    int rc = spo_h5_read_rows(f, "/key", SPO_T_I64, i, 1, r->key);
    if (!rc) rc = spo_h5_read_rows(f, "/timestep", SPO_T_I32, i, 1, &r->timestep);
    if (!rc) rc = spo_h5_read_rows(f, "/score_win", SPO_T_F32, i, 1, &r->score_win);
    if (!rc) rc = spo_h5_read_rows(f, "/score_lose", SPO_T_F32, i, 1, &r->score_lose);
    if (!rc) rc = spo_h5_read_rows(f, "/parent", SPO_T_F32, i, 1, r->parent);
    if (!rc) rc = spo_h5_read_rows(f, "/win", SPO_T_F32, i, 1, r->win);
    if (!rc) rc = spo_h5_read_rows(f, "/lose", SPO_T_F32, i, 1, r->lose);
    if (!rc) rc = spo_h5_read_rows(f, "/cond", SPO_T_F32, i, 1, r->cond);
    return rc;
}
