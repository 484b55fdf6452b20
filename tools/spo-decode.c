/* spo-decode — decode the latents of a state, pool or pairs file with the
 * model's VAE into PNG images: a folder of PNGs, a tar stream of them, or
 * one contact sheet (rows = prompts, columns = children). The work is in
 * lib/spo/decode_run.c. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"
#include "spo/decode_run.h"

static const spo_opt opts[] = {
    {"what", 0, "NAME", "latents to decode: pool x0 (default), children or parent; pairs win (default), lose or parent"},
    {"sheet", 0, "FILE", "also (or only) write one contact sheet PNG: rows = prompts, columns = children"},
    {"gap", 0, "N", "pixels between the cells of the contact sheet (default 2)"},
    {"batch", 'b', "N", "images decoded at once (default 4)"},
    {0},
};

static const spo_tool tool = {
    .name = "spo-decode",
    .synopsis = "-m MODEL [options] FILE|- (-o DIR|FILE.tar|- | --sheet FILE.png|-)",
    .summary = "Decode the latents of a state, pool or pairs file with the model's VAE into 8-bit PNG images\n"
               "(as diffusers' output_type=\"pil\"): a folder of PNGs, a tar of them (-o FILE.tar, or -o - for\n"
               "a tar stream on standard output), and/or one contact sheet.",
    .common = SPO_O_OUT | SPO_O_MODEL | SPO_O_EMBEDS | SPO_O_DEVICE | SPO_O_FORCE,
    .opts = opts,
    .min_args = 1,
    .max_args = 1,
};

typedef struct {
    const char *what, *sheet;
    int gap, batch;
} ctx_t;

static int on_opt(void *p, int idx, const char *arg)
{
    ctx_t *c = p;
    switch (idx) {
    case 0: c->what = arg; break;
    case 1: c->sheet = arg; break;
    case 2: c->gap = (int)spo_arg_long("--gap", arg, 0, 64); break;
    case 3: c->batch = (int)spo_arg_long("--batch", arg, 1, 4096); break;
    }
    return 0;
}

int main(int argc, char **argv)
{
    double t0 = spo_now();
    ctx_t c = {.gap = 2, .batch = 4};
    spo_args a;
    spo_jobcb cb;
    spo_parse(&tool, argc, argv, &a, on_opt, &c);
    if (!a.model) spo_die(2, "-m MODEL is required (its vae/ decodes the latents)");
    if (a.embeds && !strcmp(a.embeds, "-") && !strcmp(a.argv[0], "-"))
        spo_die(2, "only one of FILE and EMBEDS can be '-'");
    if (!a.out && !c.sheet) spo_die(2, "give -o DIR, -o FILE.tar, -o - (a tar stream) or --sheet FILE.png");
    if (a.out && c.sheet && !strcmp(a.out, "-") && !strcmp(c.sheet, "-"))
        spo_die(2, "-o - and --sheet - cannot both use standard output");
    if (((a.out && !strcmp(a.out, "-")) || (c.sheet && !strcmp(c.sheet, "-"))) && isatty(STDOUT_FILENO))
        spo_die(2, "refusing to write binary data to a terminal (redirect standard output)");
    char soft[64];
    snprintf(soft, sizeof soft, "spo-decode %s", SPO_VERSION);
    spo_jobcb_init(&cb, &a, "decoding", t0);
    spo_decode_job j = {.model = a.model, .in = a.argv[0], .embeds = a.embeds, .what = c.what, .out = a.out,
                        .sheet = c.sheet, .software = soft, .gap = c.gap, .batch = c.batch, .force = a.force,
                        .ctx = &cb, .progress = spo_jobcb_progress, .phase = spo_jobcb_phase,
                        .timing = spo_jobcb_time};
    j.device = a.devkind;
    int rc = spo_decode_run(&j);
    spo_jobcb_end(&cb);
    if (rc) spo_die_lib(rc);
    return spo_finish();
}
