/* spo-init — the initial state x_T of every prompt of an embeds file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "io/h5io.h"
#include "spo/state.h"
#include "nn/lora.h"
#include "nn/unet.h"

#include "spo-init.opts.h"

/* The fresh LoRA, written into *f (created, not committed: the caller
 * commits it together with the state file). */
static int make_lora(const spo_args *a, const tool_vals *c, spo_h5 **f)
{
    spo_dev *dev;
    spo_unet *u;
    spo_unet_config cfg;
    char path[4096], mid[SPO_ID_MAX] = "";
    *f = NULL;
    snprintf(path, sizeof path, "%s/unet/config.json", a->model);
    int rc = spo_unet_config_load(&cfg, path);
    if (rc) return rc;
    if ((rc = spo_dev_open(&dev, SPO_DEV_CPU, 1))) return rc;
    if ((rc = spo_unet_create(&u, &cfg, NULL))) { /* names and shapes only */
        spo_dev_close(dev);
        return rc;
    }
    if (a->embeds) { /* the model id the loop's files carry */
        spo_h5 *e;
        if (!(rc = spo_h5_open(&e, a->embeds, "embeds", NULL))) {
            rc = spo_h5_get_attr_str(e, NULL, "model_id", mid, sizeof mid);
            spo_h5_close(e);
        }
    }
    spo_lora l = {0};
    if (!rc) rc = spo_lora_new(&l, u, c->rank, (float)c->alpha, a->seed, mid);
    if (!rc && !(rc = spo_h5_create(f, c->lora_out, "lora", a->force)) && (rc = spo_lora_write(*f, &l))) {
        spo_h5_abort(*f);
        *f = NULL;
    }
    spo_lora_free(&l);
    spo_unet_free(u);
    spo_dev_close(dev);
    return rc;
}

/* The state file, written into *out (created, not committed). */
static int make_state(const spo_args *a, const tool_vals *c, spo_h5 **out)
{
    spo_init_opts o;
    *out = NULL;
    int rc = a->model ? spo_init_from_model(&o, a->model, c->steps) : spo_init_defaults(&o, c->steps);
    if (rc) return rc;
    if (c->hw[0]) o.h = c->hw[0], o.w = c->hw[1];
    o.seed = a->seed;
    spo_h5 *e;
    if ((rc = spo_h5_open(&e, a->embeds, "embeds", NULL))) return rc;
    if (!(rc = spo_h5_create(out, a->out, "state/1", a->force)) && (rc = spo_state_init(*out, e, &o))) {
        spo_h5_abort(*out);
        *out = NULL;
    }
    spo_h5_close(e);
    return rc;
}

int main(int argc, char **argv)
{
    tool_vals c;
    spo_args a;
    spo_parse(&tool, argc, argv, &a, &c, sizeof c, NULL);
    if (c.lora_out && !a.model) spo_die(2, "--lora-out needs -m MODEL (the LoRA's shapes come from its UNet)");
    if (!c.lora_out && !a.embeds) spo_die(2, "missing -e/--embeds FILE (try 'spo-init --help')");
    if (!c.lora_out && !a.out) spo_die(2, "missing -o/--output FILE (try 'spo-init --help')");
    if (a.out && !a.embeds) spo_die(2, "missing -e/--embeds FILE (try 'spo-init --help')");
    double t0 = spo_now();
    /* both outputs are built first and committed together, or neither */
    spo_h5 *lf = NULL, *sf = NULL;
    int rc = c.lora_out ? make_lora(&a, &c, &lf) : SPO_OK;
    if (!rc && a.out) rc = make_state(&a, &c, &sf);
    spo_vtime(&a, "work", spo_now() - t0);
    if (rc) spo_h5_abort(lf);
    if (!rc && lf && (rc = spo_h5_commit(lf))) spo_h5_abort(sf);
    else if (!rc && sf && (rc = spo_h5_commit(sf)) && lf && strcmp(c.lora_out, "-")) remove(c.lora_out);
    if (rc) spo_die_lib(rc);
    return spo_finish();
}
