/* spo-init — the initial state x_T of every prompt of an embeds file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "h5io.h"
#include "loop_state.h"

/* HOOK (lead): a fresh LoRA file (--lora-out FILE: rank 4, alpha 4, A ~
 * N(0, 1/r^2), B = 0) belongs here once lib/ can write lora/1; add the
 * option to opts[] and man/spo-init.1 only together with the code. */
static const spo_opt opts[] = {
    {"steps", 0, "N", "inference steps of the schedule (default 20)"},
    {"latent-size", 0, "HxW", "latent height x width (default: the model's sample_size, else 64x64)"},
    {0},
};

static const spo_tool tool = {
    .name = "spo-init",
    .synopsis = "[options] -e EMBEDS -o STATE",
    .summary = "Write the initial noise x_T of every prompt of EMBEDS as a state file (step 0).\n"
               "The noise of a prompt depends only on the seed and its prompt id, never on\n"
               "the batch or shard it is in.",
    .common = SPO_O_OUT | SPO_O_MODEL | SPO_O_EMBEDS | SPO_O_SEED | SPO_O_FORCE,
    .opts = opts,
    .min_args = 0,
    .max_args = 0,
};

typedef struct {
    int steps, h, w;
} ctx_t;

static int on_opt(void *p, int idx, const char *arg)
{
    ctx_t *c = p;
    if (idx == 0) {
        c->steps = (int)spo_arg_long("--steps", arg, 1, 1000);
        return 0;
    }
    char *end;
    long h = strtol(arg, &end, 10), w = h;
    if (end != arg && (*end == 'x' || *end == 'X')) {
        const char *ws = end + 1;
        w = strtol(ws, &end, 10);
        if (end == ws) w = 0;
    }
    if (end == arg || *end || h < 1 || w < 1 || h > 4096 || w > 4096)
        return spo_err(SPO_EINVAL, "invalid value '%s' for --latent-size (HxW or N, 1 to 4096)", arg);
    c->h = (int)h, c->w = (int)w;
    return 0;
}

int main(int argc, char **argv)
{
    ctx_t c = {.steps = 20};
    spo_args a;
    spo_parse(&tool, argc, argv, &a, on_opt, &c);
    if (!a.embeds) spo_die(2, "missing -e/--embeds FILE (try 'spo-init --help')");
    if (!a.out) spo_die(2, "missing -o/--output FILE (try 'spo-init --help')");
    double t0 = spo_now();
    spo_init_opts o;
    int rc = a.model ? spo_init_from_model(&o, a.model, c.steps) : spo_init_defaults(&o, c.steps);
    if (rc) spo_die_lib(rc);
    if (c.h) o.h = c.h, o.w = c.w;
    o.seed = a.seed;
    spo_h5 *e, *out;
    if ((rc = spo_h5_open(&e, a.embeds, "embeds", NULL))) spo_die_lib(rc);
    if ((rc = spo_h5_create(&out, a.out, "state/1", a.force))) {
        spo_h5_close(e);
        spo_die_lib(rc);
    }
    spo_vtime(&a, "load", spo_now() - t0);
    if ((rc = spo_state_init(out, e, &o))) {
        spo_h5_abort(out);
        spo_h5_close(e);
        spo_die_lib(rc);
    }
    spo_h5_close(e);
    if ((rc = spo_h5_commit(out))) spo_die_lib(rc);
    spo_vtime(&a, "work", spo_now() - t0);
    return spo_finish();
}
