/* update_batch.c — the pairs spo-step-update trains on, read a row at a
 * time through the pairs module (spo/pairs.h: pairs/1 and pairs/2), over
 * several files as one sequence, and the seeded batch permutation (see
 * update.h). Rows are checked for finiteness as they are read. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/philox.h"
#include "spo/loopfile.h"
#include "spo/pairs.h"
#include "spo/update.h"

#define PERM_STREAM 0xFFFFFFFBu /* Philox prompt id of the batch permutation */

struct spo_pairs_in {
    int nf;
    spo_pairs **f;
    int64_t *first;    /* first global row of each file; first[nf] = n */
    spo_pairs_meta meta;
    float *uncond;
    float *uncond_pooled; /* SDXL: (E) */
};

void spo_pairs_in_close(spo_pairs_in *p)
{
    if (!p) return;
    for (int i = 0; i < p->nf; i++) spo_pairs_close(p->f[i]);
    free(p->f), free(p->first), free(p->uncond), free(p->uncond_pooled), free(p);
}

const spo_pairs_meta *spo_pairs_in_meta(const spo_pairs_in *p) { return &p->meta; }
const float *spo_pairs_in_uncond(const spo_pairs_in *p) { return p->uncond; }
const float *spo_pairs_in_uncond_pooled(const spo_pairs_in *p) { return p->uncond_pooled; }

/* the metadata of one pairs file (pairs/1 or pairs/2) into m */
static void read_meta(const spo_pairs *f, spo_pairs_meta *m)
{
    const spo_pairsinfo *in = spo_pairs_info(f);
    snprintf(m->model_id, sizeof m->model_id, "%s", in->model_id);
    snprintf(m->text_clean, sizeof m->text_clean, "%s", in->text_clean);
    m->num_steps = in->num_steps, m->guidance = in->guidance, m->eta = in->eta;
    m->n = in->n, m->C = (int)in->C, m->h = (int)in->h, m->w = (int)in->w;
    m->L = (int)in->L, m->D = (int)in->D;
    m->own_lose_parent = in->has_parent_lose;
    m->E = (int)in->E;
}

static int same_meta(const spo_pairs_meta *a, const spo_pairs_meta *b, const char *fa, const char *fb)
{
    if (strcmp(a->model_id, b->model_id))
        return spo_err(SPO_EINVAL, "%s: pairs of model '%s', but %s holds model '%s'", fb, b->model_id, fa, a->model_id);
    if (strcmp(a->text_clean, b->text_clean)) return spo_same_text_clean(fa, a->text_clean, fb, b->text_clean);
    if (a->num_steps != b->num_steps || a->guidance != b->guidance || a->eta != b->eta)
        return spo_err(SPO_EINVAL, "%s: sampled with %" PRId64 " steps, guidance %g, eta %g; %s with %" PRId64
                                   " steps, guidance %g, eta %g",
                       fb, b->num_steps, b->guidance, b->eta, fa, a->num_steps, a->guidance, a->eta);
    if (a->E != b->E)
        return spo_err(SPO_EINVAL, "%s: pooled text width %d, but %s has %d", fb, b->E, fa, a->E);
    if (a->C != b->C || a->h != b->h || a->w != b->w || a->L != b->L || a->D != b->D)
        return spo_err(SPO_EINVAL, "%s: latents [%d,%d,%d] and text [%d,%d], but %s has [%d,%d,%d] and [%d,%d]", fb,
                       b->C, b->h, b->w, b->L, b->D, fa, a->C, a->h, a->w, a->L, a->D);
    return SPO_OK;
}

int spo_pairs_in_open(spo_pairs_in **out, const char *const *paths, int np)
{
    *out = NULL;
    spo_pairs_in *p = calloc(1, sizeof *p);
    if (!p) return spo_err(SPO_EIO, "out of memory");
    p->f = calloc((size_t)np, sizeof *p->f);
    p->first = calloc((size_t)np + 1, sizeof *p->first);
    int rc = (!p->f || !p->first || np < 1) ? spo_err(SPO_EIO, "out of memory") : SPO_OK;
    for (int i = 0; i < np && !rc; i++) {
        spo_pairs_meta m = {0};
        if ((rc = spo_pairs_open(&p->f[i], paths[i], NULL))) break;
        p->nf = i + 1;
        read_meta(p->f[i], &m);
        if (i == 0) p->meta = m, p->meta.n = 0;
        else if ((rc = same_meta(&p->meta, &m, paths[0], paths[i]))) break;
        p->meta.own_lose_parent |= m.own_lose_parent;
        p->first[i] = p->meta.n;
        p->meta.n += m.n;
    }
    if (!rc) p->first[np] = p->meta.n;
    if (!rc && p->meta.n == 0)
        rc = spo_err(SPO_EINVAL, "%s: no pairs to train on", np == 1 ? paths[0] : "the pairs files");
    size_t ld = rc ? 0 : (size_t)p->meta.L * p->meta.D;
    if (!rc && !(p->uncond = malloc(ld * sizeof *p->uncond))) rc = spo_err(SPO_EIO, "%s: out of memory", paths[0]);
    if (!rc) memcpy(p->uncond, spo_pairs_uncond(p->f[0]), ld * sizeof *p->uncond);
    for (size_t i = 0; i < ld && !rc; i++)
        if (!isfinite(p->uncond[i])) rc = spo_err(SPO_EINVAL, "%s: /uncond is not finite", paths[0]);
    size_t E = rc ? 0 : (size_t)p->meta.E;
    if (E && !(p->uncond_pooled = malloc(E * sizeof *p->uncond_pooled))) rc = spo_err(SPO_EIO, "out of memory");
    if (E && !rc) memcpy(p->uncond_pooled, spo_pairs_uncond_pooled(p->f[0]), E * sizeof *p->uncond_pooled);
    for (size_t i = 0; i < E && !rc; i++)
        if (!isfinite(p->uncond_pooled[i])) rc = spo_err(SPO_EINVAL, "%s: /uncond_pooled is not finite", paths[0]);
    if (rc) {
        spo_pairs_in_close(p);
        return rc;
    }
    *out = p;
    return SPO_OK;
}

static int all_finite(const float *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(a[i])) return 0;
    return 1;
}

/* the file k of pair i and its row r there */
static int locate(const spo_pairs_in *p, int64_t i, int *k, int64_t *r)
{
    if (i < 0 || i >= p->meta.n) return spo_err(SPO_EINVAL, "pair %" PRId64 " out of range", i);
    *k = 0;
    while (i >= p->first[*k + 1]) (*k)++;
    *r = i - p->first[*k];
    return SPO_OK;
}

int spo_pairs_in_row(spo_pairs_in *p, int64_t i, float *parent, float *win, float *lose, float *cond, int *t)
{
    int k;
    int64_t r;
    SPO_TRY(locate(p, i, &k, &r));
    int32_t ts;
    spo_pairbatch b = {.parent = parent, .win = win, .lose = lose, .cond = cond, .timestep = &ts};
    int rc = spo_pairs_read(p->f[k], r, 1, &b);
    if (rc) return rc;
    size_t lat = (size_t)p->meta.C * p->meta.h * p->meta.w;
    if (!all_finite(parent, lat) || !all_finite(win, lat) || !all_finite(lose, lat) ||
        !all_finite(cond, (size_t)p->meta.L * p->meta.D))
        return spo_err(SPO_EINVAL, "%s: pair %" PRId64 " holds NaN or Inf", spo_h5_path(spo_pairs_h5(p->f[k])), r);
    *t = ts;
    return SPO_OK;
}

int spo_pairs_in_parent_lose(spo_pairs_in *p, int64_t i, float *parent_lose)
{
    int k;
    int64_t r;
    SPO_TRY(locate(p, i, &k, &r));
    spo_pairbatch b = {.parent_lose = parent_lose};
    int rc = spo_pairs_read(p->f[k], r, 1, &b);
    if (!rc && !all_finite(parent_lose, (size_t)p->meta.C * p->meta.h * p->meta.w))
        rc = spo_err(SPO_EINVAL, "%s: pair %" PRId64 " holds NaN or Inf", spo_h5_path(spo_pairs_h5(p->f[k])), r);
    return rc;
}

void spo_update_perm(int64_t *perm, int64_t n, uint64_t seed, int64_t step0, int64_t pass)
{
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    uint32_t st = (uint32_t)step0, ps = (uint32_t)pass;
    for (int64_t i = n - 1; i > 0; i--) {
        uint64_t w = (uint64_t)spo_uniform_u32(seed, PERM_STREAM, st, ps, (uint64_t)(2 * i)) << 32 |
                     spo_uniform_u32(seed, PERM_STREAM, st, ps, (uint64_t)(2 * i + 1));
        int64_t j = (int64_t)(w % (uint64_t)(i + 1));
        int64_t x = perm[i];
        perm[i] = perm[j], perm[j] = x;
    }
}

int spo_pairs_in_pooled(spo_pairs_in *p, int64_t i, float *pooled)
{
    int k;
    int64_t r;
    SPO_TRY(locate(p, i, &k, &r));
    spo_pairbatch b = {.pooled = pooled};
    SPO_TRY(spo_pairs_read(p->f[k], r, 1, &b));
    if (!all_finite(pooled, (size_t)p->meta.E))
        return spo_err(SPO_EINVAL, "%s: pair %" PRId64 "'s /pooled holds NaN or Inf", spo_h5_path(spo_pairs_h5(p->f[k])),
                       r);
    return SPO_OK;
}
