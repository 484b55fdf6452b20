/* spo-score — decode every child of a pool and score it with the step-aware
 * preference model at its own timestep (or with a built-in scorer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "spo/embeds.h"
#include "io/h5io.h"
#include "io/h5rows.h"
#include "io/modelid.h"
#include "spo/score.h"

static const spo_opt opts[] = {
    {"spm", 0, "DIR", "step-aware preference model: a CLIP directory (config.json, tokenizer)"},
    {"spm-weights", 0, "FILE", "the SPM weights (.bin or .safetensors; default DIR/model.safetensors)"},
    {"scorer", 0, "NAME", "a built-in scorer instead of the SPM: saturation or colorfulness"},
    {"batch", 'b', "N", "images decoded and scored at once (default 4)"},
    {0},
};

static const spo_tool tool = {
    .name = "spo-score",
    .synopsis = "-m MODEL (--spm DIR -e EMBEDS | --scorer NAME) [options] POOL|- -o SCORES",
    .summary = "Decode the predicted clean latent of every child of a pool with the model's VAE and score it\n"
               "with the step-aware preference model at the child's timestep (0 for final latents).",
    .common = SPO_O_OUT | SPO_O_MODEL | SPO_O_EMBEDS | SPO_O_DEVICE | SPO_O_FORCE,
    .opts = opts,
    .min_args = 1,
    .max_args = 1,
};

typedef struct {
    const char *spm, *weights, *scorer;
    int batch;
} ctx_t;

static int on_opt(void *p, int idx, const char *arg)
{
    ctx_t *c = p;
    switch (idx) {
    case 0: c->spm = arg; break;
    case 1: c->weights = arg; break;
    case 2: c->scorer = arg; break;
    case 3: c->batch = (int)spo_arg_long("--batch", arg, 1, 4096); break;
    }
    return 0;
}

int main(int argc, char **argv)
{
    double t0 = spo_now();
    ctx_t c = {.batch = 4};
    spo_args a;
    spo_parse(&tool, argc, argv, &a, on_opt, &c);
    if (!a.model) spo_die(2, "-m MODEL is required (its vae/ decodes the latents)");
    if (!a.out) spo_die(2, "-o SCORES is required");
    if (!c.spm == !c.scorer) spo_die(2, "give one of --spm DIR or --scorer NAME");
    if (c.weights && !c.spm) spo_die(2, "--spm-weights needs --spm");
    if (c.spm && !a.embeds) spo_die(2, "-e EMBEDS is required with --spm (it holds the prompts' SPM token ids)");
    if (a.embeds && !strcmp(a.embeds, "-") && !strcmp(a.argv[0], "-"))
        spo_die(2, "only one of POOL and EMBEDS can be '-'");
    if (strcmp(a.device, "cpu")) spo_die(2, "--device %s: spo-score runs on the cpu in this build", a.device);

    spo_dev *dev;
    int rc = spo_dev_open(&dev, SPO_DEV_CPU, 0);
    if (rc) spo_die_lib(rc);
    char vae_dir[4096];
    snprintf(vae_dir, sizeof vae_dir, "%s/vae", a.model);
    spo_scoring *s;
    if ((rc = spo_scoring_open(&s, vae_dir, c.spm, c.weights, c.scorer, dev))) spo_die_lib(rc);
    double t_load = spo_now();
    spo_vtime(&a, "load", t_load - t0);

    spo_dimbind pre[] = {{"C", spo_scoring_latent_channels(s)}, {NULL, 0}};
    spo_h5 *pool, *emb = NULL;
    if ((rc = spo_h5_open(&pool, a.argv[0], "pool", pre))) spo_die_lib(rc);
    spo_dsinfo xi;
    int64_t step, ct;
    char mid[256] = "", emid[256] = "";
    if ((rc = spo_h5_info(pool, "/x0_hat", &xi)) || (rc = spo_h5_get_attr_int(pool, NULL, "step", &step)) ||
        (rc = spo_h5_get_attr_int(pool, NULL, "child_timestep", &ct)) ||
        (rc = spo_h5_get_attr_str(pool, NULL, "model_id", mid, sizeof mid)))
        spo_die_lib(rc);
    char want[256];
    if ((rc = spo_model_id(a.model, want, sizeof want))) spo_die_lib(rc);
    if (strcmp(want, mid))
        spo_die(2, "%s was made with model '%s', but %s is model '%s'", spo_h5_path(pool), mid, a.model, want);
    int B = (int)xi.shape[0], K = (int)xi.shape[1], C = (int)xi.shape[2], h = (int)xi.shape[3], w = (int)xi.shape[4];
    size_t n = (size_t)B * K, lat = (size_t)C * h * w;
    float *x0 = malloc(n * lat * sizeof *x0), *t = malloc(n * sizeof *t), *sc = malloc(n * sizeof *sc);
    int64_t *pid = malloc((size_t)B * sizeof *pid);
    int64_t *row = malloc((size_t)B * sizeof *row);
    if (!x0 || !t || !sc || !pid || !row) spo_die(1, "out of memory");
    if ((rc = spo_h5_read_f32(pool, "/x0_hat", x0, n * lat)) || (rc = spo_h5_read_i64(pool, "/prompt_id", pid, B)))
        spo_die_lib(rc);
    for (size_t i = 0; i < n; i++) t[i] = (float)(ct < 0 ? 0 : ct);

    float *text = NULL;
    int E = spo_scoring_text_dim(s);
    if (E) {
        if ((rc = spo_h5_open(&emb, a.embeds, "embeds", NULL))) spo_die_lib(rc);
        if (!spo_h5_get_attr_str(emb, NULL, "model_id", emid, sizeof emid) && strcmp(mid, emid))
            spo_die(2, "%s is for model '%s' but %s is for model '%s'", spo_h5_path(pool), mid, spo_h5_path(emb),
                    emid);
        if (!spo_h5_exists(emb, "/spm_ids"))
            spo_die(2, "%s: no /spm_ids (make it with spo-encode --spm DIR)", spo_h5_path(emb));
        spo_dsinfo si;
        if ((rc = spo_h5_info(emb, "/spm_ids", &si))) spo_die_lib(rc);
        int L = spo_scoring_text_len(s);
        if (si.shape[1] != L)
            spo_die(2, "%s: /spm_ids has %lld tokens per prompt, the preference model takes %d", spo_h5_path(emb),
                    (long long)si.shape[1], L);
        if ((rc = spo_embeds_rows(emb, pid, B, spo_h5_path(pool), row))) spo_die_lib(rc);
        int32_t *ids = malloc((size_t)B * L * sizeof *ids);
        float *pe = malloc((size_t)B * E * sizeof *pe);
        text = malloc(n * E * sizeof *text);
        if (!ids || !pe || !text) spo_die(1, "out of memory");
        for (int b = 0; b < B && !rc; b++) rc = spo_h5_read_rows(emb, "/spm_ids", SPO_T_I32, row[b], 1, ids + (size_t)b * L);
        if (rc) spo_die_lib(rc);
        if ((rc = spo_scoring_text(s, ids, B, pe))) spo_die_lib(rc);
        for (size_t i = 0; i < n; i++) memcpy(text + i * E, pe + (i / K) * E, (size_t)E * sizeof *text);
        free(ids);
        free(pe);
        spo_h5_close(emb);
    }
    double t_init = spo_now();
    spo_vtime(&a, "init", t_init - t_load);

    spo_progress *pg = spo_progress_start("scoring", (long)n, a.quiet);
    for (size_t i = 0; i < n && !rc; i += (size_t)c.batch) {
        int m = (int)(n - i < (size_t)c.batch ? n - i : (size_t)c.batch);
        rc = spo_scoring_run(s, x0 + i * lat, m, h, w, t + i, text ? text + i * E : NULL, sc + i, c.batch);
        spo_progress_update(pg, (long)(i + (size_t)m));
    }
    spo_progress_end(pg);
    if (rc) spo_die_lib(rc);
    spo_vtime(&a, "work", spo_now() - t_init);

    spo_h5 *out;
    int64_t shape[2] = {B, K};
    if ((rc = spo_h5_create(&out, a.out, "scores", a.force))) spo_die_lib(rc);
    if ((rc = spo_h5_write(out, "/scores", SPO_T_F32, 2, shape, sc)) ||
        (rc = spo_h5_write(out, "/prompt_id", SPO_T_I64, 1, shape, pid)) ||
        (rc = spo_h5_attr_str(out, NULL, "scorer", spo_scoring_name(s))) ||
        (rc = spo_h5_attr_int(out, NULL, "step", step)) ||
        (rc = spo_h5_attr_int(out, NULL, "timestep", ct < 0 ? 0 : ct)) ||
        (rc = spo_h5_attr_str(out, NULL, "model_id", mid))) {
        spo_h5_abort(out);
        spo_die_lib(rc);
    }
    if ((rc = spo_h5_commit(out))) spo_die_lib(rc);
    spo_h5_close(pool);
    spo_scoring_close(s);
    spo_dev_close(dev);
    free(x0), free(t), free(sc), free(pid), free(row), free(text);
    return spo_finish();
}
