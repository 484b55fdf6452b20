/* spo-mkmodel — write a diffusers-layout model directory with seeded random
 * weights (tiny for tests and demos, sd15 at the real SD v1.5 sizes). */
#include <stdio.h>
#include <string.h>

#include "frame.h"
#include "nn/mkmodel.h"

static const spo_opt opts[] = {
    {"preset", 'p', "NAME", "tiny (default) or sd15"},
    {"dtype", 0, "TYPE", "weights as f32, f16 or bf16 (default f32 for tiny, f16 for sd15)"},
    {"spm", 0, NULL, "also write a step-aware preference model in DIR/spm (default for tiny)"},
    {"no-spm", 0, NULL, "do not write the preference model"},
    {0},
};

static const spo_tool tool = {
    .name = "spo-mkmodel",
    .synopsis = "[--preset tiny|sd15] [options] -o DIR",
    .summary = "Write a complete diffusers-layout Stable Diffusion model directory (unet, vae, text_encoder,\n"
               "tokenizer, scheduler) with seeded random weights, and optionally a step-aware preference model.",
    .common = SPO_O_OUT | SPO_O_SEED | SPO_O_FORCE,
    .opts = opts,
    .min_args = 0,
    .max_args = 0,
};

typedef struct {
    const char *preset, *dtype;
    int spm; /* -1 default */
    int quiet;
} ctx_t;

static int on_opt(void *p, int idx, const char *arg)
{
    ctx_t *c = p;
    if (idx == 0) c->preset = arg;
    else if (idx == 1) c->dtype = arg;
    else if (idx == 2) c->spm = 1;
    else c->spm = 0;
    return 0;
}

static void progress(void *p, const char *what)
{
    if (!((ctx_t *)p)->quiet) fprintf(stderr, "spo-mkmodel: writing %s\n", what);
}

int main(int argc, char **argv)
{
    ctx_t c = {.preset = "tiny", .spm = -1};
    spo_args a;
    spo_parse(&tool, argc, argv, &a, on_opt, &c);
    if (!a.out) spo_die(2, "-o DIR is required");
    if (!strcmp(a.out, "-")) spo_die(2, "-o: a model is a directory, it cannot go to stdout");
    int tiny = !strcmp(c.preset, "tiny");
    if (!tiny && strcmp(c.preset, "sd15")) spo_die(2, "unknown preset '%s' (tiny or sd15)", c.preset);
    spo_mkmodel_opts o = {.preset = c.preset, .seed = a.seed, .force = a.force, .progress = progress, .ctx = &c};
    const char *dt = c.dtype ? c.dtype : tiny ? "f32" : "f16";
    if (!strcmp(dt, "f32")) o.dtype = SPO_ST_F32;
    else if (!strcmp(dt, "f16")) o.dtype = SPO_ST_F16;
    else if (!strcmp(dt, "bf16")) o.dtype = SPO_ST_BF16;
    else spo_die(2, "invalid value '%s' for --dtype (f32, f16 or bf16)", dt);
    o.spm = c.spm < 0 ? tiny : c.spm;
    c.quiet = a.quiet || !a.verbose;
    double t0 = spo_now();
    int rc = spo_mkmodel(a.out, &o);
    if (rc) spo_die_lib(rc);
    spo_vtime(&a, "work", spo_now() - t0);
    return spo_finish();
}
