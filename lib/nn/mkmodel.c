/* mkmodel.c — random diffusers-layout models (see mkmodel.h). */
#include "nn/mkmodel_impl.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/atomic.h"
#include "nn/clip_text.h"
#include "io/jsoncfg.h"
#include "nn/params.h"
#include "core/philox.h"
#include "ckpt/ptbin_write.h"
#include "nn/spm.h"
#include "text/tokenizer.h"
#include "nn/unet.h"
#include "nn/vae.h"

/* buf = dir + "/" + sub; the length was checked once in spo_mkmodel */
static char *join(char *buf, size_t n, const char *dir, const char *sub)
{
    if ((size_t)snprintf(buf, n, "%s/%s", dir, sub) >= n) buf[0] = 0;
    return buf;
}

/* ---- files -------------------------------------------------------------------- */
static int write_text(const char *dir, const char *name, const char *text)
{
    char p[2 * PATH_MAX];
    join(p, sizeof p, dir, name);
    FILE *f = fopen(p, "w");
    if (!f) return spo_err(SPO_EIO, "%s: %s", p, strerror(errno));
    int bad = fputs(text, f) < 0;
    bad |= fclose(f) != 0;
    return bad ? spo_err(SPO_EIO, "%s: write error", p) : SPO_OK;
}

/* A component's config.json (dir/name) written from text, and parsed for
 * the model's own config reader: the file and the model agree. */
static int write_config(const char *dir, const char *name, const char *text, cJSON **j)
{
    int rc = write_text(dir, name, text);
    return rc ? rc : spo_cfg_parse(j, text, strlen(text), name);
}

static int make_dir(const char *dir, const char *sub)
{
    char p[2 * PATH_MAX];
    join(p, sizeof p, dir, sub);
    if (mkdir(p, 0755) != 0 && errno != EEXIST) return spo_err(SPO_EIO, "%s: %s", p, strerror(errno));
    return SPO_OK;
}

/* ---- initialisation ------------------------------------------------------------- */
static int ends_with(const char *s, const char *t)
{
    size_t n = strlen(s), m = strlen(t);
    return n >= m && !strcmp(s + n - m, t);
}

/* One tensor's initial values (see mkmodel.h). */
static void init_tensor(const spo_param *e, float *v, uint64_t seed, uint32_t stream)
{
    size_t n = e->numel;
    if (!strcmp(e->name, "logit_scale")) {
        v[0] = logf(100.0f);
        return;
    }
    int norm = strstr(e->name, "norm") || strstr(e->name, "layrnorm");
    if (e->ndim == 1 && norm && ends_with(e->name, ".weight")) {
        for (size_t i = 0; i < n; i++) v[i] = 1.0f;
        return;
    }
    if (e->ndim <= 1 && !strstr(e->name, "class_embedding")) {
        memset(v, 0, n * sizeof *v);
        return;
    }
    float std = strstr(e->name, "embedding") ? 0.02f : 1.0f / sqrtf((float)(n / (size_t)e->shape[0]));
    spo_normal_fill(v, n, seed, stream, 0xFFFFFFFDu, 0);
    for (size_t i = 0; i < n; i++) v[i] *= std;
}

/* Fill a parameter table with values seeded by o->seed on the host and
 * write it in o->dtype as one safetensors file dir/name, or as a PyTorch
 * checkpoint (torch.save's format) when the name ends in .bin (names
 * prefixed). stream0 keeps tables' streams apart. */
static int write_params(const spo_params *ps, const char *dir, const char *name, const char *prefix,
                        const spo_mkmodel_opts *o, uint32_t stream0)
{
    char path[2 * PATH_MAX];
    join(path, sizeof path, dir, name);
    const spo_st_dtype dt = o->dtype;
    size_t pl = strlen(path);
    int bin = pl > 4 && !strcmp(path + pl - 4, ".bin");
    spo_pt_dtype pdt = dt == SPO_ST_F16 ? SPO_PT_F16 : dt == SPO_ST_BF16 ? SPO_PT_BF16 : SPO_PT_F32;
    float *host = malloc((ps->total ? ps->total : 1) * sizeof *host);
    spo_st_writer *w = NULL;
    spo_ptbin_writer *pw = NULL;
    int rc = !host ? spo_err(SPO_EIO, "out of memory (%zu floats)", ps->total)
             : bin ? spo_ptbin_writer_new(&pw)
                   : spo_st_writer_new(&w);
    for (int i = 0; i < ps->n && !rc; i++) {
        const spo_param *e = &ps->p[i];
        float *v = host + e->offset;
        init_tensor(e, v, o->seed, stream0 + (uint32_t)i);
        char name[512];
        snprintf(name, sizeof name, "%s%s", prefix ? prefix : "", e->name);
        rc = bin ? spo_ptbin_writer_add(pw, name, pdt, e->ndim, e->shape, v)
                 : spo_st_writer_add(w, name, dt, e->ndim, e->shape, v);
    }
    if (!rc && !bin) rc = spo_st_writer_meta(w, "format", "pt");
    if (!rc) rc = bin ? spo_ptbin_writer_write(pw, path) : spo_st_writer_write(w, path);
    spo_st_writer_free(w);
    spo_ptbin_writer_free(pw);
    free(host);
    return rc;
}

/* ---- the VAE encoder (spo only needs the decoder; diffusers loads both) ----------- */
#define ADD(...)                                                                                                       \
    do {                                                                                                               \
        if ((rc = spo_params_addf(ps, NULL, __VA_ARGS__))) return rc;                                                  \
    } while (0)

static int enc_resnet(spo_params *ps, const char *pre, int cin, int cout)
{
    int rc;
    ADD(cin, 0, 0, 0, "%snorm1.weight", pre);
    ADD(cin, 0, 0, 0, "%snorm1.bias", pre);
    ADD(cout, cin, 3, 3, "%sconv1.weight", pre);
    ADD(cout, 0, 0, 0, "%sconv1.bias", pre);
    ADD(cout, 0, 0, 0, "%snorm2.weight", pre);
    ADD(cout, 0, 0, 0, "%snorm2.bias", pre);
    ADD(cout, cout, 3, 3, "%sconv2.weight", pre);
    ADD(cout, 0, 0, 0, "%sconv2.bias", pre);
    if (cin != cout) {
        ADD(cout, cin, 1, 1, "%sconv_shortcut.weight", pre);
        ADD(cout, 0, 0, 0, "%sconv_shortcut.bias", pre);
    }
    return SPO_OK;
}

static int vae_encoder_params(spo_params *ps, const spo_vae_config *c)
{
    int rc, cin = c->ch[0];
    char pre[128];
    ADD(c->ch[0], 3, 3, 3, "encoder.conv_in.weight");
    ADD(c->ch[0], 0, 0, 0, "encoder.conv_in.bias");
    for (int i = 0; i < c->nblocks; i++) {
        for (int j = 0; j < c->layers_per_block; j++) {
            snprintf(pre, sizeof pre, "encoder.down_blocks.%d.resnets.%d.", i, j);
            if ((rc = enc_resnet(ps, pre, cin, c->ch[i]))) return rc;
            cin = c->ch[i];
        }
        if (i + 1 < c->nblocks) {
            ADD(cin, cin, 3, 3, "encoder.down_blocks.%d.downsamplers.0.conv.weight", i);
            ADD(cin, 0, 0, 0, "encoder.down_blocks.%d.downsamplers.0.conv.bias", i);
        }
    }
    for (int j = 0; j < 2; j++) {
        snprintf(pre, sizeof pre, "encoder.mid_block.resnets.%d.", j);
        if ((rc = enc_resnet(ps, pre, cin, cin))) return rc;
    }
    ADD(cin, 0, 0, 0, "encoder.mid_block.attentions.0.group_norm.weight");
    ADD(cin, 0, 0, 0, "encoder.mid_block.attentions.0.group_norm.bias");
    static const char *lin[] = {"to_q", "to_k", "to_v", "to_out.0"};
    for (int k = 0; k < 4; k++) {
        ADD(cin, cin, 0, 0, "encoder.mid_block.attentions.0.%s.weight", lin[k]);
        ADD(cin, 0, 0, 0, "encoder.mid_block.attentions.0.%s.bias", lin[k]);
    }
    ADD(cin, 0, 0, 0, "encoder.conv_norm_out.weight");
    ADD(cin, 0, 0, 0, "encoder.conv_norm_out.bias");
    ADD(2 * c->latent_channels, cin, 3, 3, "encoder.conv_out.weight");
    ADD(2 * c->latent_channels, 0, 0, 0, "encoder.conv_out.bias");
    ADD(2 * c->latent_channels, 2 * c->latent_channels, 1, 1, "quant_conv.weight");
    ADD(2 * c->latent_channels, 0, 0, 0, "quant_conv.bias");
    return SPO_OK;
}
#undef ADD

/* Declare entry e (name, shape, 0-d kept 0-d) in dst. */
static int copy_entry(spo_params *dst, const spo_param *e)
{
    int64_t d[4] = {0, 0, 0, 0};
    for (int k = 0; k < e->ndim; k++) d[k] = e->shape[k];
    int rc = spo_params_add(dst, NULL, e->name, d[0], d[1], d[2], d[3]);
    if (!rc) dst->p[dst->n - 1].ndim = e->ndim;
    return rc;
}

/* Append the entries of a, then of b (NULL: none) to dst, the list of a single file. */
static int concat_params(spo_params *dst, const spo_params *a, const spo_params *b)
{
    const spo_params *src[2] = {a, b};
    int rc = SPO_OK;
    for (int s = 0; s < 2; s++)
        for (int i = 0; src[s] && i < src[s]->n && !rc; i++) rc = copy_entry(dst, &src[s]->p[i]);
    return rc;
}

/* ---- components ------------------------------------------------------------------ */
static void say(const spo_mkmodel_opts *o, const char *what)
{
    if (o->progress) o->progress(o->ctx, what);
}

static int mk_unet(const char *dir, const mk_preset_t *p, const spo_mkmodel_opts *o)
{
    spo_unet_config cfg;
    spo_unet *u = NULL;
    int rc = make_dir(dir, "unet");
    if (!rc) rc = write_text(dir, "unet/config.json", p->unet);
    if (!rc) rc = spo_unet_config_parse(&cfg, p->unet);
    if (!rc) rc = spo_unet_create(&u, &cfg, NULL);
    say(o, "unet");
    if (!rc) rc = write_params(spo_unet_params(u), dir, "unet/diffusion_pytorch_model.safetensors", NULL, o, 0);
    spo_unet_free(u);
    return rc;
}

static int mk_vae(const char *dir, const mk_preset_t *p, const spo_mkmodel_opts *o, spo_dev *dev)
{
    int rc = make_dir(dir, "vae");
    /* the decoder's table comes from the loader's own declaration: read the
     * config through a throwaway model with zero weights */
    spo_vae *v = NULL;
    spo_params all; /* the encoder's entries, then the decoder's */
    spo_params_init(&all);
    cJSON *j = NULL;
    spo_vae_config cfg;
    if (!rc) rc = write_config(dir, "vae/config.json", p->vae, &j);
    if (!rc) rc = spo_vae_config_from_json(&cfg, j);
    if (!rc) rc = spo_vae_create(&v, &cfg, dev);
    if (!rc) rc = vae_encoder_params(&all, &cfg);
    if (!rc) rc = concat_params(&all, spo_vae_params(v), NULL);
    say(o, "vae");
    if (!rc) rc = write_params(&all, dir, "vae/diffusion_pytorch_model.safetensors", NULL, o, 1u << 20);
    cJSON_Delete(j);
    spo_params_free(&all);
    spo_vae_free(v);
    return rc;
}

/* A text encoder (config json, in dir/sub) and its byte-level tokenizer
 * (dir/tok, padding with pad; NULL: "<|endoftext|>"); stream keys its weights. */
static int mk_text(const char *dir, const char *json, const char *sub, const char *tok, const char *pad,
                   uint32_t stream, const mk_preset_t *p, const spo_mkmodel_opts *o, spo_dev *dev)
{
    char path[2 * PATH_MAX], file[256];
    int rc = make_dir(dir, sub);
    cJSON *j = NULL;
    spo_clip_text_config cfg;
    spo_clip_text *m = NULL;
    snprintf(file, sizeof file, "%s/config.json", sub);
    if (!rc) rc = write_config(dir, file, json, &j);
    if (!rc) rc = spo_clip_text_config_parse(&cfg, j);
    if (!rc) rc = spo_clip_text_create(&m, &cfg, dev);
    say(o, sub);
    snprintf(file, sizeof file, "%s/model.safetensors", sub);
    if (!rc) rc = write_params(spo_clip_text_params(m), dir, file, NULL, o, stream);
    cJSON_Delete(j);
    spo_clip_text_free(m);
    join(path, sizeof path, dir, tok);
    if (!rc) rc = spo_tok_write_bytelevel_pad(path, p->bos, p->eos, pad);
    return rc;
}

static int mk_spm(const char *dir, const mk_preset_t *p, const spo_mkmodel_opts *o, spo_dev *dev)
{
    char path[2 * PATH_MAX];
    int rc = make_dir(dir, "spm");
    if (!rc) rc = make_dir(dir, "spm/clip");
    cJSON *j = NULL;
    spo_spm_config cfg;
    spo_spm *m = NULL;
    spo_params clip, all;
    spo_params_init(&clip);
    spo_params_init(&all);
    if (!rc) rc = write_config(dir, "spm/clip/config.json", p->spm, &j);
    if (!rc) rc = spo_spm_config_parse(&cfg, j);
    if (!rc) rc = spo_spm_create(&m, &cfg, dev);
    join(path, sizeof path, dir, "spm/clip");
    if (!rc) rc = spo_tok_write_bytelevel_ids(path, p->bos, p->eos);
    if (!rc) rc = concat_params(&all, spo_spm_text_params(m), spo_spm_other_params(m));
    say(o, "spm");
    /* the preference model: every tensor, named and saved as the official
     * checkpoint (a torch.save'd state dict, "model." prefix) */
    if (!rc) rc = write_params(&all, dir, "spm/spm.bin", "model.", o, 3u << 20);
    /* the CLIP directory alone (PickScore's layout): the same values without
     * the time conditioning, which a plain CLIPModel does not have */
    for (int i = 0; i < all.n && !rc; i++) {
        const spo_param *e = &all.p[i];
        if (!strstr(e->name, "t_embedder") && !strstr(e->name, "adaLN_modulation")) rc = copy_entry(&clip, e);
    }
    if (!rc) rc = write_params(&clip, dir, "spm/clip/model.safetensors", NULL, o, 4u << 20);
    cJSON_Delete(j);
    spo_params_free(&clip);
    spo_params_free(&all);
    spo_spm_free(m);
    return rc;
}

int spo_mkmodel(const char *dir, const spo_mkmodel_opts *o)
{
    mk_preset_t p;
    int rc = spo_mk_preset(&p, o->preset);
    if (rc) return rc;
    if (o->dtype != SPO_ST_F32 && o->dtype != SPO_ST_F16 && o->dtype != SPO_ST_BF16)
        return spo_err(SPO_EINVAL, "weights dtype must be F32, F16 or BF16");
    struct stat st;
    if (strlen(dir) > PATH_MAX - 128) return spo_err(SPO_EINVAL, "model directory name too long");
    char idx[PATH_MAX];
    snprintf(idx, sizeof idx, "%s/model_index.json", dir);
    if (stat(dir, &st) == 0) {
        if (!o->force) return spo_err(SPO_EINVAL, "%s: exists (use -f to replace a model directory)", dir);
        if (stat(idx, &st) != 0) return spo_err(SPO_EINVAL, "%s: exists and is not a model directory; not replacing", dir);
    }
    spo_atomic out; /* the whole folder is built under a temporary name and renamed at once */
    if ((rc = spo_atomic_open(&out, dir, SPO_ATOMIC_DIR, o->force))) return rc;
    const char *tmp = out.tmp;
    spo_dev *dev = NULL;
    rc = spo_dev_open(&dev, SPO_DEV_CPU, 1);
    if (!rc) rc = write_text(tmp, "model_index.json", p.model_index);
    if (!rc) rc = make_dir(tmp, "scheduler");
    if (!rc) rc = write_text(tmp, "scheduler/scheduler_config.json", p.scheduler);
    if (!rc) rc = mk_text(tmp, p.text, "text_encoder", "tokenizer", NULL, 2u << 20, &p, o, dev);
    /* SDXL's second: CLIPTextModelWithProjection, its tokenizer padding with "!" */
    if (!rc && p.text2) rc = mk_text(tmp, p.text2, "text_encoder_2", "tokenizer_2", "!", 5u << 20, &p, o, dev);
    if (!rc) rc = mk_vae(tmp, &p, o, dev);
    if (!rc) rc = mk_unet(tmp, &p, o);
    if (!rc && o->spm) rc = mk_spm(tmp, &p, o, dev);
    if (dev) spo_dev_close(dev);
    if (rc) spo_atomic_abort(&out);
    else rc = spo_atomic_commit(&out);
    return rc;
}
