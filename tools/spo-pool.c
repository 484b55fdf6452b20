/* spo-pool — one SPO sampling step for every prompt of a state file: the
 * guided eps at x_t (unless cached), K children from the DDIM step, and
 * each child's guided eps and predicted clean latent at its timestep. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "spo/pool_run.h"

#include "spo-pool.opts.h"

int main(int argc, char **argv)
{
    tool_vals c;
    spo_args a;
    spo_parse(&tool, argc, argv, &a, &c, sizeof c, NULL);
    if (!strcmp(a.embeds, "-") && !strcmp(a.argv[0], "-")) spo_die(2, "only one of STATE and EMBEDS can be '-'");
    spo_jobcb cb;
    spo_pool_job j = {.model = a.model, .embeds = a.embeds, .state = a.argv[0], .lora = a.lora, .out = a.out,
                      .force = a.force, .K = c.K, .batch = c.batch, .inner = c.inner, .guidance = c.guidance, .eta = c.eta,
                      .device = a.devkind, .hooks = spo_jobcb_hooks(&cb, &a, "UNet")};
    return spo_jobcb_done(&cb, spo_pool_run(&j));
}
