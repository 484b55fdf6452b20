/* generate.c — text to image as diffusers' StableDiffusionPipeline with a
 * DDIMScheduler (see generate.h). */
#include "spo/generate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spo/ddim.h"
#include "spo/encode.h"
#include "core/err.h"
#include "spo/loop_state.h"
#include "nn/lora_load.h"
#include "io/modelid.h"
#include "core/philox.h"
#include "spo/loopfile.h"
#include "spo/sampler.h"
#include "nn/unet.h"
#include "nn/vae.h"
#include "spo/time_ids.h"

struct spo_gen {
    spo_dev *dev;
    spo_encoder *enc;
    spo_unet *unet;
    spo_vae *vae;
    spo_ddim sched;            /* as loaded; spo_gen_run sets the steps on a copy */
    char model_id[SPO_MODEL_ID_LEN];
    char dir[4096];            /* the model directory, for messages */
    int C, sh, sw;             /* latent channels, default latent size */
    spo_lora lora;
    int has_lora;
    int P, L, D;
    float *cond;               /* (P, L, D) host */
    float *uncond;             /* (L, D) host */
    int E;                     /* SDXL: the pooled width (0: SD) */
    float *pooled;             /* (P, E) host */
    float *uncond_pooled;      /* (E) host */
    uint32_t *pid;             /* (P) */
};

void spo_gen_defaults(spo_gen_opts *o)
{
    memset(o, 0, sizeof *o);
    o->steps = 50;
    o->guidance = 7.5f;
    o->per_prompt = 1;
    o->batch = 4;
}

int spo_gen_load(spo_gen **out, const char *model_dir, spo_dev *dev)
{
    return spo_gen_load_vae(out, model_dir, NULL, dev);
}

int spo_gen_load_vae(spo_gen **out, const char *model_dir, const char *vae_dir, spo_dev *dev)
{
    *out = NULL;
    spo_gen *g = calloc(1, sizeof *g);
    if (!g) return spo_err(SPO_EIO, "out of memory");
    g->dev = dev;
    snprintf(g->dir, sizeof g->dir, "%s", model_dir);
    char path[4096];
    spo_init_opts io;
    int rc = spo_init_from_model(&io, model_dir, 1); /* checks model_index.json; channels and sample size */
    if (!rc) rc = spo_model_id(model_dir, g->model_id, sizeof g->model_id);
    if (!rc) rc = spo_encoder_load(&g->enc, model_dir, dev);
    if (!rc) {
        snprintf(path, sizeof path, "%s/unet", model_dir);
        rc = spo_unet_load(&g->unet, path, dev);
    }
    if (!rc) {
        if (vae_dir) snprintf(path, sizeof path, "%s", vae_dir);
        else snprintf(path, sizeof path, "%s/vae", model_dir);
        rc = spo_vae_load(&g->vae, path, dev);
    }
    if (!rc) {
        snprintf(path, sizeof path, "%s/scheduler", model_dir);
        rc = spo_ddim_load(&g->sched, path);
    }
    if (rc) {
        spo_gen_free(g);
        return rc;
    }
    const spo_unet_config *uc = spo_unet_cfg(g->unet);
    const spo_vae_config *vc = spo_vae_cfg(g->vae);
    g->C = io.C, g->sh = io.h, g->sw = io.w;
    if (uc->in_channels != uc->out_channels || uc->in_channels != vc->latent_channels)
        rc = spo_err(SPO_EINVAL, "%s: the UNet takes %d and gives %d channels, the VAE decodes %d", model_dir,
                     uc->in_channels, uc->out_channels, vc->latent_channels);
    else if (vc->out_channels != 3)
        rc = spo_err(SPO_EINVAL, "%s/vae: the decoder gives %d channels, not RGB", model_dir, vc->out_channels);
    else if (uc->cross_dim != spo_encoder_dim(g->enc))
        rc = spo_err(SPO_EINVAL, "%s: the text encoder is %d wide, the UNet's cross_attention_dim is %d", model_dir,
                     spo_encoder_dim(g->enc), uc->cross_dim);
    if (rc) {
        spo_gen_free(g);
        return rc;
    }
    g->L = spo_encoder_len(g->enc), g->D = spo_encoder_dim(g->enc), g->E = spo_encoder_pooled_dim(g->enc);
    if ((uc->add_time_dim > 0) != (g->E > 0) || (g->E && g->E != uc->add_text_dim)) {
        rc = spo_err(SPO_EINVAL, "%s: the text encoders give pooled embeddings %d wide, the UNet takes %d", model_dir,
                     g->E, uc->add_time_dim > 0 ? uc->add_text_dim : 0);
        spo_gen_free(g);
        return rc;
    }
    *out = g;
    return SPO_OK;
}

void spo_gen_free(spo_gen *g)
{
    if (!g) return;
    spo_encoder_free(g->enc);
    spo_unet_free(g->unet);
    spo_vae_free(g->vae);
    if (g->has_lora) spo_lora_free(&g->lora);
    free(g->cond), free(g->uncond), free(g->pid), free(g->pooled), free(g->uncond_pooled);
    free(g);
}

const char *spo_gen_model_id(const spo_gen *g) { return g->model_id; }
int spo_gen_channels(const spo_gen *g) { return g->C; }
int spo_gen_vae_factor(const spo_gen *g) { return spo_vae_factor(g->vae); }
void spo_gen_sample_size(const spo_gen *g, int *h, int *w) { *h = g->sh, *w = g->sw; }
int spo_gen_latent_multiple(const spo_gen *g) { return 1 << (spo_unet_cfg(g->unet)->nblocks - 1); }
int spo_gen_nprompts(const spo_gen *g) { return g->P; }
const spo_lora *spo_gen_lora_info(const spo_gen *g) { return g->has_lora ? &g->lora : NULL; }

int spo_gen_check_latent(const spo_gen *g, int h, int w)
{
    int m = spo_gen_latent_multiple(g);
    if (h < 1 || w < 1 || h > 4096 || w > 4096) return spo_err(SPO_EINVAL, "latent size %dx%d out of range", h, w);
    if (h % m || w % m)
        return spo_err(SPO_EINVAL, "latent size %dx%d: the UNet needs multiples of %d (images of multiples of %d pixels)",
                       h, w, m, m * spo_gen_vae_factor(g));
    return SPO_OK;
}

int spo_gen_lora(spo_gen *g, const char *path)
{
    if (g->has_lora) return spo_err(SPO_EINVAL, "%s: a LoRA is merged already (one per model)", path);
    int rc = spo_lora_attach(&g->lora, path, g->unet, g->dir, g->model_id);
    if (rc) return rc;
    g->has_lora = 1;
    return SPO_OK;
}

int spo_gen_prompts(spo_gen *g, const char *const *text, const int64_t *id, int n, const char *negative)
{
    enum { CHUNK = 16 }; /* prompts per text-encoder call */
    if (n < 1) return spo_err(SPO_EINVAL, "no prompts");
    size_t ld = (size_t)g->L * g->D, E = (size_t)g->E;
    float *cond = malloc((size_t)n * ld * sizeof *cond), *unc = malloc(ld * sizeof *unc);
    float *pooled = E ? malloc((size_t)n * E * sizeof *pooled) : NULL;
    float *upooled = E ? malloc(E * sizeof *upooled) : NULL;
    uint32_t *pid = malloc((size_t)n * sizeof *pid);
    int32_t *ids = malloc((size_t)CHUNK * g->L * sizeof *ids);
    int bad = !cond || !unc || !pid || !ids || (E && (!pooled || !upooled));
    int rc = bad ? spo_err(SPO_EIO, "out of memory") : SPO_OK;
    for (int i = 0; i < n && !rc; i++) rc = spo_prompt_u32(id[i], "prompts", &pid[i]);
    for (int i0 = 0; i0 < n && !rc; i0 += CHUNK) {
        int m = n - i0 < CHUNK ? n - i0 : CHUNK;
        rc = spo_encode_prompts_ex(g->enc, text + i0, m, ids, NULL, cond + (size_t)i0 * ld,
                                   pooled ? pooled + (size_t)i0 * E : NULL);
    }
    /* the negative: StableDiffusionPipeline encodes "" when none is given;
     * StableDiffusionXLPipeline then takes the unconditional embedding of
     * its config (zeros under force_zeros_for_empty_prompt) */
    const char *neg[1] = {negative ? negative : ""};
    if (!rc && E && !negative) rc = spo_encode_uncond(g->enc, unc, upooled);
    else if (!rc) rc = spo_encode_prompts_ex(g->enc, neg, 1, ids, NULL, unc, upooled);
    free(ids);
    if (rc) {
        free(cond), free(unc), free(pid), free(pooled), free(upooled);
        return rc;
    }
    free(g->cond), free(g->uncond), free(g->pid), free(g->pooled), free(g->uncond_pooled);
    g->cond = cond, g->uncond = unc, g->pid = pid, g->P = n, g->pooled = pooled, g->uncond_pooled = upooled;
    return SPO_OK;
}

void spo_gen_noise(float *x, size_t n, uint64_t seed, uint32_t pid, uint32_t j)
{
    spo_normal_fill(x, n, seed, pid, SPO_STEP_INIT_NOISE, j);
}

/* Check a batch of images against the prompts and the options. */
static int check_run(const spo_gen *g, const spo_gen_opts *o, int first, int m)
{
    if (!g->P) return spo_err(SPO_EINVAL, "no prompts set");
    if (o->per_prompt < 1) return spo_err(SPO_EINVAL, "images per prompt must be at least 1");
    if (first < 0 || m < 1 || (int64_t)first + m > (int64_t)g->P * o->per_prompt)
        return spo_err(SPO_EINVAL, "images %d..%d: there are %lld", first, first + m - 1,
                       (long long)g->P * o->per_prompt);
    int h = o->h ? o->h : g->sh, w = o->w ? o->w : g->sw;
    return spo_gen_check_latent(g, h, w);
}

int spo_gen_init_latents(const spo_gen *g, const spo_gen_opts *o, int first, int m, float *x)
{
    int rc = check_run(g, o, first, m);
    if (rc) return rc;
    int h = o->h ? o->h : g->sh, w = o->w ? o->w : g->sw;
    size_t lat = (size_t)g->C * h * w;
    for (int i = 0; i < m; i++) {
        int k = first + i;
        spo_gen_noise(x + (size_t)i * lat, lat, o->seed, g->pid[k / o->per_prompt], (uint32_t)(k % o->per_prompt));
    }
    return SPO_OK;
}

/* Unguided eps = unet(x, t, cond) of n latents (the pipeline when g <= 1);
 * SDXL with each prompt's pooled embedding and the time ids ad. */
static int cond_eps(spo_gen *g, const float *x, float t, const int *ctx_of, int n, int h, int w, int bs,
                    const spo_added *ad, float *eps)
{
    size_t lat = (size_t)g->C * h * w, ctx = (size_t)g->L * g->D, E = (size_t)ad->E, T = SPO_UNET_TIME_IDS;
    int mb = n < bs ? n : bs;
    float *dx = spo_dev_alloc(g->dev, mb * lat), *dout = spo_dev_alloc(g->dev, mb * lat);
    float *dctx = spo_dev_alloc(g->dev, mb * ctx), *dt = spo_dev_alloc(g->dev, (size_t)mb);
    float *dte = E ? spo_dev_alloc(g->dev, mb * E) : NULL, *dti = E ? spo_dev_alloc(g->dev, mb * T) : NULL;
    float *ht = malloc((size_t)mb * sizeof *ht);
    int bad = !dx || !dout || !dctx || !dt || !ht || (E && (!dte || !dti));
    int rc = bad ? spo_err(SPO_EIO, "out of memory") : SPO_OK;
    for (int i = 0; i < mb && !rc; i++) ht[i] = t;
    for (int i = 0; i < mb && E && !rc; i++) rc = spo_dev_upload(g->dev, dti + i * T, ad->time_ids, T);
    for (int i0 = 0; i0 < n && !rc; i0 += bs) {
        int m = n - i0 < bs ? n - i0 : bs;
        rc = spo_dev_upload(g->dev, dx, x + (size_t)i0 * lat, (size_t)m * lat);
        for (int i = 0; i < m && !rc; i++)
            rc = spo_dev_upload(g->dev, dctx + (size_t)i * ctx, g->cond + (size_t)ctx_of[i0 + i] * ctx, ctx);
        for (int i = 0; i < m && E && !rc; i++)
            rc = spo_dev_upload(g->dev, dte + (size_t)i * E, ad->pooled + (size_t)ctx_of[i0 + i] * E, E);
        if (!rc) rc = spo_dev_upload(g->dev, dt, ht, (size_t)m);
        if (!rc) rc = spo_unet_forward_added(g->unet, dout, dx, dt, dctx, dte, dti, m, h, w, g->L, 0);
        if (!rc) rc = spo_dev_download(g->dev, eps + (size_t)i0 * lat, dout, (size_t)m * lat);
    }
    spo_dev_free(g->dev, dx), spo_dev_free(g->dev, dout), spo_dev_free(g->dev, dctx), spo_dev_free(g->dev, dt);
    if (dte) spo_dev_free(g->dev, dte);
    if (dti) spo_dev_free(g->dev, dti);
    free(ht);
    return rc;
}

int spo_gen_denoise(spo_gen *g, const spo_gen_opts *o, int first, int m, float *x)
{
    int rc = check_run(g, o, first, m);
    if (rc) return rc;
    if (o->batch < 1) return spo_err(SPO_EINVAL, "batch must be at least 1");
    int h = o->h ? o->h : g->sh, w = o->w ? o->w : g->sw;
    size_t lat = (size_t)g->C * h * w;
    spo_sampler *s = calloc(1, sizeof *s); /* holds a scheduler: too big for the stack */
    int *ctx_of = malloc((size_t)m * sizeof *ctx_of);
    float *t = malloc((size_t)m * sizeof *t), *eps = malloc((size_t)m * lat * sizeof *eps);
    float *mu = malloc(lat * sizeof *mu), *z = malloc(lat * sizeof *z);
    if (!s || !ctx_of || !t || !eps || !mu || !z) rc = spo_err(SPO_EIO, "out of memory");
    if (!rc) {
        s->unet = g->unet, s->dev = g->dev, s->sched = g->sched;
        s->guidance = o->guidance, s->eta = o->eta, s->batch = o->batch;
        s->L = g->L, s->D = g->D, s->uncond = g->uncond;
        if (g->E) { /* SDXL: original = target = the image size, crop (0, 0) */
            int f = spo_vae_factor(g->vae);
            spo_time_size ts = spo_time_size_default(h * f, w * f);
            s->add = (spo_added){.E = g->E, .pooled = g->pooled, .uncond_pooled = g->uncond_pooled};
            spo_time_ids(s->add.time_ids, &ts);
        }
        rc = spo_ddim_set_steps(&s->sched, o->steps);
    }
    for (int i = 0; i < m && !rc; i++) ctx_of[i] = (first + i) / o->per_prompt;
    for (int step = 0; step < o->steps && !rc; step++) {
        int tt = s->sched.timesteps[step], prev = spo_ddim_prev(&s->sched, tt);
        for (int i = 0; i < m; i++) t[i] = (float)tt;
        if (o->guidance > 1.0f) rc = spo_guided_eps(s, x, t, g->cond, ctx_of, m, h, w, eps);
        else rc = cond_eps(g, x, (float)tt, ctx_of, m, h, w, o->batch, &s->add, eps);
        for (int i = 0; i < m && !rc; i++) {
            float sigma, *xi = x + (size_t)i * lat;
            int k = first + i;
            spo_ddim_mean(&s->sched, tt, prev, o->eta, xi, eps + (size_t)i * lat, NULL, mu, &sigma, lat);
            if (sigma > 0) { /* the scheduler's variance noise, only when eta > 0 */
                spo_normal_fill(z, lat, o->seed, g->pid[k / o->per_prompt], (uint32_t)step,
                                (uint32_t)(k % o->per_prompt));
                spo_ddim_add_noise(xi, mu, sigma, z, lat);
            } else memcpy(xi, mu, lat * sizeof *xi);
        }
        if (!rc && o->progress) o->progress(o->ctx, step + 1, o->steps);
    }
    free(s), free(ctx_of), free(t), free(eps), free(mu), free(z);
    return rc;
}

int spo_gen_decode(spo_gen *g, const float *x, int m, int h, int w, float *img)
{
    int rc = spo_gen_check_latent(g, h, w);
    return rc ? rc : spo_vae_decode(g->vae, img, x, m, h, w);
}

int spo_gen_run(spo_gen *g, const spo_gen_opts *o, int first, int m, float *x, float *img)
{
    int rc = spo_gen_denoise(g, o, first, m, x);
    if (rc) return rc;
    return spo_gen_decode(g, x, m, o->h ? o->h : g->sh, o->w ? o->w : g->sw, img);
}

void spo_gen_to_unit(const float *img, int H, int W, float *out)
{
    size_t hw = (size_t)H * W;
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < hw; i++) {
            float v = img[c * hw + i] / 2.0f + 0.5f;
            out[i * 3 + c] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v; /* NaN stays NaN, as torch.clamp */
        }
}
