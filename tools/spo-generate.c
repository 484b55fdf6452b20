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

static const spo_opt opts[] = {
    {"guidance", 'g', "G", "classifier-free guidance scale (default 7.5; 1 or less: no guidance)"},
    {"steps", 0, "N", "DDIM inference steps (default 50)"},
    {"eta", 0, "ETA", "DDIM eta (default 0: deterministic)"},
    {"size", 0, "HxW", "image height x width in pixels (default: the model's, sample_size x VAE factor)"},
    {"images-per-prompt", 0, "N", "images per prompt (default 1)"},
    {"negative", 0, "TEXT", "negative prompt (default: the empty prompt)"},
    {"batch", 'b', "N", "images denoised at once (default 4)"},
    {"prompts", 0, "FILE", "read the prompts from FILE (.txt, .json, .jsonl, or an archive; as spo-encode)"},
    {"latents", 0, "FILE", "initial latents x_T from FILE's /latents [N,C,h,w] (a state file or any HDF5)"},
    {0},
};

static const spo_tool tool = {
    .name = "spo-generate",
    .synopsis = "-m MODEL [--lora FILE] [options] (PROMPT... | --prompts FILE) -o DIR|FILE.png|FILE.tar|-",
    .summary = "Generate images from text with the model (and a LoRA: a lora/1 file or a diffusers\n"
               "pytorch_lora_weights.safetensors), as diffusers' StableDiffusionPipeline with a DDIM\n"
               "scheduler does: PNGs into a folder (p<prompt id>_i<image>.png), one PNG file, a tar\n"
               "file, or a tar stream on standard output (-o -).",
    .common = SPO_O_OUT | SPO_O_MODEL | SPO_O_LORA | SPO_O_SEED | SPO_O_DEVICE | SPO_O_FORCE,
    .opts = opts,
    .min_args = 0,
    .max_args = -1,
};

typedef struct {
    double guidance, eta;
    int steps, H, W, per_prompt, batch;
    const char *negative, *prompts, *latents;
} ctx_t;

static int on_opt(void *p, int idx, const char *arg)
{
    ctx_t *c = p;
    char *end;
    switch (idx) {
    case 0: c->guidance = spo_arg_double("--guidance", arg, 0, 1000); break;
    case 1: c->steps = (int)spo_arg_long("--steps", arg, 1, 1000); break;
    case 2: c->eta = spo_arg_double("--eta", arg, 0, 10); break;
    case 3: {
        long h = strtol(arg, &end, 10), w = h;
        if (end != arg && (*end == 'x' || *end == 'X')) {
            const char *ws = end + 1;
            w = strtol(ws, &end, 10);
            if (end == ws) w = 0;
        }
        if (end == arg || *end || h < 1 || w < 1 || h > 16384 || w > 16384)
            return spo_err(SPO_EINVAL, "invalid value '%s' for --size (HxW or N pixels, 1 to 16384)", arg);
        c->H = (int)h, c->W = (int)w;
        break;
    }
    case 4: c->per_prompt = (int)spo_arg_long("--images-per-prompt", arg, 1, 10000); break;
    case 5: c->negative = arg; break;
    case 6: c->batch = (int)spo_arg_long("--batch", arg, 1, 4096); break;
    case 7: c->prompts = arg; break;
    case 8: c->latents = arg; break;
    }
    return 0;
}

int main(int argc, char **argv)
{
    double t0 = spo_now();
    ctx_t c = {.guidance = 7.5, .steps = 50, .per_prompt = 1, .batch = 4};
    spo_args a;
    spo_jobcb cb;
    spo_parse(&tool, argc, argv, &a, on_opt, &c);
    if (!a.model) spo_die(2, "-m MODEL is required");
    if (!a.out) spo_die(2, "-o DIR|FILE.png|FILE.tar|- is required");
    if (c.prompts && a.argc) spo_die(2, "give prompts as arguments or with --prompts, not both");
    if (!c.prompts && !a.argc) spo_die(2, "no prompt (give PROMPT... or --prompts FILE)");
    if (!strcmp(a.out, "-") && isatty(STDOUT_FILENO))
        spo_die(2, "refusing to write a tar stream to a terminal (redirect standard output)");
    if (c.prompts && c.latents && !strcmp(c.prompts, "-") && !strcmp(c.latents, "-"))
        spo_die(2, "only one of --prompts and --latents can be '-'");
    char soft[64];
    snprintf(soft, sizeof soft, "spo-generate %s", SPO_VERSION);
    spo_jobcb_init(&cb, &a, "denoising", t0);
    spo_generate_job j = {.model = a.model, .lora = a.lora, .out = a.out, .prompt = (const char *const *)a.argv,
                          .nprompt = a.argc, .prompts = c.prompts, .negative = c.negative, .latents = c.latents,
                          .software = soft, .steps = c.steps, .per_prompt = c.per_prompt, .batch = c.batch,
                          .force = a.force, .H = c.H, .W = c.W, .guidance = c.guidance, .eta = c.eta,
                          .seed = a.seed, .ctx = &cb, .progress = spo_jobcb_progress, .phase = spo_jobcb_phase,
                          .timing = spo_jobcb_time};
    j.device = a.devkind;
    int rc = spo_generate_run(&j);
    spo_jobcb_end(&cb);
    if (rc) spo_die_lib(rc);
    return spo_finish();
}
