/* lora_export.c — LoRA to diffusers / kohya safetensors, and a LoRA read
 * from elsewhere into the UNet's target order (see lora_export.h). */
#include "nn/lora_export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "io/modelid.h"
#include "nn/lora_load.h"

const spo_unet_config *spo_lora_kohya_sgm(const spo_unet_config *c)
{
    return c && c->add_time_dim > 0 ? c : NULL;
}

/* diffusers module name -> SDXL's original (SGM) UNet name (lora_export.h) into out */
static void sgm_name(const spo_unet_config *c, const char *mod, char *out, size_t n)
{
    int i, j, at = 0, base = 0;
    if (sscanf(mod, "down_blocks.%d.attentions.%d.%n", &i, &j, &at) == 2 && at && i >= 0 && i < c->nblocks) {
        for (int k = 0; k < i; k++) base += c->layers[k] + 1;
        snprintf(out, n, "input_blocks.%d.1.%s", 1 + base + j, mod + at);
    } else if (sscanf(mod, "up_blocks.%d.attentions.%d.%n", &i, &j, &at) == 2 && at && i >= 0 && i < c->nblocks) {
        for (int k = 0; k < i; k++) base += c->layers[c->nblocks - 1 - k] + 1;
        snprintf(out, n, "output_blocks.%d.1.%s", base + j, mod + at);
    } else if (!strncmp(mod, "mid_block.attentions.0.", 23)) {
        snprintf(out, n, "middle_block.1.%s", mod + 23);
    } else {
        snprintf(out, n, "%s", mod);
    }
}

/* "lora_unet_" + module with '_' for '.' + suffix (SDXL's module names when
 * sdxl), or "unet." + module + suffix */
static char *key(spo_lora_st_format fmt, const char *module, const char *suffix, const spo_unet_config *sdxl)
{
    char sgm[512];
    const char *mod = module;
    if (fmt == SPO_LORA_KOHYA && sdxl) sgm_name(sdxl, module, sgm, sizeof sgm), mod = sgm;
    size_t n = strlen(mod) + strlen(suffix) + 16;
    char *k = malloc(n);
    if (!k) return NULL;
    snprintf(k, n, "%s%s%s", fmt == SPO_LORA_KOHYA ? "lora_unet_" : "unet.", mod, suffix);
    if (fmt == SPO_LORA_KOHYA)
        for (char *p = k + 10; *p && p < k + 10 + strlen(mod); p++)
            if (*p == '.') *p = '_';
    return k;
}

int spo_lora_save_st(const spo_lora *l, spo_lora_st_format fmt, const char *path, const spo_unet_config *sdxl)
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
            char *k = keys[3 * i + j] = key(fmt, m->name, sfx[kohya][j], sdxl);
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

/* The tensor of st named by the kohya key of (module, suffix), or NULL. */
static const spo_st_tensor *find(const spo_st *st, const char *mod, const char *suffix, const spo_unet_config *sdxl)
{
    char *k = key(SPO_LORA_KOHYA, mod, suffix, sdxl);
    const spo_st_tensor *t = k ? spo_st_find(st, k) : NULL;
    free(k);
    return t;
}

static int kohya_module(spo_lora *l, spo_lora_module *m, const spo_st *st, const char *path, int *used,
                        const spo_unet_config *sdxl)
{
    const spo_st_tensor *d = find(st, m->name, ".lora_down.weight", sdxl),
                        *u = find(st, m->name, ".lora_up.weight", sdxl), *a = find(st, m->name, ".alpha", sdxl);
    if (!d && !u && !a) return SPO_OK; /* not in the file: spo_lora_adopt names it */
    if (!d || !u)
        return spo_err(SPO_EINVAL, "%s: module '%s' has no .lora_%s.weight", path, m->name, d ? "up" : "down");
    *used += 2 + (a != NULL);
    int r = (int)d->shape[0];
    if (d->ndim != 2 || u->ndim != 2 || d->shape[1] != m->in || u->shape[0] != m->out || u->shape[1] != r ||
        (l->rank && r != l->rank) || r < 1 || r > 1024)
        return spo_err(SPO_EINVAL, "%s: %s is [%lld, %lld] and %s [%lld, %lld]; the layer '%s' is %dx%d%s", path,
                       d->name, (long long)d->shape[0], (long long)(d->ndim > 1 ? d->shape[1] : 0), u->name,
                       (long long)u->shape[0], (long long)(u->ndim > 1 ? u->shape[1] : 0), m->name, m->out, m->in,
                       l->rank && r != l->rank ? " (one rank per file)" : "");
    float alpha = (float)r;
    int rc = SPO_OK;
    if (a && (a->numel != 1 || (rc = spo_st_read_f32(st, a, &alpha)) || !(alpha > 0)))
        return rc ? rc : spo_err(SPO_EINVAL, "%s: %s is not one positive number", path, a->name);
    if (l->rank && alpha != l->alpha)
        return spo_err(SPO_EINVAL, "%s: %s is %g, other modules %g (spo keeps one alpha)", path, a->name,
                       (double)alpha, (double)l->alpha);
    l->rank = r, l->alpha = alpha;
    m->down = malloc(d->numel * sizeof *m->down);
    m->up = malloc(u->numel * sizeof *m->up);
    if (!m->down || !m->up) return spo_err(SPO_EIO, "out of memory");
    if ((rc = spo_st_read_f32(st, d, m->down)) || (rc = spo_st_read_f32(st, u, m->up))) return rc;
    return SPO_OK;
}

/* A kohya file: every key lora_unet_<target>.{lora_down.weight, lora_up.weight, alpha}. */
static int read_kohya(spo_lora *out, const spo_st *st, const char *path, spo_unet *u)
{
    spo_lora l;
    int rc = spo_lora_targets(&l, u), used = 0;
    const spo_unet_config *sdxl = spo_lora_kohya_sgm(spo_unet_cfg(u));
    for (int i = 0; i < l.n && !rc; i++) rc = kohya_module(&l, &l.m[i], st, path, &used, sdxl);
    for (int i = 0; i < spo_st_count(st) && !rc && used != spo_st_count(st); i++) {
        const char *k = spo_st_get(st, i)->name;
        const char *dot = strchr(k, '.');
        int ours = 0;
        for (int j = 0; j < l.n && !ours && dot; j++) {
            char *n = key(SPO_LORA_KOHYA, l.m[j].name, "", sdxl);
            ours = n && strlen(n) == (size_t)(dot - k) && !strncmp(n, k, (size_t)(dot - k));
            free(n);
        }
        if (!ours) rc = spo_err(SPO_EINVAL, "%s: %s: not a LoRA on an attention projection spo trains", path, k);
    }
    int n = 0; /* keep the modules the file has; spo_lora_adopt names a missing one */
    for (int i = 0; i < l.n && !rc; i++) {
        if (l.m[i].down) l.m[n++] = l.m[i];
        else free(l.m[i].name);
    }
    if (!rc) l.n = n;
    if (!rc && !n) rc = spo_err(SPO_EINVAL, "%s: holds no LoRA weights", path);
    if (!rc) {
        uint64_t h = SPO_FNV_INIT;
        for (int i = 0; i < l.n; i++) {
            h = spo_fnv1a64(h, l.m[i].name, strlen(l.m[i].name) + 1);
            h = spo_fnv1a64(h, l.m[i].down, (size_t)l.rank * l.m[i].in * sizeof(float));
            h = spo_fnv1a64(h, l.m[i].up, (size_t)l.m[i].out * l.rank * sizeof(float));
        }
        snprintf(l.lora_id, sizeof l.lora_id, "kohya-%016llx", (unsigned long long)h);
        rc = spo_lora_adopt(out, &l, u, path);
    }
    if (rc) spo_lora_free(&l);
    return rc;
}

int spo_lora_load_any(spo_lora *l, const char *path, spo_unet *u)
{
    memset(l, 0, sizeof *l);
    spo_st *st;
    if (strcmp(path, "-") && spo_st_open(&st, path) == SPO_OK) {
        int kohya = spo_st_count(st) > 0 && !strncmp(spo_st_get(st, 0)->name, "lora_unet_", 10);
        int rc = kohya ? read_kohya(l, st, path, u) : SPO_OK;
        spo_st_close(st);
        if (kohya) return rc;
    }
    return spo_lora_load(l, path, u);
}
