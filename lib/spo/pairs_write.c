/* pairs_write.c — merge pair sources into one pairs/2 file, sorted by key,
 * each key once, one pair in memory at a time, then the table of the
 * pairs' prompts (see pairs.h). */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "io/h5rows.h"
#include "spo/loopfile.h"
#include "spo/pairs_impl.h"

/* Every source must be the same kind of pairs as the first. */
static int compatible(const spo_pairsrc *a, const spo_pairsrc *b)
{
    const char *an = spo_h5_path(a->f), *bn = spo_h5_path(b->f);
    if (strcmp(a->model_id, b->model_id))
        return spo_err(SPO_EINVAL, "cannot mix pairs of model '%s' (%s) and '%s' (%s)", a->model_id, an, b->model_id,
                       bn);
    if (strcmp(a->text_clean, b->text_clean))
        return spo_same_text_clean(an, a->text_clean, bn, b->text_clean);
    if (a->num_steps != b->num_steps)
        return spo_err(SPO_EINVAL, "cannot mix pairs of %" PRId64 " steps (%s) and %" PRId64 " steps (%s)",
                       a->num_steps, an, b->num_steps, bn);
    if (a->guidance != b->guidance)
        return spo_err(SPO_EINVAL, "cannot mix pairs of guidance %g (%s) and %g (%s)", a->guidance, an, b->guidance, bn);
    if (a->eta != b->eta)
        return spo_err(SPO_EINVAL, "cannot mix pairs of eta %g (%s) and %g (%s)", a->eta, an, b->eta, bn);
    if (a->C != b->C || a->h != b->h || a->w != b->w)
        return spo_err(SPO_EINVAL,
                       "cannot mix latents [%" PRId64 ",%" PRId64 ",%" PRId64 "] (%s) and [%" PRId64 ",%" PRId64
                       ",%" PRId64 "] (%s)", a->C, a->h, a->w, an, b->C, b->h, b->w, bn);
    if (a->L != b->L || a->D != b->D)
        return spo_err(SPO_EINVAL, "cannot mix text embeddings [%" PRId64 ",%" PRId64 "] (%s) and [%" PRId64 ",%" PRId64
                       "] (%s)", a->L, a->D, an, b->L, b->D, bn);
    for (int64_t i = 0; i < a->L * a->D; i++)
        if (!(fabsf(a->uncond[i] - b->uncond[i]) <= 1e-2f * (1.0f + fabsf(a->uncond[i]))))
            return spo_err(SPO_EINVAL, "cannot mix pairs with different /uncond (%s, %s)", an, bn);
    if (a->E != b->E)
        return spo_err(SPO_EINVAL, "cannot mix pairs with pooled text width %" PRId64 " (%s) and %" PRId64 " (%s)", a->E,
                       an, b->E, bn);
    for (int64_t i = 0; i < a->E; i++)
        if (!(fabsf(a->uncond_pooled[i] - b->uncond_pooled[i]) <= 1e-2f * (1.0f + fabsf(a->uncond_pooled[i]))))
            return spo_err(SPO_EINVAL, "cannot mix pairs with different /uncond_pooled (%s, %s)", an, bn);
    return SPO_OK;
}

static const char *const latent_ds[] = {"/parent", "/win", "/lose"};

/* The datasets of N pairs of P prompts, and the attributes. */
static int create_all(spo_h5 *out, const spo_pairsrc *s, int64_t N, int64_t P, spo_dtype_t ct, int lose_parent)
{
    int64_t key[2] = {N, 4}, lat[4] = {N, s->C, s->h, s->w}, txt[3] = {P, s->L, s->D};
    int rc = spo_h5_create_rows(out, "/key", SPO_T_I64, 2, key);
    for (int i = 0; i < 3 && !rc; i++) rc = spo_h5_create_rows(out, latent_ds[i], SPO_T_F32, 4, lat);
    if (!rc && lose_parent) rc = spo_h5_create_rows(out, "/parent_lose", SPO_T_F32, 4, lat);
    if (!rc) rc = spo_h5_create_rows(out, "/timestep", SPO_T_I32, 1, &N);
    if (!rc) rc = spo_h5_create_rows(out, "/score_win", SPO_T_F32, 1, &N);
    if (!rc) rc = spo_h5_create_rows(out, "/score_lose", SPO_T_F32, 1, &N);
    if (!rc) rc = spo_h5_create_rows(out, "/prompt_id", SPO_T_I64, 1, &P);
    if (!rc) rc = spo_h5_create_rows(out, "/cond", ct, 3, txt);
    txt[0] = 1;
    if (!rc) rc = spo_h5_write(out, "/uncond", ct, 3, txt, s->uncond);
    int64_t pe[2] = {P, s->E};
    if (!rc && s->E) rc = spo_h5_create_rows(out, "/pooled", ct, 2, pe);
    pe[0] = 1;
    if (!rc && s->E) rc = spo_h5_write(out, "/uncond_pooled", ct, 2, pe, s->uncond_pooled);
    const spo_h5_attrval at[] = {
        {"model_id", SPO_ATTR_STR, .s = s->model_id}, {"text_clean", SPO_ATTR_STR, .s = s->text_clean},
        {"num_steps", SPO_ATTR_INT, .i = s->num_steps}, {"guidance", SPO_ATTR_REAL, .f = s->guidance},
        {"eta", SPO_ATTR_REAL, .f = s->eta},          {NULL},
    };
    return rc ? rc : spo_h5_attrs(out, NULL, at);
}

static int put_row(spo_h5 *out, int64_t i, const spo_pairrow *r)
{
    int rc = spo_h5_write_rows(out, "/key", SPO_T_I64, i, 1, r->key);
    if (!rc) rc = spo_h5_write_rows(out, "/timestep", SPO_T_I32, i, 1, &r->timestep);
    if (!rc) rc = spo_h5_write_rows(out, "/score_win", SPO_T_F32, i, 1, &r->score_win);
    if (!rc) rc = spo_h5_write_rows(out, "/score_lose", SPO_T_F32, i, 1, &r->score_lose);
    if (!rc) rc = spo_h5_write_rows(out, "/parent", SPO_T_F32, i, 1, r->parent);
    if (!rc) rc = spo_h5_write_rows(out, "/win", SPO_T_F32, i, 1, r->win);
    if (!rc) rc = spo_h5_write_rows(out, "/lose", SPO_T_F32, i, 1, r->lose);
    if (!rc && r->parent_lose) rc = spo_h5_write_rows(out, "/parent_lose", SPO_T_F32, i, 1, r->parent_lose);
    return rc;
}

/* A prompt of the table: its id and the first pair (in key order) of it. */
typedef struct {
    int64_t id, first;
} tentry;

static int cmp_tentry(const void *pa, const void *pb)
{
    const tentry *a = pa, *b = pb;
    if (a->id != b->id) return a->id < b->id ? -1 : 1;
    return (a->first > b->first) - (a->first < b->first);
}

/* The distinct prompt ids of the planned pairs, increasing, each with the
 * first pair that has it. *P gets their number. */
static int plan_table(spo_pairsrc *const *src, const spo_pairref *plan, int64_t N, tentry **out, int64_t *P)
{
    tentry *t = malloc(((size_t)N + 1) * sizeof *t);
    if (!t) return spo_err(SPO_EIO, "out of memory");
    for (int64_t i = 0; i < N; i++) t[i] = (tentry){src[plan[i].src]->key[4 * plan[i].row + 1], i};
    qsort(t, (size_t)N, sizeof *t, cmp_tentry);
    int64_t k = 0;
    for (int64_t i = 0; i < N; i++)
        if (!k || t[i].id != t[k - 1].id) t[k++] = t[i];
    *out = t;
    *P = k;
    return SPO_OK;
}

int spo_pairs_write(spo_h5 *out, spo_pairsrc *const *src, int nsrc, int64_t *written)
{
    if (nsrc < 1) return spo_err(SPO_EINVAL, "no pairs to write");
    int rc = SPO_OK;
    spo_dtype_t ct = SPO_T_F16; /* f16 only when every source stores f16 */
    int lose_parent = 0;        /* /parent_lose when any source has loser parents of their own */
    for (int i = 0; i < nsrc && !rc; i++) {
        if (i) rc = compatible(src[0], src[i]);
        if (src[i]->cond_type != SPO_T_F16) ct = SPO_T_F32;
        lose_parent |= src[i]->own_lose_parent;
    }
    if (rc) return rc;
    const int64_t **keys = malloc((size_t)nsrc * sizeof *keys);
    int64_t *n = malloc((size_t)nsrc * sizeof *n), N = 0, P = 0;
    spo_pairref *plan = NULL;
    tentry *table = NULL;
    if (!keys || !n) rc = spo_err(SPO_EIO, "out of memory");
    for (int i = 0; i < nsrc && !rc; i++) keys[i] = src[i]->key, n[i] = src[i]->n;
    if (!rc) rc = spo_pairs_plan(keys, n, nsrc, &plan, &N);
    free(keys);
    free(n);
    if (!rc) rc = plan_table(src, plan, N, &table, &P);
    const spo_pairsrc *s0 = src[0];
    size_t chw = (size_t)(s0->C * s0->h * s0->w), ld = (size_t)(s0->L * s0->D), E = (size_t)s0->E;
    float *buf = rc ? NULL : malloc((4 * chw + ld + E + 1) * sizeof *buf);
    if (!rc && !buf) rc = spo_err(SPO_EIO, "out of memory");
    spo_pairrow r = {.parent = buf, .win = buf + chw, .lose = buf + 2 * chw,
                     .parent_lose = lose_parent ? buf + 3 * chw + ld : NULL}; /* cond at buf + 3 chw */
    if (!rc) rc = create_all(out, s0, N, P, ct, lose_parent);
    for (int64_t i = 0; i < N && !rc; i++) {
        rc = spo_pairsrc_row(src[plan[i].src], plan[i].row, &r);
        if (!rc) rc = put_row(out, i, &r);
    }
    for (int64_t p = 0; p < P && !rc; p++) {
        const spo_pairref *f = &plan[table[p].first];
        rc = spo_pairsrc_cond(src[f->src], f->row, buf + 3 * chw);
        if (!rc) rc = spo_h5_write_rows(out, "/prompt_id", SPO_T_I64, p, 1, &table[p].id);
        if (!rc) rc = spo_h5_write_rows(out, "/cond", SPO_T_F32, p, 1, buf + 3 * chw);
        if (!rc && E) rc = spo_pairsrc_pooled(src[f->src], f->row, buf + 4 * chw + ld);
        if (!rc && E) rc = spo_h5_write_rows(out, "/pooled", SPO_T_F32, p, 1, buf + 4 * chw + ld);
    }
    free(buf);
    free(plan);
    free(table);
    if (!rc && written) *written = N;
    return rc;
}
