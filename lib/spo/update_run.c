/* update_run.c — spo-step-update's job (update_run.h). */
#include "spo/update_run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "io/h5io.h"
#include "io/modelid.h"
#include "nn/lora.h"
#include "nn/vae.h"
#include "spo/time_ids.h"
#include "nn/lora_opt.h"
#include "nn/lora_train.h"
#include "ops/ops.h"

typedef struct {
    const spo_update_job *j;
    spo_pairs_in *pin;
    const spo_pairs_meta *mt;
    char want[256]; /* the model's id */
    spo_lora lora;
    int has_lora;
    float *theta, *m, *v;
    spo_dev *dev;
    spo_update u;
    FILE *mf;
    int64_t *perm;
} run_t;

static void *zalloc(size_t n, size_t s) { return calloc(n ? n : 1, s); }

/* The pairs, the LoRA with its moments, and that they agree. */
static int read_inputs(run_t *r)
{
    const spo_update_job *j = r->j;
    int rc;
    SPO_TRY(spo_pairs_in_open(&r->pin, j->pairs, j->npairs));
    r->mt = spo_pairs_in_meta(r->pin);
    SPO_TRY(spo_model_id(j->model, r->want, sizeof r->want));
    spo_h5 *lf;
    SPO_TRY(spo_h5_open(&lf, j->lora, "lora", NULL));
    if ((rc = spo_lora_read(&r->lora, lf))) {
        spo_h5_close(lf);
        return rc;
    }
    r->has_lora = 1;
    const spo_pairs_meta *mt = r->mt;
    if (r->lora.model_id[0] && strcmp(r->lora.model_id, r->want))
        rc = spo_err(SPO_EINVAL, "%s: a LoRA of model '%s', but %s is model '%s'", j->lora, r->lora.model_id, j->model,
                     r->want);
    else if (strcmp(r->want, mt->model_id))
        rc = spo_err(SPO_EINVAL, "%s: pairs of model '%s', but %s is model '%s'", j->pairs[0], mt->model_id, j->model,
                     r->want);
    size_t numel = spo_lora_numel(&r->lora);
    r->theta = zalloc(numel, sizeof *r->theta), r->m = zalloc(numel, sizeof *r->m), r->v = zalloc(numel, sizeof *r->v);
    if (!rc && (!r->theta || !r->m || !r->v)) rc = spo_err(SPO_EIO, "out of memory");
    int has_opt;
    double lg, le;
    if (!rc) rc = spo_lora_opt_read(lf, &r->lora, r->m, r->v, &has_opt, &lg, &le);
    spo_h5_close(lf);
    if (rc) return rc;
    if ((!isnan(lg) && lg != mt->guidance) || (!isnan(le) && le != mt->eta))
        return spo_err(SPO_EINVAL, "%s: pairs sampled with guidance %g, eta %g, but %s was trained on guidance %g, eta %g",
                       j->pairs[0], mt->guidance, mt->eta, j->lora, lg, le);
    if (!(mt->eta > 0))
        return spo_err(SPO_EINVAL, "%s: eta %g: a deterministic DDIM step has no log-probability to train on",
                       j->pairs[0], mt->eta);
    spo_lora_pack(&r->lora, r->theta);
    return SPO_OK;
}

/* The UNet with the LoRA in training, the schedule, the metrics file. */
static int load_model(run_t *r)
{
    const spo_update_job *j = r->j;
    const spo_pairs_meta *mt = r->mt;
    char path[4096];
    int rc;
    SPO_TRY(spo_dev_open(&r->dev, j->device, j->threads));
    r->u = (spo_update){.guidance = (float)mt->guidance, .eta = (float)mt->eta, .loss = j->loss, .micro = j->micro};
    snprintf(path, sizeof path, "%s/unet", j->model);
    SPO_TRY(spo_unet_load(&r->u.unet, path, r->dev));
    snprintf(path, sizeof path, "%s/scheduler", j->model);
    SPO_TRY(spo_ddim_load(&r->u.sched, path));
    if ((rc = spo_ddim_set_steps(&r->u.sched, (int)mt->num_steps))) return spo_err_prefix(SPO_EINVAL, "%s", j->pairs[0]);
    if (spo_unet_cfg(r->u.unet)->add_time_dim > 0) { /* SDXL: the time ids of the pairs' image size */
        spo_vae_config vc;
        snprintf(path, sizeof path, "%s/vae", j->model);
        SPO_TRY(spo_vae_config_load(&vc, path));
        int f = 1 << (vc.nblocks - 1);
        spo_time_size ts = spo_time_size_default(mt->h * f, mt->w * f);
        spo_time_ids(r->u.time_ids, &ts);
    }
    if ((rc = spo_lora_check(&r->lora, r->u.unet))) return spo_err_prefix(SPO_EINVAL, "%s", j->lora);
    if ((rc = spo_lora_train_new(&r->u.lt, r->u.unet, &r->lora))) return spo_err_prefix(rc, "%s", j->lora);
    if (j->metrics && j->comm.rank == 0 && !(r->mf = fopen(j->metrics, "a")))
        return spo_err(SPO_EIO, "%s: cannot open for appending", j->metrics);
    return SPO_OK;
}

/* The optimizer steps: batches from a seeded permutation per pass. */
static int run_steps(run_t *r, long steps)
{
    const spo_update_job *j = r->j;
    int64_t N = r->mt->n, nbp = (N + j->batch - 1) / j->batch, step0 = r->lora.step, pass = -1;
    if (!(r->perm = zalloc((size_t)N, sizeof *r->perm))) return spo_err(SPO_EIO, "out of memory");
    for (long s = 0; s < steps; s++) {
        double ts = spo_seconds();
        if (s / nbp != pass) pass = s / nbp, spo_update_perm(r->perm, N, j->seed, step0, pass);
        int64_t b0 = (s % nbp) * j->batch, nb = N - b0 < j->batch ? N - b0 : j->batch;
        spo_step_result res;
        int64_t gstep = step0 + s + 1;
        int rc = spo_update_step(&r->u, r->pin, r->perm + b0, (int)nb, &j->comm, &j->opt, gstep, r->theta, r->m, r->v,
                                 &res);
        if (rc) return spo_err_prefix(rc, "step %lld", (long long)gstep);
        if (r->mf) {
            fprintf(r->mf,
                    "{\"step\": %lld, \"loss\": %.9g, \"ratio_win\": %.9g, \"ratio_lose\": %.9g, \"clamped\": %.6g, "
                    "\"grad_norm\": %.9g, \"lr\": %.9g, \"pairs\": %lld, \"seconds\": %.4f}\n",
                    (long long)gstep, res.loss, res.rw, res.rl, res.clamped, res.grad_norm, j->opt.lr,
                    (long long)res.pairs, spo_seconds() - ts);
            fflush(r->mf);
        }
        spo_hook_progress(&j->hooks, s + 1, steps);
    }
    FILE *mf = r->mf;
    r->mf = NULL;
    if (mf && fclose(mf)) return spo_err(SPO_EIO, "%s: write failed", j->metrics);
    return SPO_OK;
}

/* Rank 0 writes the LoRA with its optimizer state. */
static int write_lora(run_t *r, long steps)
{
    const spo_update_job *j = r->j;
    if (j->comm.rank != 0) return SPO_OK;
    spo_lora_unpack(&r->lora, r->theta);
    r->lora.step += steps;
    if (!r->lora.model_id[0]) snprintf(r->lora.model_id, sizeof r->lora.model_id, "%s", r->want);
    spo_h5 *out;
    int rc;
    SPO_TRY(spo_h5_create(&out, j->out, "lora", j->force));
    if ((rc = spo_lora_write(out, &r->lora)) ||
        (rc = spo_lora_opt_write(out, &r->lora, r->m, r->v, r->mt->guidance, r->mt->eta))) {
        spo_h5_abort(out);
        return rc;
    }
    return spo_h5_commit(out);
}

int spo_update_run(const spo_update_job *j)
{
    double t0 = spo_seconds();
    run_t r = {.j = j};
    int rc = read_inputs(&r);
    if (!rc) rc = load_model(&r);
    if (!rc) spo_hook_timing(&j->hooks, "load", spo_seconds() - t0);
    long steps = 0;
    if (!rc) {
        int64_t nbp = (r.mt->n + j->batch - 1) / j->batch;
        steps = j->steps ? j->steps : (long)nbp;
        rc = run_steps(&r, steps);
    }
    if (!rc) rc = write_lora(&r, steps);
    if (!rc) spo_hook_timing(&j->hooks, "total", spo_seconds() - t0);
    if (r.mf) fclose(r.mf);
    if (r.u.lt) spo_lora_train_free(r.u.lt);
    if (r.u.unet) spo_unet_free(r.u.unet);
    if (r.dev) spo_dev_close(r.dev);
    if (r.pin) spo_pairs_in_close(r.pin);
    if (r.has_lora) spo_lora_free(&r.lora);
    free(r.theta), free(r.m), free(r.v), free(r.perm);
    return rc;
}
