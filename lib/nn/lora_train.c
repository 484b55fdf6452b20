/* lora_train.c — a LoRA attached unmerged to a UNet (see lora_train.h). */
#include "nn/lora_train.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"

struct spo_lora_train {
    spo_unet *u;
    spo_dev *dev;
    int n, nmod;          /* attached, allocated */
    char **names;
    int *in, *out;
    size_t numel;
    float *w, *g;          /* device: matrices and gradients, flat */
    spo_unet_lora *slot;   /* one per module */
};

size_t spo_lora_numel(const spo_lora *l)
{
    size_t n = 0;
    for (int i = 0; i < l->n; i++) n += (size_t)l->rank * (l->m[i].in + l->m[i].out);
    return n;
}

void spo_lora_pack(const spo_lora *l, float *flat)
{
    for (int i = 0; i < l->n; i++) {
        size_t na = (size_t)l->rank * l->m[i].in, nb = (size_t)l->rank * l->m[i].out;
        memcpy(flat, l->m[i].down, na * sizeof *flat), flat += na;
        memcpy(flat, l->m[i].up, nb * sizeof *flat), flat += nb;
    }
}

void spo_lora_unpack(spo_lora *l, const float *flat)
{
    for (int i = 0; i < l->n; i++) {
        size_t na = (size_t)l->rank * l->m[i].in, nb = (size_t)l->rank * l->m[i].out;
        memcpy(l->m[i].down, flat, na * sizeof *flat), flat += na;
        memcpy(l->m[i].up, flat, nb * sizeof *flat), flat += nb;
    }
}

void spo_lora_train_free(spo_lora_train *t)
{
    if (!t) return;
    for (int i = 0; i < t->n; i++) spo_unet_lora_attach(t->u, t->names[i], NULL, t->in[i], t->out[i]);
    for (int i = 0; t->names && i < t->nmod; i++) free(t->names[i]);
    if (t->w) spo_dev_free(t->dev, t->w);
    if (t->g) spo_dev_free(t->dev, t->g);
    free(t->names), free(t->in), free(t->out), free(t->slot), free(t);
}

int spo_lora_train_new(spo_lora_train **tp, spo_unet *u, const spo_lora *l)
{
    *tp = NULL;
    spo_params *ps = spo_unet_params(u);
    spo_lora_train *t = calloc(1, sizeof *t);
    if (!t) return spo_err(SPO_EIO, "out of memory");
    t->u = u, t->dev = ps->dev, t->numel = spo_lora_numel(l);
    t->names = calloc((size_t)l->n, sizeof *t->names), t->nmod = l->n;
    t->in = calloc((size_t)l->n, sizeof *t->in), t->out = calloc((size_t)l->n, sizeof *t->out);
    t->slot = calloc((size_t)l->n, sizeof *t->slot);
    float *host = malloc(t->numel * sizeof *host);
    int rc = (!t->names || !t->in || !t->out || !t->slot || !host) ? spo_err(SPO_EIO, "out of memory") : SPO_OK;
    if (!rc && (!(t->w = spo_dev_alloc(t->dev, t->numel)) || !(t->g = spo_dev_alloc(t->dev, t->numel))))
        rc = SPO_EIO;
    if (!rc) spo_lora_pack(l, host), rc = spo_dev_upload(t->dev, t->w, host, t->numel);
    size_t off = 0;
    for (int i = 0; i < l->n && !rc; i++) {
        const spo_lora_module *m = &l->m[i];
        size_t na = (size_t)l->rank * m->in;
        spo_unet_lora *s = &t->slot[i];
        s->a = t->w + off, s->da = t->g + off;
        s->b = t->w + off + na, s->db = t->g + off + na;
        s->r = l->rank, s->scale = l->alpha / (float)l->rank;
        off += na + (size_t)l->rank * m->out;
        t->in[i] = m->in, t->out[i] = m->out;
        if (!(t->names[i] = strdup(m->name))) rc = spo_err(SPO_EIO, "out of memory");
        if (!rc) rc = spo_unet_lora_attach(u, m->name, s, m->in, m->out);
        t->n = i + !rc; /* detach on free only what was attached */
    }
    free(host);
    if (rc) {
        spo_lora_train_free(t);
        return rc;
    }
    spo_unet_lora_enable(u, 1);
    *tp = t;
    return SPO_OK;
}

size_t spo_lora_train_numel(const spo_lora_train *t) { return t->numel; }
int spo_lora_train_set(spo_lora_train *t, const float *flat) { return spo_dev_upload(t->dev, t->w, flat, t->numel); }
int spo_lora_train_zero_grad(spo_lora_train *t) { return spo_dev_zero(t->dev, t->g, t->numel); }
int spo_lora_train_grad(spo_lora_train *t, float *flat) { return spo_dev_download(t->dev, flat, t->g, t->numel); }
