/* lora_export.c — LoRA to diffusers / kohya safetensors, and a LoRA read
 * from elsewhere into the UNet's target order (see lora_export.h). */
#include "nn/lora_export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

/* "lora_unet_" + module with '_' for '.' + suffix, or "unet." + module + suffix */
static char *key(spo_lora_st_format fmt, const char *mod, const char *suffix)
{
    size_t n = strlen(mod) + strlen(suffix) + 16;
    char *k = malloc(n);
    if (!k) return NULL;
    snprintf(k, n, "%s%s%s", fmt == SPO_LORA_KOHYA ? "lora_unet_" : "unet.", mod, suffix);
    if (fmt == SPO_LORA_KOHYA)
        for (char *p = k + 10; *p && p < k + 10 + strlen(mod); p++)
            if (*p == '.') *p = '_';
    return k;
}

int spo_lora_save_st(const spo_lora *l, spo_lora_st_format fmt, const char *path)
{
    static const char *sfx[2][3] = {{".lora.down.weight", ".lora.up.weight", NULL},
                                    {".lora_down.weight", ".lora_up.weight", ".alpha"}};
    const int kohya = fmt == SPO_LORA_KOHYA;
    /* diffusers stores no alpha: fold alpha / r into B so the file means the same */
    const float s = kohya ? 1.0f : l->alpha / (float)l->rank;
    spo_st_writer *w;
    int rc = spo_st_writer_new(&w);
    if (rc) return rc;
    float *alpha = calloc((size_t)l->n + 1, sizeof *alpha), **up = calloc((size_t)l->n + 1, sizeof *up);
    char **keys = calloc((size_t)l->n * 3 + 1, sizeof *keys);
    if (!alpha || !up || !keys) rc = spo_err(SPO_EIO, "out of memory");
    if (!rc) rc = spo_st_writer_meta(w, "format", "pt");
    if (!rc && kohya) {
        char v[32];
        snprintf(v, sizeof v, "%d", l->rank);
        rc = spo_st_writer_meta(w, "ss_network_dim", v);
        snprintf(v, sizeof v, "%g", (double)l->alpha);
        if (!rc) rc = spo_st_writer_meta(w, "ss_network_alpha", v);
        if (!rc) rc = spo_st_writer_meta(w, "ss_network_module", "networks.lora");
    }
    for (int i = 0; i < l->n && !rc; i++) {
        const spo_lora_module *m = &l->m[i];
        const float *b = m->up;
        if (s != 1.0f) {
            size_t nb = (size_t)m->out * l->rank;
            if (!(up[i] = malloc(nb * sizeof *up[i]))) {
                rc = spo_err(SPO_EIO, "out of memory");
                break;
            }
            for (size_t k = 0; k < nb; k++) up[i][k] = s * m->up[k];
            b = up[i];
        }
        alpha[i] = l->alpha;
        int64_t sd[2] = {l->rank, m->in}, su[2] = {m->out, l->rank};
        for (int j = 0; j < 3 && sfx[kohya][j] && !rc; j++) {
            char *k = keys[3 * i + j] = key(fmt, m->name, sfx[kohya][j]);
            if (!k) rc = spo_err(SPO_EIO, "out of memory");
            else if (j == 0) rc = spo_st_writer_add(w, k, SPO_ST_F32, 2, sd, m->down);
            else if (j == 1) rc = spo_st_writer_add(w, k, SPO_ST_F32, 2, su, b);
            else rc = spo_st_writer_add(w, k, SPO_ST_F32, 0, NULL, &alpha[i]);
        }
    }
    if (!rc) rc = spo_st_writer_write(w, path);
    spo_st_writer_free(w);
    for (int i = 0; keys && i < 3 * l->n; i++) free(keys[i]);
    for (int i = 0; up && i < l->n; i++) free(up[i]);
    free(keys), free(up), free(alpha);
    return rc;
}

int spo_lora_adopt(spo_lora *out, spo_lora *in, spo_unet *u, const char *src)
{
    int rc = spo_lora_targets(out, u);
    if (rc) return rc;
    for (int i = 0; i < out->n && !rc; i++) {
        spo_lora_module *t = &out->m[i], *m = NULL;
        for (int j = 0; j < in->n && !m; j++)
            if (in->m[j].name && !strcmp(in->m[j].name, t->name)) m = &in->m[j];
        if (!m)
            rc = spo_err(SPO_EINVAL, "%s: no LoRA for '%s' (training needs every to_q, to_k, to_v and to_out.0)", src,
                         t->name);
        else if (m->in != t->in || m->out != t->out)
            rc = spo_err(SPO_EINVAL, "%s: LoRA module '%s' is %dx%d, the UNet's layer is %dx%d", src, t->name, m->out,
                         m->in, t->out, t->in);
        else {
            t->down = m->down, t->up = m->up;
            m->down = m->up = NULL;
            free(m->name);
            m->name = NULL; /* taken */
        }
    }
    for (int j = 0; j < in->n && !rc; j++)
        if (in->m[j].name)
            rc = spo_err(SPO_EINVAL, "%s: '%s' is not an attention projection spo trains (to_q, to_k, to_v, to_out.0)",
                         src, in->m[j].name);
    if (rc) {
        spo_lora_free(out);
        return rc;
    }
    out->rank = in->rank, out->alpha = in->alpha, out->step = in->step;
    memcpy(out->lora_id, in->lora_id, sizeof out->lora_id);
    memcpy(out->model_id, in->model_id, sizeof out->model_id);
    spo_lora_free(in);
    return SPO_OK;
}
