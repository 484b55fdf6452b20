/* pool_run.c — spo-pool's job (see pool_run.h). */
#include "spo/pool_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "io/h5io.h"
#include "io/h5rows.h"
#include "nn/lora.h"
#include "nn/vae.h"
#include "spo/embeds.h"
#include "spo/loopfile.h"
#include "spo/pool.h"
#include "spo/sampler.h"
#include "spo/state.h"
#include "spo/time_ids.h"

typedef struct {
    const spo_pool_job *j;
    spo_h5 *st, *em, *out;
    spo_dev *dev;
    spo_sampler s;
    spo_lora lora;
    int has_lora;
    spo_statemeta sm;
    spo_poolmeta pm;
    char lora_tag[SPO_ID_MAX]; /* the pool's lora_id: "none" or the LoRA's tag */
    int64_t *pid;
    uint32_t *pid32;
    float *x, *eps_in, *cond, *unc, *peps, *ch, *inner, *x0, *ceps;
    float *pooled, *unc_pooled; /* SDXL: (B, E) and (E) */
    long total;
} run_t;

/* what a run holds, its unfinished output removed */
static void release(run_t *r)
{
    spo_h5_abort(r->out);
    spo_h5_close(r->st), spo_h5_close(r->em);
    if (r->s.unet) spo_unet_free(r->s.unet);
    spo_lora_free(&r->lora);
    if (r->dev) spo_dev_close(r->dev);
    free(r->pid), free(r->pid32), free(r->x), free(r->eps_in), free(r->cond), free(r->unc);
    free(r->peps), free(r->ch), free(r->inner), free(r->x0), free(r->ceps), free(r->pooled), free(r->unc_pooled);
}

static void phase(const run_t *r, const char *name) { spo_hook_phase(&r->j->hooks, name); }

static void progress(void *p, long done, long total)
{
    const run_t *r = p;
    spo_hook_progress(&r->j->hooks, done, r->total);
}

static int alloc_f32(float **p, size_t n)
{
    if (!(*p = malloc((n ? n : 1) * sizeof **p))) return spo_err(SPO_EIO, "out of memory (%zu bytes)", n * sizeof **p);
    return SPO_OK;
}

/* The model, its schedule and the LoRA, merged. */
static int load_model(run_t *r)
{
    const spo_pool_job *j = r->j;
    char path[4096];
    int rc = spo_dev_open(&r->dev, j->device, 0);
    if (rc) return rc;
    r->s = (spo_sampler){.dev = r->dev, .guidance = (float)j->guidance, .eta = (float)j->eta, .batch = j->batch};
    snprintf(path, sizeof path, "%s/unet", j->model);
    if ((rc = spo_unet_load(&r->s.unet, path, r->dev))) return rc;
    snprintf(path, sizeof path, "%s/scheduler", j->model);
    if ((rc = spo_ddim_load(&r->s.sched, path))) return rc;
    if (!j->lora) return SPO_OK;
    r->has_lora = 1;
    return spo_lora_attach(&r->lora, j->lora, r->s.unet, NULL, NULL);
}

/* The state's metadata against the embeds, the model and its schedule. */
static int check_state(run_t *r)
{
    const spo_pool_job *j = r->j;
    const char *sp = spo_h5_path(r->st);
    spo_statemeta *m = &r->sm;
    char emid[SPO_ID_MAX] = "";
    int rc = spo_state_meta(r->st, m);
    if (rc) return rc;
    spo_h5_get_attr_str(r->em, NULL, "model_id", emid, sizeof emid);
    const spo_loopattrs *at = &m->attrs;
    if ((rc = spo_same_model(sp, at->model_id, spo_h5_path(r->em), emid))) return rc;
    if ((rc = spo_model_matches(sp, at->model_id, j->model))) return rc;
    if (r->has_lora && r->lora.model_id[0] && (rc = spo_same_model(j->lora, r->lora.model_id, sp, at->model_id)))
        return rc;
    strcpy(r->lora_tag, "none");
    if ((rc = spo_text_clean(r->em, r->pm.text_clean, sizeof r->pm.text_clean))) return rc;
    if (r->has_lora && (rc = spo_lora_tag_of(&r->lora, r->lora_tag, sizeof r->lora_tag))) return rc;
    if ((rc = spo_ddim_set_steps(&r->s.sched, (int)at->num_steps))) return spo_err_prefix(rc, "%s", sp);
    if (at->step >= at->num_steps)
        return spo_err(SPO_EINVAL, "%s: step %lld is past the last step (%lld steps); the chain is done", sp,
                       (long long)at->step, (long long)at->num_steps);
    if (r->s.sched.timesteps[at->step] != at->timestep)
        return spo_err(SPO_EINVAL, "%s: step %lld has timestep %lld, the model's schedule says %d", sp,
                       (long long)at->step, (long long)at->timestep, r->s.sched.timesteps[at->step]);
    const spo_unet_config *cf = spo_unet_cfg(r->s.unet);
    if (m->C != cf->in_channels)
        return spo_err(SPO_EINVAL, "%s: /latents has %d channels, the UNet takes %d", sp, (int)m->C,
                       cf->in_channels);
    int f = spo_unet_multiple(r->s.unet);
    if (m->h % f || m->w % f)
        return spo_err(SPO_EINVAL, "%s: /latents are %lldx%lld, the UNet takes multiples of %d", sp, (long long)m->h,
                       (long long)m->w, f);
    return SPO_OK;
}

/* SDXL's added conditioning: each prompt's pooled text embedding (embeds
 * rows row[b]) and the time ids of the state's image size. */
static int read_added(run_t *r, const int64_t *row)
{
    const spo_unet_config *cf = spo_unet_cfg(r->s.unet);
    int64_t E;
    SPO_TRY(spo_embeds_pooled_dim(r->em, &E));
    if (!E && cf->add_time_dim <= 0) return SPO_OK;
    if (!E)
        return spo_err(SPO_EINVAL, "%s: no /pooled, and the UNet of %s takes SDXL's pooled text embeddings "
                                   "(spo-encode with the SDXL model)", spo_h5_path(r->em), r->j->model);
    if (cf->add_time_dim <= 0 || E != cf->add_text_dim)
        return spo_err(SPO_EINVAL, "%s: pooled text width %lld, the UNet of %s takes %d", spo_h5_path(r->em),
                       (long long)E, r->j->model, cf->add_time_dim > 0 ? cf->add_text_dim : 0);
    size_t B = (size_t)r->sm.B;
    SPO_TRY(alloc_f32(&r->pooled, B * (size_t)E));
    SPO_TRY(alloc_f32(&r->unc_pooled, (size_t)E));
    SPO_TRY(spo_h5_read_f32(r->em, "/uncond_pooled", r->unc_pooled, (size_t)E));
    for (size_t b = 0; b < B; b++)
        SPO_TRY(spo_h5_read_rows(r->em, "/pooled", SPO_T_F32, row[b], 1, r->pooled + b * (size_t)E));
    char vae[4096];
    spo_vae_config vc;
    snprintf(vae, sizeof vae, "%s/vae", r->j->model);
    SPO_TRY(spo_vae_config_load(&vc, vae));
    int f = 1 << (vc.nblocks - 1);
    spo_time_size ts = spo_time_size_default((int)r->sm.h * f, (int)r->sm.w * f);
    r->s.add = (spo_added){.E = (int)E, .pooled = r->pooled, .uncond_pooled = r->unc_pooled};
    spo_time_ids(r->s.add.time_ids, &ts);
    return SPO_OK;
}

/* The latents (and the cached eps when it was computed with this guidance
 * and LoRA) and the prompts' embeddings. */
static int read_inputs(run_t *r)
{
    const spo_pool_job *j = r->j;
    const spo_statemeta *m = &r->sm;
    size_t B = (size_t)m->B, lat = (size_t)(m->C * m->h * m->w);
    char slid[SPO_ID_MAX] = "";
    int use_eps = 0, rc;
    if (!m->has_eps) {
    } else if (m->has_guidance && m->guidance != j->guidance) {
        spo_hook_note(&j->hooks, "the state's cached eps is for another guidance; recomputing it");
    } else if (!spo_h5_get_attr_str(r->st, NULL, "lora_id", slid, sizeof slid) && strcmp(slid, r->lora_tag)) {
        spo_hook_note(&j->hooks, "the state's cached eps is for another LoRA; recomputing it");
    } else use_eps = 1;
    r->pid = malloc((B + 1) * sizeof *r->pid);
    r->pid32 = malloc((B + 1) * sizeof *r->pid32);
    if (!r->pid || !r->pid32) return spo_err(SPO_EIO, "out of memory");
    if ((rc = alloc_f32(&r->x, B * lat)) || (use_eps && (rc = alloc_f32(&r->eps_in, B * lat)))) return rc;
    if ((rc = spo_state_read(r->st, m, r->x, r->pid, r->eps_in))) return rc;
    for (size_t b = 0; b < B; b++) r->pid32[b] = (uint32_t)r->pid[b];

    spo_dsinfo ci;
    if ((rc = spo_h5_info(r->em, "/cond", &ci))) return rc;
    r->s.L = (int)ci.shape[1], r->s.D = (int)ci.shape[2];
    size_t ld = (size_t)r->s.L * (size_t)r->s.D;
    int64_t *row = malloc((B + 1) * sizeof *row);
    if (!row) return spo_err(SPO_EIO, "out of memory");
    if (!(rc = alloc_f32(&r->cond, B * ld)) && !(rc = alloc_f32(&r->unc, ld)) &&
        !(rc = spo_h5_read_f32(r->em, "/uncond", r->unc, ld)))
        rc = spo_embeds_rows(r->em, r->pid, (int64_t)B, spo_h5_path(r->st), row);
    for (size_t b = 0; b < B && !rc; b++)
        rc = spo_h5_read_rows(r->em, "/cond", SPO_T_F32, row[b], 1, r->cond + b * ld);
    if (!rc) rc = read_added(r, row);
    free(row);
    r->s.uncond = r->unc;
    return rc;
}

static int step_and_write(run_t *r)
{
    const spo_pool_job *j = r->j;
    const spo_statemeta *m = &r->sm;
    spo_poolmeta *pm = &r->pm;
    size_t B = (size_t)m->B, K = (size_t)j->K, lat = (size_t)(m->C * m->h * m->w);
    int N = spo_inner_count((int)m->attrs.step, (int)m->attrs.num_steps, j->inner);
    int rc, child_t, end_t, final;
    if ((rc = alloc_f32(&r->peps, B * lat)) || (rc = alloc_f32(&r->ch, B * K * lat)) ||
        (rc = alloc_f32(&r->inner, B * K * (size_t)N * lat)) ||
        (rc = alloc_f32(&r->x0, B * K * lat)) || (rc = alloc_f32(&r->ceps, B * K * lat)))
        return rc;
    spo_pool_shape shp = {.B = (int)B, .K = (int)K, .C = (int)m->C, .h = (int)m->h, .w = (int)m->w, .inner = N,
                          .step = (int)m->attrs.step, .t = (int)m->attrs.timestep, .seed = (uint64_t)m->attrs.seed,
                          .pid = r->pid32};
    r->total = (r->eps_in ? 0 : (long)B) + (long)(B * K) * (N + (m->attrs.step + 1 + N < m->attrs.num_steps));
    r->s.progress = progress;
    r->s.ctx = r;
    progress(r, 0, r->total);
    if ((rc = spo_pool_step(&r->s, &shp, r->x, r->eps_in, r->cond, r->peps, r->ch, r->inner, r->x0, r->ceps,
                            &child_t, &end_t, &final)))
        return rc;
    phase(r, "work");
    pm->attrs = m->attrs; /* the state's step, sampled with this run's LoRA */
    memcpy(pm->attrs.lora_id, r->lora_tag, sizeof pm->attrs.lora_id);
    pm->child_timestep = child_t, pm->guidance = j->guidance, pm->eta = j->eta;
    pm->inner = N, pm->end_timestep = end_t;
    pm->B = m->B, pm->K = j->K, pm->C = m->C, pm->h = m->h, pm->w = m->w;
    if ((rc = spo_h5_create(&r->out, j->out, "pool", j->force))) return rc;
    if ((rc = spo_pool_write(r->out, pm, r->pid, r->x, r->peps, r->ch, r->inner, r->x0, final ? NULL : r->ceps))) return rc;
    rc = spo_h5_commit(r->out);
    r->out = NULL;
    return rc;
}

int spo_pool_run(const spo_pool_job *j)
{
    run_t r = {.j = j};
    int rc = spo_h5_open(&r.st, j->state, "state", NULL);
    if (!rc) rc = spo_h5_open(&r.em, j->embeds, "embeds", NULL);
    if (!rc) rc = load_model(&r);
    if (!rc) phase(&r, "load");
    if (!rc) rc = check_state(&r);
    if (!rc) rc = read_inputs(&r);
    if (!rc) phase(&r, "init");
    if (!rc) rc = step_and_write(&r);
    release(&r);
    return rc;
}
