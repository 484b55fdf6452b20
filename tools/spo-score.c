/* spo-score — decode every child of a pool and score it with the step-aware
 * preference model at its own timestep (or with a built-in scorer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "spo/score_run.h"

#include "spo-score.opts.h"

int main(int argc, char **argv)
{
    tool_vals c;
    spo_args a;
    spo_parse(&tool, argc, argv, &a, &c, sizeof c, NULL);
    if (!c.spm == !c.scorer) spo_die(2, "give one of --spm DIR or --scorer NAME");
    if (c.weights && !c.spm) spo_die(2, "--spm-weights needs --spm");
    if (c.spm && !a.embeds) spo_die(2, "-e EMBEDS is required with --spm (it holds the prompts' SPM token ids)");
    if (a.embeds && !strcmp(a.embeds, "-") && !strcmp(a.argv[0], "-"))
        spo_die(2, "only one of POOL and EMBEDS can be '-'");
    spo_jobcb cb;
    spo_score_job j = {.model = a.model, .pool = a.argv[0], .embeds = a.embeds, .out = a.out, .vae = a.vae, .spm = c.spm,
                       .spm_weights = c.weights, .scorer = c.scorer, .force = a.force, .batch = c.batch,
                       .device = a.devkind, .hooks = spo_jobcb_hooks(&cb, &a, "scoring")};
    return spo_jobcb_done(&cb, spo_score_run(&j));
}
