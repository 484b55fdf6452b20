/* generate_run.c — spo-generate's job (see generate_run.h). */
#include "spo/generate_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/strbuf.h"
#include "io/h5io.h"
#include "io/imgout.h"
#include "spo/generate.h"
#include "text/prompts.h"

typedef struct {
    const spo_generate_job *j;
    spo_prompts p;
    spo_dev *dev;
    spo_gen *gen;
    spo_imgout *out;
    char **names; /* [n] */
    int n, h, w;  /* images; latent size */
    float *xT, *x, *img;
    uint8_t *rgb;
    char *params;
    size_t cap;
    long base, total; /* denoising steps before this batch; in all */
} run_t;

static void phase(const run_t *r, const char *name) { spo_hook_phase(&r->j->hooks, name); }

static void timing(const run_t *r, const char *name, double seconds) { spo_hook_timing(&r->j->hooks, name, seconds); }

static void on_step(void *p, long done, long total)
{
    const run_t *r = p;
    spo_hook_progress(&r->j->hooks, r->base + done, r->total);
}

/* n bytes, unless *rc already holds an error; sets *rc when out of memory. */
static void *alloc(size_t n, int *rc)
{
    void *p = *rc ? NULL : malloc(n ? n : 1);
    if (!p && !*rc) *rc = spo_err(SPO_EIO, "out of memory (%zu bytes)", n);
    return p;
}

/* Prompts from the job (ids 0..nprompt-1) or from its prompts file. */
static int read_prompts(run_t *r)
{
    const spo_generate_job *j = r->j;
    if (j->prompts) return spo_prompts_read(&r->p, j->prompts);
    r->p.n = j->nprompt;
    r->p.text = calloc((size_t)j->nprompt, sizeof *r->p.text);
    r->p.id = calloc((size_t)j->nprompt, sizeof *r->p.id);
    if (!r->p.text || !r->p.id) return spo_err(SPO_EIO, "out of memory");
    for (int i = 0; i < j->nprompt; i++) {
        if (!(r->p.text[i] = strdup(j->prompt[i]))) return spo_err(SPO_EIO, "out of memory");
        r->p.id[i] = i;
    }
    return SPO_OK;
}

/* The image names p<id>_i<k>.png, and the output checked for them. */
static int name_images(run_t *r)
{
    const spo_generate_job *j = r->j;
    if ((int64_t)r->p.n * j->per_prompt > 1000000) return spo_err(SPO_EINVAL, "too many images (at most 1000000)");
    r->n = r->p.n * j->per_prompt;
    r->names = calloc((size_t)r->n, sizeof *r->names);
    if (!r->names) return spo_err(SPO_EIO, "out of memory");
    for (int k = 0; k < r->n; k++) {
        char name[64];
        snprintf(name, sizeof name, "p%lld_i%d.png", (long long)r->p.id[k / j->per_prompt], k % j->per_prompt);
        if (!(r->names[k] = strdup(name))) return spo_err(SPO_EIO, "out of memory");
    }
    return spo_imgout_check(j->out, r->n, (const char *const *)r->names, j->force);
}

static int load_model(run_t *r)
{
    int rc = spo_dev_open(&r->dev, r->j->device, 0);
    if (rc || (rc = spo_gen_load_vae(&r->gen, r->j->model, r->j->vae, r->dev))) return rc;
    if (r->j->lora) rc = spo_gen_lora(r->gen, r->j->lora);
    return rc;
}

/* x_T of every image from the latents file: /latents [n, C, h, w]. */
static int read_latents(run_t *r, int C)
{
    const char *path = r->j->latents;
    spo_h5 *f;
    spo_dsinfo d;
    int n = r->n, rc = spo_h5_open(&f, path, NULL, NULL);
    if (rc) return rc;
    if ((rc = spo_h5_info(f, "/latents", &d))) {
        spo_h5_close(f);
        return rc;
    }
    if (d.ndim != 4 || d.shape[0] != n || d.shape[1] != C || d.shape[2] < 1 || d.shape[3] < 1 ||
        d.shape[2] > 4096 || d.shape[3] > 4096) {
        char shp[128] = "";
        for (int i = 0; i < d.ndim && i < 8; i++)
            snprintf(shp + strlen(shp), sizeof shp - strlen(shp), "%s%lld", i ? "," : "", (long long)d.shape[i]);
        spo_h5_close(f);
        return spo_err(SPO_EINVAL, "%s: /latents is [%s], expected [%d,%d,h,w] (one per image)", path, shp, n, C);
    }
    r->h = (int)d.shape[2], r->w = (int)d.shape[3];
    size_t cnt = (size_t)n * C * r->h * r->w;
    r->xT = alloc(cnt * sizeof *r->xT, &rc);
    if (!rc) rc = spo_h5_read_f32(f, "/latents", r->xT, cnt);
    spo_h5_close(f);
    return rc;
}

/* The latent size: the latents', the asked image size over the VAE
 * factor, or the model's. */
static int latent_size(run_t *r)
{
    const spo_generate_job *j = r->j;
    int C = spo_gen_channels(r->gen), f = spo_gen_vae_factor(r->gen), rc;
    spo_gen_sample_size(r->gen, &r->h, &r->w);
    if (j->latents) {
        if ((rc = read_latents(r, C))) return rc;
        if (j->H && (j->H != r->h * f || j->W != r->w * f))
            return spo_err(SPO_EINVAL, "--size %dx%d: the latents of %s make %dx%d images", j->H, j->W, j->latents,
                           r->h * f, r->w * f);
    } else if (j->H) {
        if (j->H % f || j->W % f)
            return spo_err(SPO_EINVAL, "--size %dx%d: height and width must be multiples of the VAE factor %d", j->H,
                           j->W, f);
        r->h = j->H / f, r->w = j->W / f;
    }
    if ((rc = spo_gen_check_latent(r->gen, r->h, r->w))) {
        if (j->latents) return spo_err_prefix(rc, "%s", j->latents);
        return spo_err(rc, "--size %dx%d: %s", r->h * f, r->w * f, spo_errmsg());
    }
    return SPO_OK;
}

/* The "parameters" text of image k (A1111 style, then spo's provenance). */
static void describe(run_t *r, int k, int W, int H, const char *lora)
{
    const spo_generate_job *j = r->j;
    int p = k / j->per_prompt;
    size_t n = 0;
    spo_appendf(r->params, r->cap, &n, "%s\n", r->p.text[p]);
    if (j->negative && *j->negative) spo_appendf(r->params, r->cap, &n, "Negative prompt: %s\n", j->negative);
    spo_appendf(r->params, r->cap, &n,
                "Steps: %d, Sampler: DDIM, CFG scale: %g, Eta: %g, Seed: %llu, Size: %dx%d, Model hash: %s", j->steps,
                j->guidance, j->eta, (unsigned long long)j->seed, W, H, spo_gen_model_id(r->gen));
    if (lora) spo_appendf(r->params, r->cap, &n, ", Lora: %s", lora);
    spo_appendf(r->params, r->cap, &n, ", spo: prompt id %lld, image %d, x_T %s", (long long)r->p.id[p],
                k % j->per_prompt, j->latents ? j->latents : "philox");
}

/* Denoise, decode and write every image, a batch at a time. */
static int generate(run_t *r)
{
    const spo_generate_job *j = r->j;
    spo_gen_opts o;
    spo_gen_defaults(&o);
    o.steps = j->steps, o.guidance = (float)j->guidance, o.eta = (float)j->eta, o.seed = j->seed;
    o.per_prompt = j->per_prompt, o.h = r->h, o.w = r->w, o.batch = j->batch;
    o.progress = on_step, o.ctx = r;
    int C = spo_gen_channels(r->gen), f = spo_gen_vae_factor(r->gen), rc = SPO_OK;
    int H = r->h * f, W = r->w * f, B = j->batch < r->n ? j->batch : r->n;
    size_t lat = (size_t)C * r->h * r->w, pix = (size_t)3 * H * W;
    size_t maxp = strlen(j->negative ? j->negative : "");
    for (int i = 0; i < r->p.n; i++)
        if (strlen(r->p.text[i]) > maxp) maxp = strlen(r->p.text[i]);
    r->cap = 2 * maxp + 1024;
    r->x = alloc((size_t)B * lat * sizeof *r->x, &rc);
    r->img = alloc((size_t)B * pix * sizeof *r->img, &rc);
    r->rgb = alloc(pix, &rc);
    r->params = alloc(r->cap, &rc);
    if (rc) return rc;
    char lora[128] = "";
    const spo_lora *li = spo_gen_lora_info(r->gen);
    if (li) snprintf(lora, sizeof lora, "%s@%lld", li->lora_id, (long long)li->step);

    if ((rc = spo_imgout_open(&r->out, j->out, r->n, (const char *const *)r->names, j->force))) return rc;
    r->total = (long)o.steps * ((r->n + B - 1) / B);
    on_step(r, 0, r->total);
    double t_den = 0, t_dec = 0, t_png = 0;
    for (int k0 = 0; k0 < r->n; k0 += B) {
        int m = r->n - k0 < B ? r->n - k0 : B;
        double ta = spo_seconds();
        if (r->xT) memcpy(r->x, r->xT + (size_t)k0 * lat, (size_t)m * lat * sizeof *r->x);
        else if ((rc = spo_gen_init_latents(r->gen, &o, k0, m, r->x))) return rc;
        if ((rc = spo_gen_denoise(r->gen, &o, k0, m, r->x))) return rc;
        double tb = spo_seconds();
        if ((rc = spo_gen_decode(r->gen, r->x, m, r->h, r->w, r->img))) return rc;
        double tc = spo_seconds();
        for (int i = 0; i < m; i++) {
            int k = k0 + i;
            const char *prompt = r->p.text[k / j->per_prompt];
            describe(r, k, W, H, li ? lora : NULL);
            spo_png_text tx[3] = {{"parameters", r->params}, {"Software", j->software}, {"prompt", prompt}};
            spo_img_to_rgb8(r->img + i * pix, H, W, r->rgb);
            if ((rc = spo_imgout_put(r->out, r->names[k], r->rgb, W, H, tx, 3))) return rc;
        }
        t_den += tb - ta, t_dec += tc - tb, t_png += spo_seconds() - tc;
        r->base += o.steps;
    }
    rc = spo_imgout_close(r->out);
    r->out = NULL;
    if (rc) return rc;
    timing(r, "denoise", t_den);
    timing(r, "decode", t_dec);
    timing(r, "png", t_png);
    return SPO_OK;
}

int spo_generate_run(const spo_generate_job *j)
{
    run_t r = {.j = j};
    int rc = read_prompts(&r);
    if (!rc) rc = name_images(&r);
    if (!rc) rc = load_model(&r);
    if (!rc) phase(&r, "load");
    if (!rc) rc = latent_size(&r);
    if (!rc) rc = spo_gen_prompts(r.gen, (const char *const *)r.p.text, r.p.id, r.p.n, j->negative);
    if (!rc) phase(&r, "encode");
    if (!rc) rc = generate(&r);
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", rc ? spo_errmsg() : "");
    spo_imgout_abort(r.out); /* a half output: what was written goes */
    for (int i = 0; r.names && i < r.n; i++) free(r.names[i]);
    free(r.names), free(r.xT), free(r.x), free(r.img), free(r.rgb), free(r.params);
    spo_prompts_free(&r.p);
    spo_gen_free(r.gen);
    if (r.dev) spo_dev_close(r.dev);
    if (rc) spo_err(rc, "%s", msg); /* the cause, whatever the cleanup said */
    return rc;
}
