/* pairs_read.c — reading pairs/1 and pairs/2 files by rows (see pairs.h). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "io/h5rows.h"
#include "spo/ddim.h"
#include "spo/loop_state.h"
#include "spo/loopfile.h"
#include "spo/pairs.h"

#define SPO_MAX_TEXT 65536 /* text length and width */

struct spo_pairs {
    spo_h5 *f;
    spo_pairsinfo in;
    float *uncond; /* [L*D] */
    float *uncond_pooled; /* [E] */
    int64_t *pids; /* pairs/2: the table's prompt ids [P], increasing */
};

const spo_pairsinfo *spo_pairs_info(const spo_pairs *p) { return &p->in; }
const float *spo_pairs_uncond(const spo_pairs *p) { return p->uncond; }
const float *spo_pairs_uncond_pooled(const spo_pairs *p) { return p->uncond_pooled; }
const spo_h5 *spo_pairs_h5(const spo_pairs *p) { return p->f; }

void spo_pairs_close(spo_pairs *p)
{
    if (!p) return;
    spo_h5_close(p->f);
    free(p->uncond), free(p->uncond_pooled), free(p->pids), free(p);
}

/* SDXL's /pooled [P,E] and /uncond_pooled [1,E] (pairs/2), both or neither. */
static int read_pooled_info(spo_pairs *p)
{
    spo_pairsinfo *in = &p->in;
    const char *fn = spo_h5_path(p->f);
    int hp = spo_h5_exists(p->f, "/pooled"), hu = spo_h5_exists(p->f, "/uncond_pooled");
    if (!hp && !hu) return SPO_OK;
    if (!hp || !hu || in->version < 2)
        return spo_err(SPO_EINVAL, "%s: /pooled and /uncond_pooled go together, in pairs/2", fn);
    spo_dsinfo d;
    SPO_TRY(spo_h5_info(p->f, "/pooled", &d));
    if (d.ndim != 2 || d.shape[0] != in->P) return spo_err(SPO_EINVAL, "%s: /pooled is not [P,E]", fn);
    in->E = d.shape[1];
    SPO_TRY(spo_dim_check(fn, "/pooled E", in->E, 1, SPO_MAX_TEXT));
    SPO_TRY(spo_storage_check(p->f, "/pooled"));
    return spo_storage_check(p->f, "/uncond_pooled");
}

/* Attributes and the sizes every dataset declares. */
static int read_info(spo_pairs *p)
{
    spo_pairsinfo *in = &p->in;
    const char *fn = spo_h5_path(p->f);
    spo_dsinfo pd, cd;
    int rc = spo_h5_get_attr_str(p->f, NULL, "model_id", in->model_id, sizeof in->model_id);
    if (!rc) rc = spo_text_clean(p->f, in->text_clean, sizeof in->text_clean);
    if (!rc) rc = spo_h5_get_attr_int(p->f, NULL, "num_steps", &in->num_steps);
    if (!rc) rc = spo_h5_get_attr_float(p->f, NULL, "guidance", &in->guidance);
    if (!rc) rc = spo_h5_get_attr_float(p->f, NULL, "eta", &in->eta);
    if (!rc) rc = spo_h5_info(p->f, "/parent", &pd);
    if (!rc) rc = spo_h5_info(p->f, "/cond", &cd);
    if (rc) return rc;
    if (pd.ndim != 4 || cd.ndim != 3) return spo_err(SPO_EINVAL, "%s: /parent or /cond has the wrong rank", fn);
    in->n = pd.shape[0], in->C = pd.shape[1], in->h = pd.shape[2], in->w = pd.shape[3];
    in->P = cd.shape[0], in->L = cd.shape[1], in->D = cd.shape[2];
    in->cond_type = cd.type == SPO_T_F16 ? SPO_T_F16 : SPO_T_F32;
    int64_t ld[2] = {in->L, in->D};
    rc = spo_dim_check(fn, "num_steps", in->num_steps, 1, SPO_MAX_INFER_STEPS);
    if (!rc) rc = spo_dim_check(fn, "/parent C", in->C, 1, SPO_MAX_LATENT_CHANNELS);
    if (!rc) rc = spo_dim_check(fn, "/parent h", in->h, 1, SPO_MAX_LATENT_SIDE);
    if (!rc) rc = spo_dim_check(fn, "/parent w", in->w, 1, SPO_MAX_LATENT_SIDE);
    if (!rc) rc = spo_dim_check(fn, "/cond L", in->L, 1, SPO_MAX_TEXT);
    if (!rc) rc = spo_dim_check(fn, "/cond D", in->D, 1, SPO_MAX_TEXT);
    if (!rc) rc = spo_size_check(fn, "/key", &in->n, 1, 0, 4 * sizeof(int64_t), NULL);
    if (!rc) rc = spo_size_check(fn, "/cond", ld, 2, 1, sizeof(float), NULL);
    if (!rc) rc = spo_size_check(fn, "/prompt_id", &in->P, 1, 0, sizeof(int64_t), NULL);
    static const char *const ds[] = {"/key", "/parent", "/win", "/lose", "/timestep", "/score_win", "/score_lose",
                                     "/cond", "/uncond", "/prompt_id"};
    for (int i = 0; i < (in->version >= 2 ? 10 : 9) && !rc; i++) rc = spo_storage_check(p->f, ds[i]);
    in->has_parent_lose = in->version >= 2 && spo_h5_exists(p->f, "/parent_lose");
    if (!rc && in->has_parent_lose) rc = spo_storage_check(p->f, "/parent_lose");
    if (!rc && in->version == 1 && in->P != in->n)
        rc = spo_err(SPO_EINVAL, "%s: /cond has %" PRId64 " rows, /parent %" PRId64, fn, in->P, in->n);
    if (!rc) rc = read_pooled_info(p);
    return rc;
}

/* pairs/2: the table's prompt ids, valid and strictly increasing. */
static int read_table(spo_pairs *p)
{
    const char *fn = spo_h5_path(p->f);
    if (!(p->pids = malloc(((size_t)p->in.P + 1) * sizeof *p->pids))) return spo_err(SPO_EIO, "out of memory");
    int rc = spo_h5_read_i64(p->f, "/prompt_id", p->pids, (size_t)p->in.P);
    for (int64_t i = 0; i < p->in.P && !rc; i++) {
        uint32_t u;
        if ((rc = spo_prompt_u32(p->pids[i], fn, &u))) break;
        if (i && p->pids[i] <= p->pids[i - 1])
            rc = spo_err(SPO_EINVAL, "%s: /prompt_id is not strictly increasing at row %" PRId64, fn, i);
    }
    return rc;
}

int spo_pairs_open(spo_pairs **out, const char *path, const spo_dimbind *pre)
{
    *out = NULL;
    spo_pairs *p = calloc(1, sizeof *p);
    if (!p) return spo_err(SPO_EIO, "out of memory");
    int rc = spo_h5_open(&p->f, path, NULL, NULL);
    if (!rc) rc = spo_own_schema_check(p->f, "pairs", pre, &p->in.version);
    if (!rc) rc = read_info(p);
    if (!rc && p->in.version >= 2) rc = read_table(p);
    size_t ld = (size_t)(p->in.L * p->in.D);
    if (!rc && !(p->uncond = malloc((ld + 1) * sizeof *p->uncond))) rc = spo_err(SPO_EIO, "out of memory");
    if (!rc) rc = spo_h5_read_f32(p->f, "/uncond", p->uncond, ld);
    size_t E = (size_t)p->in.E;
    if (!rc && E && !(p->uncond_pooled = malloc(E * sizeof *p->uncond_pooled))) rc = spo_err(SPO_EIO, "out of memory");
    if (!rc && E) rc = spo_h5_read_f32(p->f, "/uncond_pooled", p->uncond_pooled, E);
    if (rc) {
        spo_pairs_close(p);
        return rc;
    }
    *out = p;
    return SPO_OK;
}

/* The table row of prompt id (pairs/2), or -1. */
static int64_t table_row(const spo_pairs *p, int64_t id)
{
    int64_t lo = 0, hi = p->in.P;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (p->pids[mid] < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < p->in.P && p->pids[lo] == id ? lo : -1;
}

/* rows of table ds (ld floats each: /cond, /pooled) of pairs i0.. (keys
 * given): a table lookup per pair (pairs/2). */
static int read_table_rows(const spo_pairs *p, const char *ds, size_t ld, int64_t i0, int64_t n, const int64_t *key,
                           float *cond)
{
    if (p->in.version == 1) return spo_h5_read_rows(p->f, ds, SPO_T_F32, i0, n, cond);
    int rc = SPO_OK;
    for (int64_t i = 0; i < n && !rc; i++) {
        int64_t r = table_row(p, key[4 * i + 1]);
        if (r < 0)
            return spo_err(SPO_EINVAL, "%s: pair %" PRId64 " has prompt id %" PRId64 ", which is not in /prompt_id",
                           spo_h5_path(p->f), i0 + i, key[4 * i + 1]);
        if (i && key[4 * i + 1] == key[4 * (i - 1) + 1]) memcpy(cond + (size_t)i * ld, cond + (size_t)(i - 1) * ld, ld * sizeof *cond);
        else rc = spo_h5_read_rows(p->f, ds, SPO_T_F32, r, 1, cond + (size_t)i * ld);
    }
    return rc;
}

int spo_pairs_read(const spo_pairs *p, int64_t i0, int64_t n, spo_pairbatch *b)
{
    const char *fn = spo_h5_path(p->f);
    if (i0 < 0 || n < 0 || i0 > p->in.n - n)
        return spo_err(SPO_EINVAL, "%s: pairs %" PRId64 "..%" PRId64 " out of range (%" PRId64 " pairs)", fn, i0,
                       i0 + n - 1, p->in.n);
    if (!n) return SPO_OK;
    int64_t *key = b->key ? b->key : malloc((size_t)n * 4 * sizeof *key);
    int32_t *t = b->timestep ? b->timestep : malloc((size_t)n * sizeof *t);
    int rc = !key || !t ? spo_err(SPO_EIO, "out of memory") : SPO_OK;
    if (!rc) rc = spo_h5_read_rows(p->f, "/key", SPO_T_I64, i0, n, key);
    if (!rc) rc = spo_h5_read_rows(p->f, "/timestep", SPO_T_I32, i0, n, t);
    for (int64_t i = 0; i < n && !rc; i++) /* class of bad values: checked on read, blaming the file */
        if (t[i] < 0 || t[i] > SPO_MAX_TIMESTEP)
            rc = spo_err(SPO_EINVAL, "%s: pair %" PRId64 " has timestep %d, out of range 0..%d", fn, i0 + i, (int)t[i],
                         SPO_MAX_TIMESTEP);
    for (int64_t i = 0; i < n && !rc && b->prompt_id; i++) b->prompt_id[i] = key[4 * i + 1];
    if (!rc && b->score_win) rc = spo_h5_read_rows(p->f, "/score_win", SPO_T_F32, i0, n, b->score_win);
    if (!rc && b->score_lose) rc = spo_h5_read_rows(p->f, "/score_lose", SPO_T_F32, i0, n, b->score_lose);
    if (!rc && b->parent) rc = spo_h5_read_rows(p->f, "/parent", SPO_T_F32, i0, n, b->parent);
    if (!rc && b->win) rc = spo_h5_read_rows(p->f, "/win", SPO_T_F32, i0, n, b->win);
    if (!rc && b->lose) rc = spo_h5_read_rows(p->f, "/lose", SPO_T_F32, i0, n, b->lose);
    if (!rc && b->parent_lose)
        rc = spo_h5_read_rows(p->f, p->in.has_parent_lose ? "/parent_lose" : "/parent", SPO_T_F32, i0, n, b->parent_lose);
    if (!rc && b->cond) rc = read_table_rows(p, "/cond", (size_t)(p->in.L * p->in.D), i0, n, key, b->cond);
    if (!rc && b->pooled && !p->in.E) rc = spo_err(SPO_EINVAL, "%s: no /pooled (not SDXL pairs)", fn);
    if (!rc && b->pooled) rc = read_table_rows(p, "/pooled", (size_t)p->in.E, i0, n, key, b->pooled);
    if (key != b->key) free(key);
    if (t != b->timestep) free(t);
    return rc;
}
