/* score_run.c — spo-score's job (see score_run.h). */
#include "spo/score_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "io/h5io.h"
#include "io/h5rows.h"
#include "spo/embeds.h"
#include "spo/loopfile.h"
#include "spo/pool.h"
#include "spo/score.h"
#include "spo/scores.h"

typedef struct {
    const spo_score_job *j;
    spo_dev *dev;
    spo_scoring *s;
    spo_h5 *pool, *emb, *out;
    spo_poolmeta m;
    float *x0, *t, *sc, *text;
    int64_t *pid;
} run_t;

/* what a run holds, its unfinished output removed */
static void release(run_t *r)
{
    spo_h5_abort(r->out);
    spo_h5_close(r->pool), spo_h5_close(r->emb);
    spo_scoring_close(r->s);
    if (r->dev) spo_dev_close(r->dev);
    free(r->x0), free(r->t), free(r->sc), free(r->text), free(r->pid);
}

static void phase(const run_t *r, const char *name) { spo_hook_phase(&r->j->hooks, name); }

/* The text embedding of each child: its prompt's, from the SPM ids in the
 * embeds file. */
static int read_text(run_t *r)
{
    const char *ep;
    int E = spo_scoring_text_dim(r->s), L = spo_scoring_text_len(r->s), rc;
    size_t B = (size_t)r->m.B, n = B * (size_t)r->m.K;
    char emid[SPO_ID_MAX] = "";
    if (!E) return SPO_OK;
    if ((rc = spo_h5_open(&r->emb, r->j->embeds, "embeds", NULL))) return rc;
    ep = spo_h5_path(r->emb);
    if (!spo_h5_get_attr_str(r->emb, NULL, "model_id", emid, sizeof emid) &&
        (rc = spo_same_model(spo_h5_path(r->pool), r->m.attrs.model_id, ep, emid)))
        return rc;
    if (!spo_h5_exists(r->emb, "/spm_ids"))
        return spo_err(SPO_EINVAL, "%s: no /spm_ids (make it with spo-encode --spm DIR)", ep);
    spo_dsinfo si;
    if ((rc = spo_h5_info(r->emb, "/spm_ids", &si))) return rc;
    if (si.shape[1] != L)
        return spo_err(SPO_EINVAL, "%s: /spm_ids has %lld tokens per prompt, the preference model takes %d", ep,
                       (long long)si.shape[1], L);
    int64_t *row = malloc((B + 1) * sizeof *row);
    int32_t *ids = malloc((B * (size_t)L + 1) * sizeof *ids);
    float *pe = malloc((B * (size_t)E + 1) * sizeof *pe);
    r->text = malloc((n * (size_t)E + 1) * sizeof *r->text);
    rc = !row || !ids || !pe || !r->text ? spo_err(SPO_EIO, "out of memory") : SPO_OK;
    if (!rc) rc = spo_embeds_rows(r->emb, r->pid, (int64_t)B, spo_h5_path(r->pool), row);
    for (size_t b = 0; b < B && !rc; b++)
        rc = spo_h5_read_rows(r->emb, "/spm_ids", SPO_T_I32, row[b], 1, ids + b * (size_t)L);
    if (!rc) rc = spo_scoring_text(r->s, ids, (int)B, pe);
    for (size_t i = 0; i < n && !rc; i++)
        memcpy(r->text + i * (size_t)E, pe + (i / (size_t)r->m.K) * (size_t)E, (size_t)E * sizeof *r->text);
    free(row), free(ids), free(pe);
    return rc;
}

static int read_pool(run_t *r)
{
    spo_dimbind pre[] = {{"C", spo_scoring_latent_channels(r->s)}, {NULL, 0}};
    int rc = spo_h5_open(&r->pool, r->j->pool, "pool", pre);
    if (!rc) rc = spo_pool_meta(r->pool, &r->m);
    if (!rc) rc = spo_model_matches(spo_h5_path(r->pool), r->m.attrs.model_id, r->j->model);
    if (rc) return rc;
    size_t n = (size_t)(r->m.B * r->m.K), lat = (size_t)(r->m.C * r->m.h * r->m.w);
    int64_t ct = r->m.end_timestep; /* where /x0_hat is */
    r->x0 = malloc((n * lat + 1) * sizeof *r->x0);
    r->t = malloc((n + 1) * sizeof *r->t);
    r->sc = malloc((n + 1) * sizeof *r->sc);
    r->pid = malloc(((size_t)r->m.B + 1) * sizeof *r->pid);
    if (!r->x0 || !r->t || !r->sc || !r->pid) return spo_err(SPO_EIO, "out of memory");
    if ((rc = spo_h5_read_f32(r->pool, "/x0_hat", r->x0, n * lat)) ||
        (rc = spo_h5_read_i64(r->pool, "/prompt_id", r->pid, (size_t)r->m.B)))
        return rc;
    for (size_t i = 0; i < n; i++) r->t[i] = (float)ct;
    return read_text(r);
}

static int score_and_write(run_t *r)
{
    const spo_score_job *j = r->j;
    size_t n = (size_t)(r->m.B * r->m.K), lat = (size_t)(r->m.C * r->m.h * r->m.w), E = spo_scoring_text_dim(r->s);
    size_t batch = (size_t)j->batch;
    int rc = SPO_OK;
    spo_hook_progress(&j->hooks, 0, (long)n);
    for (size_t i = 0; i < n && !rc; i += batch) {
        int m = (int)(n - i < batch ? n - i : batch);
        rc = spo_scoring_run(r->s, r->x0 + i * lat, m, (int)r->m.h, (int)r->m.w, r->t + i,
                             r->text ? r->text + i * E : NULL, r->sc + i, j->batch);
        spo_hook_progress(&j->hooks, (long)(i + (size_t)m), (long)n);
    }
    if (rc) return rc;
    phase(r, "work");
    if ((rc = spo_h5_create(&r->out, j->out, "scores", j->force))) return rc;
    int64_t ct = r->m.end_timestep; /* where /x0_hat is */
    if ((rc = spo_scores_write(r->out, &r->m, spo_scoring_name(r->s), ct, r->pid, r->sc))) return rc;
    rc = spo_h5_commit(r->out);
    r->out = NULL;
    return rc;
}

int spo_score_run(const spo_score_job *j)
{
    run_t r = {.j = j};
    char vae_dir[4096];
    if (j->vae) snprintf(vae_dir, sizeof vae_dir, "%s", j->vae);
    else snprintf(vae_dir, sizeof vae_dir, "%s/vae", j->model);
    int rc = spo_dev_open(&r.dev, j->device, 0);
    if (!rc) rc = spo_scoring_open(&r.s, vae_dir, j->spm, j->spm_weights, j->scorer, r.dev);
    if (!rc) phase(&r, "load");
    if (!rc) rc = read_pool(&r);
    if (!rc) phase(&r, "init");
    if (!rc) rc = score_and_write(&r);
    release(&r);
    return rc;
}
