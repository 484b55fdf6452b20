/* spo-pool — one SPO sampling step for every prompt of a state file: the
 * guided eps at x_t (unless cached), K children from the DDIM step, and
 * each child's guided eps and predicted clean latent at its timestep. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "spo/pool_run.h"

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

int main(int argc, char **argv)
{
    double t0 = spo_now();
    ctx_t c = {.K = 4, .batch = 4, .guidance = 5, .eta = 1};
    spo_args a;
    spo_jobcb cb;
    spo_parse(&tool, argc, argv, &a, on_opt, &c);
    if (!a.model) spo_die(2, "-m MODEL is required");
    if (!a.embeds) spo_die(2, "-e EMBEDS is required");
    if (!a.out) spo_die(2, "-o POOL is required");
    if (!strcmp(a.embeds, "-") && !strcmp(a.argv[0], "-")) spo_die(2, "only one of STATE and EMBEDS can be '-'");
    spo_jobcb_init(&cb, &a, "UNet", t0);
    spo_pool_job j = {.model = a.model, .embeds = a.embeds, .state = a.argv[0], .lora = a.lora, .out = a.out,
                      .force = a.force, .K = c.K, .batch = c.batch, .guidance = c.guidance, .eta = c.eta,
                      .ctx = &cb, .progress = spo_jobcb_progress, .note = spo_jobcb_note,
                      .phase = spo_jobcb_phase};
    j.device = a.devkind;
    int rc = spo_pool_run(&j);
    spo_jobcb_end(&cb);
    if (rc) spo_die_lib(rc);
    return spo_finish();
}
