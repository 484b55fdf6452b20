/* spo-score — decode every child of a pool and score it with the step-aware
 * preference model at its own timestep (or with a built-in scorer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "spo/score_run.h"

static const spo_opt opts[] = {
    {"spm", 0, "DIR", "step-aware preference model: a CLIP directory (config.json, tokenizer)"},
    {"spm-weights", 0, "FILE", "the SPM weights (.bin or .safetensors; default DIR/model.safetensors)"},
    {"scorer", 0, "NAME", "a built-in scorer instead of the SPM: saturation, desaturation or colorfulness"},
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
    spo_jobcb cb;
    spo_parse(&tool, argc, argv, &a, on_opt, &c);
    if (!a.model) spo_die(2, "-m MODEL is required (its vae/ decodes the latents)");
    if (!a.out) spo_die(2, "-o SCORES is required");
    if (!c.spm == !c.scorer) spo_die(2, "give one of --spm DIR or --scorer NAME");
    if (c.weights && !c.spm) spo_die(2, "--spm-weights needs --spm");
    if (c.spm && !a.embeds) spo_die(2, "-e EMBEDS is required with --spm (it holds the prompts' SPM token ids)");
    if (a.embeds && !strcmp(a.embeds, "-") && !strcmp(a.argv[0], "-"))
        spo_die(2, "only one of POOL and EMBEDS can be '-'");
    spo_jobcb_init(&cb, &a, "scoring", t0);
    spo_score_job j = {.model = a.model, .pool = a.argv[0], .embeds = a.embeds, .out = a.out, .spm = c.spm,
                       .spm_weights = c.weights, .scorer = c.scorer, .force = a.force, .batch = c.batch,
                       .ctx = &cb, .progress = spo_jobcb_progress, .phase = spo_jobcb_phase};
    j.device = a.devkind;
    int rc = spo_score_run(&j);
    spo_jobcb_end(&cb);
    if (rc) spo_die_lib(rc);
    return spo_finish();
}
