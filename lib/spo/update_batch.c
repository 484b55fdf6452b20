/* update_batch.c — the pairs spo-step-update trains on, read a row at a
 * time (pairs/1 layout), and the seeded batch permutation (see update.h).
 *
 * Files are checked against the pairs schema from their listing without
 * scanning the data (the NaN/Inf scan of spo_h5_open reads whole datasets,
 * so its memory grows with the file); rows are checked for finiteness as
 * they are read instead. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/philox.h"
#include "io/h5rows.h"
#include "spo/update.h"

#define PERM_STREAM 0xFFFFFFFBu /* Philox prompt id of the batch permutation */

struct spo_pairs_in {
    int nf;
    spo_h5 **f;
    int64_t *first;    /* first global row of each file; first[nf] = n */
    spo_pairs_meta meta;
    float *uncond;
};

void spo_pairs_in_close(spo_pairs_in *p)
{
    if (!p) return;
    for (int i = 0; i < p->nf; i++) spo_h5_close(p->f[i]);
    free(p->f), free(p->first), free(p->uncond), free(p);
}

const spo_pairs_meta *spo_pairs_in_meta(const spo_pairs_in *p) { return &p->meta; }
const float *spo_pairs_in_uncond(const spo_pairs_in *p) { return p->uncond; }

static int open_checked(spo_h5 **f, const char *path)
{
    int rc = spo_h5_open(f, path, NULL, NULL);
    if (rc) return rc;
    spo_fileinfo fi = {0};
    const spo_schema *s = spo_schema_builtin("pairs");
    rc = s ? spo_h5_listing(*f, &fi, 0) : spo_err(SPO_EINVAL, "no built-in pairs schema");
    if (!rc && strcmp(fi.schema, "pairs/1"))
        rc = spo_err(SPO_EINVAL, "%s: a '%s' file, expected pairs/1", path, fi.schema[0] ? fi.schema : "non-spo");
    if (!rc) rc = spo_schema_check(s, &fi, spo_h5_path(*f), NULL);
    spo_fileinfo_free(&fi);
    if (rc) spo_h5_close(*f), *f = NULL;
    return rc;
}

/* the metadata of one file into m */
static int read_meta(const spo_h5 *f, spo_pairs_meta *m)
{
    spo_dsinfo p, c;
    int rc = spo_h5_get_attr_str(f, NULL, "model_id", m->model_id, sizeof m->model_id);
    if (!rc) rc = spo_h5_get_attr_int(f, NULL, "num_steps", &m->num_steps);
    if (!rc) rc = spo_h5_get_attr_float(f, NULL, "guidance", &m->guidance);
    if (!rc) rc = spo_h5_get_attr_float(f, NULL, "eta", &m->eta);
    if (!rc) rc = spo_h5_info(f, "/parent", &p);
    if (!rc) rc = spo_h5_info(f, "/cond", &c);
    if (rc) return rc;
    m->n = p.shape[0], m->C = (int)p.shape[1], m->h = (int)p.shape[2], m->w = (int)p.shape[3];
    m->L = (int)c.shape[1], m->D = (int)c.shape[2];
    return SPO_OK;
}

static int same_meta(const spo_pairs_meta *a, const spo_pairs_meta *b, const char *fa, const char *fb)
{
    if (strcmp(a->model_id, b->model_id))
        return spo_err(SPO_EINVAL, "%s: pairs of model '%s', but %s holds model '%s'", fb, b->model_id, fa, a->model_id);
    if (a->num_steps != b->num_steps || a->guidance != b->guidance || a->eta != b->eta)
        return spo_err(SPO_EINVAL, "%s: sampled with %" PRId64 " steps, guidance %g, eta %g; %s with %" PRId64
                                   " steps, guidance %g, eta %g",
                       fb, b->num_steps, b->guidance, b->eta, fa, a->num_steps, a->guidance, a->eta);
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
        if ((rc = open_checked(&p->f[i], paths[i]))) break;
        p->nf = i + 1;
        if ((rc = read_meta(p->f[i], &m))) break;
        if (i == 0) p->meta = m, p->meta.n = 0;
        else if ((rc = same_meta(&p->meta, &m, paths[0], paths[i]))) break;
        p->first[i] = p->meta.n;
        p->meta.n += m.n;
    }
    if (!rc) p->first[np] = p->meta.n;
    if (!rc && p->meta.n == 0)
        rc = spo_err(SPO_EINVAL, "%s: no pairs to train on", np == 1 ? paths[0] : "the pairs files");
    size_t ld = rc ? 0 : (size_t)p->meta.L * p->meta.D;
    if (!rc && !(p->uncond = malloc(ld * sizeof *p->uncond))) rc = spo_err(SPO_EIO, "out of memory");
    if (!rc) rc = spo_h5_read_f32(p->f[0], "/uncond", p->uncond, ld);
    for (size_t i = 0; i < ld && !rc; i++)
        if (!isfinite(p->uncond[i])) rc = spo_err(SPO_EINVAL, "%s: /uncond is not finite", paths[0]);
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

int spo_pairs_in_row(spo_pairs_in *p, int64_t i, float *parent, float *win, float *lose, float *cond, int *t)
{
    if (i < 0 || i >= p->meta.n) return spo_err(SPO_EINVAL, "pair %" PRId64 " out of range", i);
    int k = 0;
    while (i >= p->first[k + 1]) k++;
    const spo_h5 *f = p->f[k];
    int64_t r = i - p->first[k];
    int32_t ts;
    int rc = spo_h5_read_rows(f, "/parent", SPO_T_F32, r, 1, parent);
    if (!rc) rc = spo_h5_read_rows(f, "/win", SPO_T_F32, r, 1, win);
    if (!rc) rc = spo_h5_read_rows(f, "/lose", SPO_T_F32, r, 1, lose);
    if (!rc) rc = spo_h5_read_rows(f, "/cond", SPO_T_F32, r, 1, cond);
    if (!rc) rc = spo_h5_read_rows(f, "/timestep", SPO_T_I32, r, 1, &ts);
    if (rc) return rc;
    size_t lat = (size_t)p->meta.C * p->meta.h * p->meta.w;
    if (!all_finite(parent, lat) || !all_finite(win, lat) || !all_finite(lose, lat) ||
        !all_finite(cond, (size_t)p->meta.L * p->meta.D))
        return spo_err(SPO_EINVAL, "%s: pair %" PRId64 " holds NaN or Inf", spo_h5_path(f), r);
    *t = ts;
    return SPO_OK;
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
