/* spo-generate — text to image with a base model and an optional LoRA, as
 * diffusers' StableDiffusionPipeline with a DDIMScheduler does it; PNGs to
 * a folder, one file, a tar file or a tar stream. The work is in
 * lib/spo/generate.c; the outputs in lib/io/imgout.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"
#include "spo/generate.h"
#include "io/h5io.h"
#include "io/imgout.h"
#include "text/prompts.h"

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

/* everything the run holds, so one place frees it and removes a half output */
static struct {
    spo_prompts p;
    spo_dev *dev;
    spo_gen *gen;
    spo_imgout *out;
    char **names;
    int n;
    float *xT, *x, *img;
    uint8_t *rgb;
    char *params;
} r;

static struct {
    spo_progress *bar;
    long base;
} prog;

static void cleanup(void)
{
    spo_progress_end(prog.bar); /* ends the bar's line before an error message */
    prog.bar = NULL;
    spo_imgout_abort(r.out);
    r.out = NULL;
    for (int i = 0; r.names && i < r.n; i++) free(r.names[i]);
    free(r.names), free(r.xT), free(r.x), free(r.img), free(r.rgb), free(r.params);
    spo_prompts_free(&r.p);
    spo_gen_free(r.gen);
    if (r.dev) spo_dev_close(r.dev);
    memset(&r, 0, sizeof r);
}

static _Noreturn void fail(int rc)
{
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", spo_errmsg());
    cleanup();
    spo_err(rc, "%s", msg);
    spo_die_lib(rc);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) fail(spo_err(SPO_EIO, "out of memory (%zu bytes)", n));
    return p;
}

/* Prompts from the command line (ids 0..P-1) or from --prompts. */
static void read_prompts(const spo_args *a, const ctx_t *c)
{
    int rc;
    if (c->prompts) {
        if ((rc = spo_prompts_read(&r.p, c->prompts))) fail(rc);
        return;
    }
    r.p.n = a->argc;
    r.p.text = calloc((size_t)a->argc, sizeof *r.p.text);
    r.p.id = calloc((size_t)a->argc, sizeof *r.p.id);
    if (!r.p.text || !r.p.id) fail(spo_err(SPO_EIO, "out of memory"));
    for (int i = 0; i < a->argc; i++) {
        if (!(r.p.text[i] = strdup(a->argv[i]))) fail(spo_err(SPO_EIO, "out of memory"));
        r.p.id[i] = i;
    }
}

/* x_T of every image from --latents: /latents [n, C, h, w]. */
static void read_latents(const char *path, int n, int C, int *h, int *w)
{
    spo_h5 *f;
    spo_dsinfo d;
    int rc = spo_h5_open(&f, path, NULL, NULL);
    if (rc) fail(rc);
    if ((rc = spo_h5_info(f, "/latents", &d))) {
        spo_h5_close(f);
        fail(rc);
    }
    if (d.ndim != 4 || d.shape[0] != n || d.shape[1] != C || d.shape[2] < 1 || d.shape[3] < 1 ||
        d.shape[2] > 4096 || d.shape[3] > 4096) {
        char shp[128] = "";
        for (int i = 0; i < d.ndim && i < 8; i++)
            snprintf(shp + strlen(shp), sizeof shp - strlen(shp), "%s%lld", i ? "," : "", (long long)d.shape[i]);
        spo_h5_close(f);
        fail(spo_err(SPO_EINVAL, "%s: /latents is [%s], expected [%d,%d,h,w] (one per image)", path, shp, n, C));
    }
    *h = (int)d.shape[2], *w = (int)d.shape[3];
    r.xT = xmalloc((size_t)n * C * *h * *w * sizeof *r.xT);
    rc = spo_h5_read_f32(f, "/latents", r.xT, (size_t)n * C * *h * *w);
    spo_h5_close(f);
    if (rc) fail(rc);
}

/* Append to buf (size cap, *m used), truncating safely. */
static void app(char *buf, size_t cap, size_t *m, const char *fmt, ...) SPO_PRINTF(4, 5);
static void app(char *buf, size_t cap, size_t *m, const char *fmt, ...)
{
    if (*m + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *m, cap - *m, fmt, ap);
    va_end(ap);
    if (k > 0) *m = *m + (size_t)k < cap ? *m + (size_t)k : cap - 1;
}

static void on_step(void *ctx, long done, long total) { spo_progress_update(prog.bar, prog.base + done); }

int main(int argc, char **argv)
{
    double t0 = spo_now();
    ctx_t c = {.guidance = 7.5, .steps = 50, .per_prompt = 1, .batch = 4};
    spo_args a;
    spo_parse(&tool, argc, argv, &a, on_opt, &c);
    if (!a.model) spo_die(2, "-m MODEL is required");
    if (!a.out) spo_die(2, "-o DIR|FILE.png|FILE.tar|- is required");
    if (c.prompts && a.argc) spo_die(2, "give prompts as arguments or with --prompts, not both");
    if (!c.prompts && !a.argc) spo_die(2, "no prompt (give PROMPT... or --prompts FILE)");
    if (strcmp(a.device, "cpu")) spo_die(2, "--device %s: spo-generate runs on the cpu in this build", a.device);
    if (!strcmp(a.out, "-") && isatty(STDOUT_FILENO))
        spo_die(2, "refusing to write a tar stream to a terminal (redirect standard output)");
    if (c.prompts && c.latents && !strcmp(c.prompts, "-") && !strcmp(c.latents, "-"))
        spo_die(2, "only one of --prompts and --latents can be '-'");

    int rc;
    read_prompts(&a, &c);
    if ((int64_t)r.p.n * c.per_prompt > 1000000) fail(spo_err(SPO_EINVAL, "too many images (at most 1000000)"));
    r.n = r.p.n * c.per_prompt;
    r.names = calloc((size_t)r.n, sizeof *r.names);
    if (!r.names) fail(spo_err(SPO_EIO, "out of memory"));
    for (int k = 0; k < r.n; k++) {
        char name[64];
        snprintf(name, sizeof name, "p%lld_i%d.png", (long long)r.p.id[k / c.per_prompt], k % c.per_prompt);
        if (!(r.names[k] = strdup(name))) fail(spo_err(SPO_EIO, "out of memory"));
    }
    if ((rc = spo_imgout_check(a.out, r.n, (const char *const *)r.names, a.force))) fail(rc);

    /* the model, the LoRA, the size */
    if ((rc = spo_dev_open(&r.dev, SPO_DEV_CPU, 0)) || (rc = spo_gen_load(&r.gen, a.model, r.dev))) fail(rc);
    if (a.lora && (rc = spo_gen_lora(r.gen, a.lora))) fail(rc);
    double t_load = spo_now();
    spo_vtime(&a, "load", t_load - t0);
    int C = spo_gen_channels(r.gen), f = spo_gen_vae_factor(r.gen), h, w;
    spo_gen_sample_size(r.gen, &h, &w);
    if (c.latents) {
        read_latents(c.latents, r.n, C, &h, &w);
        if (c.H && (c.H != h * f || c.W != w * f))
            fail(spo_err(SPO_EINVAL, "--size %dx%d: the latents of %s make %dx%d images", c.H, c.W, c.latents, h * f,
                         w * f));
    } else if (c.H) {
        if (c.H % f || c.W % f)
            fail(spo_err(SPO_EINVAL, "--size %dx%d: height and width must be multiples of the VAE factor %d", c.H, c.W,
                         f));
        h = c.H / f, w = c.W / f;
    }
    if ((rc = spo_gen_check_latent(r.gen, h, w))) {
        if (c.latents) fail(spo_err_prefix(rc, "%s", c.latents));
        fail(spo_err(rc, "--size %dx%d: %s", h * f, w * f, spo_errmsg()));
    }

    /* the prompts */
    if ((rc = spo_gen_prompts(r.gen, (const char *const *)r.p.text, r.p.id, r.p.n, c.negative))) fail(rc);
    double t_enc = spo_now();
    spo_vtime(&a, "encode", t_enc - t_load);

    spo_gen_opts o;
    spo_gen_defaults(&o);
    o.steps = c.steps, o.guidance = (float)c.guidance, o.eta = (float)c.eta, o.seed = a.seed;
    o.per_prompt = c.per_prompt, o.h = h, o.w = w, o.batch = c.batch;
    o.progress = on_step;
    int H = h * f, W = w * f, B = c.batch < r.n ? c.batch : r.n;
    size_t lat = (size_t)C * h * w, pix = (size_t)3 * H * W;
    r.x = xmalloc((size_t)B * lat * sizeof *r.x);
    r.img = xmalloc((size_t)B * pix * sizeof *r.img);
    r.rgb = xmalloc(pix);
    size_t maxp = strlen(c.negative ? c.negative : "");
    for (int i = 0; i < r.p.n; i++)
        if (strlen(r.p.text[i]) > maxp) maxp = strlen(r.p.text[i]);
    size_t cap = 2 * maxp + 1024;
    r.params = xmalloc(cap);
    char soft[64], lora[128] = "";
    snprintf(soft, sizeof soft, "spo-generate %s", SPO_VERSION);
    const spo_lora *li = spo_gen_lora_info(r.gen);
    if (li) snprintf(lora, sizeof lora, "%s@%lld", li->lora_id, (long long)li->step);

    if ((rc = spo_imgout_open(&r.out, a.out, r.n, (const char *const *)r.names, a.force))) fail(rc);
    prog.bar = spo_progress_start("denoising", (long)o.steps * ((r.n + B - 1) / B), a.quiet);
    double t_den = 0, t_dec = 0, t_png = 0;
    for (int k0 = 0; k0 < r.n; k0 += B) {
        int m = r.n - k0 < B ? r.n - k0 : B;
        double ta = spo_now();
        if (r.xT) memcpy(r.x, r.xT + (size_t)k0 * lat, (size_t)m * lat * sizeof *r.x);
        else if ((rc = spo_gen_init_latents(r.gen, &o, k0, m, r.x))) fail(rc);
        if ((rc = spo_gen_denoise(r.gen, &o, k0, m, r.x))) fail(rc);
        double tb = spo_now();
        if ((rc = spo_gen_decode(r.gen, r.x, m, h, w, r.img))) fail(rc);
        double tc = spo_now();
        for (int i = 0; i < m; i++) {
            int k = k0 + i, p = k / c.per_prompt;
            size_t n = 0;
            app(r.params, cap, &n, "%s\n", r.p.text[p]);
            if (c.negative && *c.negative) app(r.params, cap, &n, "Negative prompt: %s\n", c.negative);
            app(r.params, cap, &n, "Steps: %d, Sampler: DDIM, CFG scale: %g, Eta: %g, Seed: %llu, Size: %dx%d, "
                "Model hash: %s", c.steps, c.guidance, c.eta, (unsigned long long)a.seed, W, H,
                spo_gen_model_id(r.gen));
            if (li) app(r.params, cap, &n, ", Lora: %s", lora);
            app(r.params, cap, &n, ", spo: prompt id %lld, image %d, x_T %s", (long long)r.p.id[p], k % c.per_prompt,
                c.latents ? c.latents : "philox");
            spo_png_text tx[3] = {{"parameters", r.params}, {"Software", soft}, {"prompt", r.p.text[p]}};
            spo_img_to_rgb8(r.img + i * pix, H, W, r.rgb);
            if ((rc = spo_imgout_put(r.out, r.names[k], r.rgb, W, H, tx, 3))) fail(rc);
        }
        t_den += tb - ta, t_dec += tc - tb, t_png += spo_now() - tc;
        prog.base += o.steps;
    }
    spo_progress_end(prog.bar);
    prog.bar = NULL;
    rc = spo_imgout_close(r.out);
    r.out = NULL;
    if (rc) fail(rc);
    spo_vtime(&a, "denoise", t_den);
    spo_vtime(&a, "decode", t_dec);
    spo_vtime(&a, "png", t_png);
    cleanup();
    return spo_finish();
}
