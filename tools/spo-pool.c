/* spo-pool — one SPO sampling step for every prompt of a state file: the
 * guided eps at x_t (unless cached), K children from the DDIM step, and
 * each child's guided eps and predicted clean latent at its timestep. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "spo/embeds.h"
#include "io/h5io.h"
#include "io/h5rows.h"
#include "spo/loop_state.h"
#include "nn/lora.h"
#include "io/modelid.h"
#include "spo/sampler.h"

static const spo_opt opts[] = {
    {"children", 'K', "N", "children per prompt (default 4; 1 for a plain DDIM step)"},
    {"guidance", 'g', "G", "classifier-free guidance scale (default 5)"},
    {"eta", 0, "ETA", "DDIM eta (default 1)"},
    {"batch", 'b', "N", "latents per guided UNet call (default 4)"},
    {0},
};

static const spo_tool tool = {
    .name = "spo-pool",
    .synopsis = "-m MODEL -e EMBEDS [--lora LORA] [options] STATE|- -o POOL",
    .summary = "Draw a pool of K children from the DDIM step at every prompt's current latent and run\n"
               "the guided UNet on each child at its timestep (SPO's sampling step).",
    .common = SPO_O_OUT | SPO_O_MODEL | SPO_O_EMBEDS | SPO_O_LORA | SPO_O_DEVICE | SPO_O_FORCE,
    .opts = opts,
    .min_args = 1,
    .max_args = 1,
};

typedef struct {
    int K, batch;
    double guidance, eta;
} ctx_t;

static int on_opt(void *p, int idx, const char *arg)
{
    ctx_t *c = p;
    switch (idx) {
    case 0: c->K = (int)spo_arg_long("--children", arg, 1, 64); break;
    case 1: c->guidance = spo_arg_double("--guidance", arg, 0, 100); break;
    case 2: c->eta = spo_arg_double("--eta", arg, 0, 10); break;
    case 3: c->batch = (int)spo_arg_long("--batch", arg, 1, 4096); break;
    }
    return 0;
}

static void progress(void *p, long done, long total) { spo_progress_update(p, done); }

static void note_recompute(const spo_args *a, const char *what)
{
    if (a->verbose) fprintf(stderr, "spo-pool: the state's cached eps is for another %s; recomputing it\n", what);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) spo_die(1, "out of memory (%zu bytes)", n);
    return p;
}

int main(int argc, char **argv)
{
    double t0 = spo_now();
    ctx_t c = {.K = 4, .batch = 4, .guidance = 5, .eta = 1};
    spo_args a;
    spo_parse(&tool, argc, argv, &a, on_opt, &c);
    if (!a.model) spo_die(2, "-m MODEL is required");
    if (!a.embeds) spo_die(2, "-e EMBEDS is required");
    if (!a.out) spo_die(2, "-o POOL is required");
    if (!strcmp(a.embeds, "-") && !strcmp(a.argv[0], "-")) spo_die(2, "only one of STATE and EMBEDS can be '-'");
    if (strcmp(a.device, "cpu")) spo_die(2, "--device %s: spo-pool runs on the cpu in this build", a.device);

    int rc;
    spo_h5 *st, *em, *lf = NULL;
    if ((rc = spo_h5_open(&st, a.argv[0], "state", NULL))) spo_die_lib(rc);
    if ((rc = spo_h5_open(&em, a.embeds, "embeds", NULL))) spo_die_lib(rc);
    spo_lora lora = {0};
    if (a.lora && ((rc = spo_h5_open(&lf, a.lora, "lora", NULL)) || (rc = spo_lora_read(&lora, lf)))) spo_die_lib(rc);
    spo_h5_close(lf);

    /* the model */
    spo_dev *dev;
    if ((rc = spo_dev_open(&dev, SPO_DEV_CPU, 0))) spo_die_lib(rc);
    char path[4096];
    spo_sampler s = {.dev = dev, .guidance = (float)c.guidance, .eta = (float)c.eta, .batch = c.batch};
    snprintf(path, sizeof path, "%s/unet", a.model);
    if ((rc = spo_unet_load(&s.unet, path, dev))) spo_die_lib(rc);
    snprintf(path, sizeof path, "%s/scheduler", a.model);
    if ((rc = spo_ddim_load(&s.sched, path))) spo_die_lib(rc);
    if (a.lora && ((rc = spo_lora_check(&lora, s.unet)) || (rc = spo_lora_merge(&lora, s.unet, 1.0f))))
        spo_die(rc, "%s: %s", a.lora, spo_errmsg());
    double t_load = spo_now();
    spo_vtime(&a, "load", t_load - t0);

    /* the state */
    spo_dsinfo li;
    int64_t step, t, nsteps, seed;
    char mid[SPO_ID_MAX], emid[SPO_ID_MAX] = "", lid[SPO_ID_MAX] = "none";
    if ((rc = spo_h5_info(st, "/latents", &li)) || (rc = spo_h5_get_attr_int(st, NULL, "step", &step)) ||
        (rc = spo_h5_get_attr_int(st, NULL, "timestep", &t)) ||
        (rc = spo_h5_get_attr_int(st, NULL, "num_steps", &nsteps)) ||
        (rc = spo_h5_get_attr_int(st, NULL, "seed", &seed)) ||
        (rc = spo_h5_get_attr_str(st, NULL, "model_id", mid, sizeof mid)))
        spo_die_lib(rc);
    spo_h5_get_attr_str(em, NULL, "model_id", emid, sizeof emid);
    if (strcmp(mid, emid))
        spo_die(2, "%s is for model '%s' but %s is for model '%s'", spo_h5_path(st), mid, spo_h5_path(em), emid);
    char want[SPO_ID_MAX];
    if ((rc = spo_model_id(a.model, want, sizeof want))) spo_die_lib(rc);
    if (strcmp(want, mid))
        spo_die(2, "%s was made for model '%s', but %s is model '%s'", spo_h5_path(st), mid, a.model, want);
    if (a.lora && lora.model_id[0] && strcmp(lora.model_id, mid))
        spo_die(2, "%s is for model '%s' but %s is for model '%s'", a.lora, lora.model_id, spo_h5_path(st), mid);
    if (a.lora && (rc = spo_lora_tag_of(&lora, lid, sizeof lid))) spo_die_lib(rc);
    if ((rc = spo_ddim_set_steps(&s.sched, (int)nsteps))) spo_die(2, "%s: %s", spo_h5_path(st), spo_errmsg());
    if (step < 0 || step >= nsteps) spo_die(2, "%s: step %lld is past the last step (%lld steps); the chain is done",
                                            spo_h5_path(st), (long long)step, (long long)nsteps);
    if (s.sched.timesteps[step] != t)
        spo_die(2, "%s: step %lld has timestep %lld, the model's schedule says %d", spo_h5_path(st), (long long)step,
                (long long)t, s.sched.timesteps[step]);
    const spo_unet_config *cf = spo_unet_cfg(s.unet);
    int B = (int)li.shape[0], C = (int)li.shape[1], h = (int)li.shape[2], w = (int)li.shape[3];
    if (C != cf->in_channels)
        spo_die(2, "%s: /latents has %d channels, the UNet takes %d", spo_h5_path(st), C, cf->in_channels);
    size_t lat = (size_t)C * h * w;
    float *x = xmalloc((size_t)B * lat * sizeof *x), *eps_in = NULL;
    int64_t *pid = xmalloc((size_t)B * sizeof *pid);
    uint32_t *pid32 = xmalloc((size_t)B * sizeof *pid32);
    if ((rc = spo_h5_read_f32(st, "/latents", x, (size_t)B * lat)) ||
        (rc = spo_h5_read_i64(st, "/prompt_id", pid, (size_t)B)))
        spo_die_lib(rc);
    for (int b = 0; b < B; b++)
        if ((rc = spo_prompt_u32(pid[b], spo_h5_path(st), &pid32[b]))) spo_die_lib(rc);
    /* the cached guided eps is valid only for the guidance and LoRA it was
     * computed with (spo-resample records them); otherwise compute it anew */
    double sg = c.guidance;
    char slid[SPO_ID_MAX] = "";
    if (spo_h5_exists(st, "/eps") && spo_h5_get_attr_float(st, NULL, "guidance", &sg) == SPO_OK && sg != c.guidance)
        note_recompute(&a, "guidance");
    else if (spo_h5_exists(st, "/eps") && !spo_h5_get_attr_str(st, NULL, "lora_id", slid, sizeof slid) &&
             strcmp(slid, lid))
        note_recompute(&a, "LoRA");
    else if (spo_h5_exists(st, "/eps")) {
        eps_in = xmalloc((size_t)B * lat * sizeof *eps_in);
        if ((rc = spo_h5_read_f32(st, "/eps", eps_in, (size_t)B * lat))) spo_die_lib(rc);
    }

    /* the prompts' embeddings, by prompt id */
    spo_dsinfo ci;
    if ((rc = spo_h5_info(em, "/cond", &ci))) spo_die_lib(rc);
    s.L = (int)ci.shape[1], s.D = (int)ci.shape[2];
    float *cond = xmalloc((size_t)B * s.L * s.D * sizeof *cond), *unc = xmalloc((size_t)s.L * s.D * sizeof *unc);
    int64_t *row = xmalloc((size_t)B * sizeof *row);
    if ((rc = spo_h5_read_f32(em, "/uncond", unc, (size_t)s.L * s.D)) ||
        (rc = spo_embeds_rows(em, pid, B, spo_h5_path(st), row)))
        spo_die_lib(rc);
    for (int b = 0; b < B && !rc; b++)
        rc = spo_h5_read_rows(em, "/cond", SPO_T_F32, row[b], 1, cond + (size_t)b * s.L * s.D);
    if (rc) spo_die_lib(rc);
    free(row);
    s.uncond = unc;
    double t_init = spo_now();
    spo_vtime(&a, "init", t_init - t_load);

    /* the step */
    int K = c.K, child_t, final;
    float *peps = xmalloc((size_t)B * lat * sizeof *peps), *ch = xmalloc((size_t)B * K * lat * sizeof *ch);
    float *x0 = xmalloc((size_t)B * K * lat * sizeof *x0), *ceps = xmalloc((size_t)B * K * lat * sizeof *ceps);
    spo_pool_shape shp = {.B = B, .K = K, .C = C, .h = h, .w = w, .step = (int)step, .t = (int)t, .seed = (uint64_t)seed,
                          .pid = pid32};
    spo_progress *pg = spo_progress_start("UNet", (eps_in ? 0 : B) + (long)B * K, a.quiet);
    s.progress = progress;
    s.ctx = pg;
    rc = spo_pool_step(&s, &shp, x, eps_in, cond, peps, ch, x0, ceps, &child_t, &final);
    spo_progress_end(pg);
    if (rc) spo_die_lib(rc);
    spo_vtime(&a, "work", spo_now() - t_init);

    spo_h5 *out;
    int64_t s1[1] = {B}, s4[4] = {B, C, h, w}, s5[5] = {B, K, C, h, w};
    if ((rc = spo_h5_create(&out, a.out, "pool", a.force))) spo_die_lib(rc);
    if ((rc = spo_h5_write(out, "/prompt_id", SPO_T_I64, 1, s1, pid)) ||
        (rc = spo_h5_write(out, "/parent", SPO_T_F32, 4, s4, x)) ||
        (rc = spo_h5_write(out, "/parent_eps", SPO_T_F32, 4, s4, peps)) ||
        (rc = spo_h5_write(out, "/children", SPO_T_F32, 5, s5, ch)) ||
        (rc = spo_h5_write(out, "/x0_hat", SPO_T_F32, 5, s5, x0)) ||
        (!final && (rc = spo_h5_write(out, "/eps", SPO_T_F32, 5, s5, ceps))) ||
        (rc = spo_h5_attr_str(out, NULL, "model_id", mid)) || (rc = spo_h5_attr_str(out, NULL, "lora_id", lid)) ||
        (rc = spo_h5_attr_int(out, NULL, "seed", seed)) || (rc = spo_h5_attr_int(out, NULL, "step", step)) ||
        (rc = spo_h5_attr_int(out, NULL, "num_steps", nsteps)) ||
        (rc = spo_h5_attr_int(out, NULL, "timestep", t)) ||
        (rc = spo_h5_attr_int(out, NULL, "child_timestep", child_t)) ||
        (rc = spo_h5_attr_float(out, NULL, "guidance", c.guidance)) ||
        (rc = spo_h5_attr_float(out, NULL, "eta", c.eta))) {
        spo_h5_abort(out);
        spo_die_lib(rc);
    }
    if ((rc = spo_h5_commit(out))) spo_die_lib(rc);
    spo_h5_close(st);
    spo_h5_close(em);
    spo_unet_free(s.unet);
    spo_lora_free(&lora);
    spo_dev_close(dev);
    free(x), free(eps_in), free(pid), free(pid32), free(cond), free(unc), free(peps), free(ch), free(x0), free(ceps);
    return spo_finish();
}
