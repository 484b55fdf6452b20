/* spo-export — a LoRA to the formats other programs load, and a diffusers
 * LoRA into lora/1 (lib/nn/lora_export.h):
 *
 *   spo-export --lora L.h5 -o pytorch_lora_weights.safetensors          (diffusers)
 *   spo-export --format kohya --lora L.h5 -o spo.safetensors             (webui)
 *   spo-export --format unet -m MODEL --lora L.h5 -o DIR [--dtype f16]   (merged)
 *   spo-export --format lora -m MODEL --lora pytorch_lora_weights.safetensors -o L.h5
 *
 * The input is lora/1, a diffusers or a kohya safetensors LoRA (told by
 * content); the latter two, and --format unet and lora, need -m for the
 * UNet's shapes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"
#include "io/h5io.h"
#include "io/modelid.h"
#include "nn/lora.h"
#include "nn/lora_export.h"
#include "nn/unet.h"

enum { F_DIFFUSERS, F_KOHYA, F_UNET, F_LORA };

#include "spo-export.opts.h"

/* A lora/1 file without a model (names and shapes as stored). */
static int read_lora1(spo_lora *l, const char *path)
{
    spo_h5 *f;
    int rc = spo_h5_open(&f, path, "lora", NULL);
    if (rc) return rc;
    rc = spo_lora_read(l, f);
    spo_h5_close(f);
    return rc;
}

/* The LoRA, checked against MODEL's UNet when -m is given; *u is that UNet
 * (weights loaded only when weights). */
static int load(const spo_args *a, spo_lora *l, spo_unet **u, spo_dev **dev, int weights)
{
    char path[4096], mid[sizeof l->model_id];
    int rc;
    *u = NULL;
    if (!a->model) return read_lora1(l, a->lora);
    snprintf(path, sizeof path, "%s/unet", a->model);
    if (weights) {
        if ((rc = spo_dev_open(dev, SPO_DEV_CPU, 0)) || (rc = spo_unet_load(u, path, *dev))) return rc;
    } else {
        spo_unet_config cfg;
        snprintf(path, sizeof path, "%s/unet/config.json", a->model);
        if ((rc = spo_unet_config_load(&cfg, path)) || (rc = spo_unet_create(u, &cfg, NULL))) return rc;
    }
    if ((rc = spo_model_id(a->model, mid, sizeof mid))) return rc;
    if ((rc = spo_lora_load_any(l, a->lora, *u))) return rc;
    if (l->model_id[0] && strcmp(l->model_id, mid))
        return spo_err(SPO_EINVAL, "%s: the LoRA is for model '%s', %s is '%s'", a->lora, l->model_id, a->model, mid);
    snprintf(l->model_id, sizeof l->model_id, "%s", mid);
    return SPO_OK;
}

static int write_lora1(const spo_args *a, spo_lora *l, spo_unet *u)
{
    spo_lora t;
    int rc = spo_lora_adopt(&t, l, u, a->lora);
    if (rc) return rc;
    spo_h5 *f;
    if (!(rc = spo_h5_create(&f, a->out, "lora", a->force))) {
        rc = spo_lora_write(f, &t);
        rc = rc ? (spo_h5_abort(f), rc) : spo_h5_commit(f);
    }
    spo_lora_free(&t);
    return rc;
}

static int run(const spo_args *a, const tool_vals *c)
{
    spo_lora l = {0};
    spo_unet *u = NULL;
    spo_dev *dev = NULL;
    char cfg[4096], weights[4096];
    int rc = load(a, &l, &u, &dev, c->format == F_UNET);
    if (!rc && c->format == F_LORA) rc = write_lora1(a, &l, u);
    if (!rc && (c->format == F_DIFFUSERS || c->format == F_KOHYA))
        rc = spo_lora_save_st(&l, c->format == F_KOHYA ? SPO_LORA_KOHYA : SPO_LORA_DIFFUSERS, a->out,
                              u ? spo_lora_kohya_sgm(spo_unet_cfg(u)) : NULL);
    if (!rc && c->format == F_UNET) {
        snprintf(cfg, sizeof cfg, "%s/unet/config.json", a->model);
        snprintf(weights, sizeof weights, "%s/unet/diffusion_pytorch_model.safetensors", a->model);
        if (access(weights, R_OK))
            snprintf(weights, sizeof weights, "%s/unet/diffusion_pytorch_model.fp16.safetensors", a->model);
        if (!(rc = spo_lora_merge(&l, u, 1.0f)))
            rc = spo_unet_save_dir(u, cfg, weights, a->out, c->dtype, a->force);
    }
    spo_lora_free(&l);
    if (u) spo_unet_free(u);
    if (dev) spo_dev_close(dev);
    return rc;
}

int main(int argc, char **argv)
{
    tool_vals c;
    spo_args a;
    spo_parse(&tool, argc, argv, &a, &c, sizeof c, NULL);
    if ((c.format == F_UNET || c.format == F_LORA) && !a.model)
        spo_die(2, "--format %s needs -m MODEL", c.format == F_UNET ? "unet" : "lora");
    if (c.format != F_UNET && c.format != F_LORA && !a.force && strcmp(a.out, "-") && access(a.out, F_OK) == 0)
        spo_die(2, "%s exists (use -f to overwrite)", a.out);
    if (c.format != F_LORA && !strcmp(a.out, "-")) spo_die(2, "-o -: only --format lora writes to stdout");
    int rc = run(&a, &c);
    if (rc) spo_die_lib(rc);
    return spo_finish();
}
