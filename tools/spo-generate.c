/* spo-generate — text to image with a base model and an optional LoRA, as
 * diffusers' StableDiffusionPipeline with a DDIMScheduler does it; PNGs to
 * a folder, one file, a tar file or a tar stream. The job is in
 * lib/spo/generate_run.c, the pipeline in lib/spo/generate.c, the outputs
 * in lib/io/imgout.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"
#include "spo/generate_run.h"

#include "spo-generate.opts.h"

int main(int argc, char **argv)
{
    tool_vals c;
    spo_args a;
    spo_parse(&tool, argc, argv, &a, &c, sizeof c, NULL);
    if (c.prompts && a.argc) spo_die(2, "give prompts as arguments or with --prompts, not both");
    if (!c.prompts && !a.argc) spo_die(2, "no prompt (give PROMPT... or --prompts FILE)");
    if (!strcmp(a.out, "-") && isatty(STDOUT_FILENO))
        spo_die(2, "refusing to write a tar stream to a terminal (redirect standard output)");
    if (c.prompts && c.latents && !strcmp(c.prompts, "-") && !strcmp(c.latents, "-"))
        spo_die(2, "only one of --prompts and --latents can be '-'");
    char soft[64];
    snprintf(soft, sizeof soft, "spo-generate %s", SPO_VERSION);
    spo_jobcb cb;
    spo_generate_job j = {.model = a.model, .vae = a.vae, .lora = a.lora, .out = a.out, .prompt = (const char *const *)a.argv,
                          .nprompt = a.argc, .prompts = c.prompts, .negative = c.negative, .latents = c.latents,
                          .software = soft, .steps = c.steps, .per_prompt = c.per_prompt, .batch = c.batch,
                          .force = a.force, .H = c.size[0], .W = c.size[1], .guidance = c.guidance, .eta = c.eta,
                          .seed = a.seed, .device = a.devkind, .hooks = spo_jobcb_hooks(&cb, &a, "denoising")};
    return spo_jobcb_done(&cb, spo_generate_run(&j));
}
