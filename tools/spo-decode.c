/* spo-decode — decode the latents of a state, pool or pairs file with the
 * model's VAE into PNG images: a folder of PNGs, a tar stream of them, or
 * one contact sheet (rows = prompts, columns = children). The work is in
 * lib/spo/decode_run.c. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"
#include "spo/decode_run.h"

#include "spo-decode.opts.h"

int main(int argc, char **argv)
{
    tool_vals c;
    spo_args a;
    spo_parse(&tool, argc, argv, &a, &c, sizeof c, NULL);
    if (a.embeds && !strcmp(a.embeds, "-") && !strcmp(a.argv[0], "-"))
        spo_die(2, "only one of FILE and EMBEDS can be '-'");
    if (!a.out && !c.sheet) spo_die(2, "give -o DIR, -o FILE.tar, -o - (a tar stream) or --sheet FILE.png");
    if (a.out && c.sheet && !strcmp(a.out, "-") && !strcmp(c.sheet, "-"))
        spo_die(2, "-o - and --sheet - cannot both use standard output");
    if (((a.out && !strcmp(a.out, "-")) || (c.sheet && !strcmp(c.sheet, "-"))) && isatty(STDOUT_FILENO))
        spo_die(2, "refusing to write binary data to a terminal (redirect standard output)");
    char soft[64];
    snprintf(soft, sizeof soft, "spo-decode %s", SPO_VERSION);
    spo_jobcb cb;
    spo_decode_job j = {.model = a.model, .vae = a.vae, .in = a.argv[0], .embeds = a.embeds, .what = c.what, .out = a.out,
                        .sheet = c.sheet, .software = soft, .gap = c.gap, .batch = c.batch, .force = a.force,
                        .device = a.devkind, .hooks = spo_jobcb_hooks(&cb, &a, "decoding")};
    return spo_jobcb_done(&cb, spo_decode_run(&j));
}
