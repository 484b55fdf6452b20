/* lora.c — LoRA targets, creation, files and merging (see lora.h). */
#include "nn/lora.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/philox.h"

static int is_target(const char *name)
{
    static const char *ends[] = {".attn1.to_q.weight", ".attn1.to_k.weight", ".attn1.to_v.weight",
                                 ".attn1.to_out.0.weight", ".attn2.to_q.weight", ".attn2.to_k.weight",
                                 ".attn2.to_v.weight", ".attn2.to_out.0.weight"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
        size_t m = strlen(ends[i]);
        if (n > m && !strcmp(name + n - m, ends[i])) return 1;
    }
    return 0;
}

int spo_lora_targets(spo_lora *l, spo_unet *u)
{
    memset(l, 0, sizeof *l);
    const spo_params *ps = spo_unet_params(u);
    int n = 0;
    for (int i = 0; i < ps->n; i++) n += is_target(ps->p[i].name);
    if (!n) return spo_err(SPO_EINVAL, "the UNet has no attention projections to put a LoRA on");
    l->m = calloc((size_t)n, sizeof *l->m);
    if (!l->m) return spo_err(SPO_EIO, "out of memory");
    for (int i = 0; i < ps->n; i++) {
        const spo_param *e = &ps->p[i];
        if (!is_target(e->name)) continue;
        spo_lora_module *m = &l->m[l->n++];
        size_t len = strlen(e->name) - strlen(".weight");
        m->name = strndup(e->name, len);
        if (!m->name) return spo_err(SPO_EIO, "out of memory");
        m->out = (int)e->shape[0];
        m->in = (int)e->shape[1];
    }
    return SPO_OK;
}

void spo_lora_free(spo_lora *l)
{
    for (int i = 0; l->m && i < l->n; i++) {
        free(l->m[i].name);
        free(l->m[i].down);
        free(l->m[i].up);
    }
    free(l->m);
    memset(l, 0, sizeof *l);
}

static int alloc_mats(spo_lora *l)
{
    for (int i = 0; i < l->n; i++) {
        spo_lora_module *m = &l->m[i];
        m->down = calloc((size_t)l->rank * m->in, sizeof *m->down);
        m->up = calloc((size_t)m->out * l->rank, sizeof *m->up);
        if (!m->down || !m->up) return spo_err(SPO_EIO, "out of memory");
    }
    return SPO_OK;
}

int spo_lora_new(spo_lora *l, spo_unet *u, int rank, float alpha, uint64_t seed, const char *model_id)
{
    if (rank < 1 || rank > 1024) return spo_err(SPO_EINVAL, "LoRA rank %d out of range 1..1024", rank);
    if (!(alpha > 0)) return spo_err(SPO_EINVAL, "LoRA alpha must be positive");
    int rc = spo_lora_targets(l, u);
    if (rc) return rc;
    l->rank = rank;
    l->alpha = alpha;
    snprintf(l->model_id, sizeof l->model_id, "%s", model_id ? model_id : "");
    uint32_t w = spo_uniform_u32(seed, 0xFFFFFFFCu, 0, 0, 0), w2 = spo_uniform_u32(seed, 0xFFFFFFFCu, 0, 0, 1);
    snprintf(l->lora_id, sizeof l->lora_id, "%08x%08x", w, w2);
    if ((rc = alloc_mats(l))) {
        spo_lora_free(l);
        return rc;
    }
    for (int i = 0; i < l->n; i++) {
        spo_lora_module *m = &l->m[i];
        size_t n = (size_t)rank * m->in;
        spo_normal_fill(m->down, n, seed, (uint32_t)i, 0xFFFFFFFCu, 0);
        for (size_t k = 0; k < n; k++) m->down[k] /= (float)rank;
    }
    return SPO_OK;
}

int spo_lora_write(spo_h5 *f, const spo_lora *l)
{
    const char **names = malloc((size_t)l->n * sizeof *names);
    if (!names) return spo_err(SPO_EIO, "out of memory");
    for (int i = 0; i < l->n; i++) names[i] = l->m[i].name;
    int rc = spo_h5_write_strings(f, "/modules", l->n, names);
    free(names);
    for (int i = 0; i < l->n && !rc; i++) {
        const spo_lora_module *m = &l->m[i];
        char p[600];
        int64_t sd[2] = {l->rank, m->in}, su[2] = {m->out, l->rank};
        snprintf(p, sizeof p, "/lora/%s/down", m->name);
        if ((rc = spo_h5_write(f, p, SPO_T_F32, 2, sd, m->down))) break;
        snprintf(p, sizeof p, "/lora/%s/up", m->name);
        rc = spo_h5_write(f, p, SPO_T_F32, 2, su, m->up);
    }
    const spo_h5_attrval at[] = {
        {"lora_id", SPO_ATTR_STR, .s = l->lora_id}, {"model_id", SPO_ATTR_STR, .s = l->model_id},
        {"rank", SPO_ATTR_INT, .i = l->rank},       {"alpha", SPO_ATTR_REAL, .f = l->alpha},
        {"step", SPO_ATTR_INT, .i = l->step},       {NULL},
    };
    return rc ? rc : spo_h5_attrs(f, NULL, at);
}

int spo_lora_read(spo_lora *l, const spo_h5 *f)
{
    memset(l, 0, sizeof *l);
    char **names = NULL;
    int64_t n = 0, rank = 0;
    double alpha = 0;
    int rc = spo_h5_read_strings(f, "/modules", &names, &n);
    if (!rc) rc = spo_h5_get_attr_int(f, NULL, "rank", &rank);
    if (!rc) rc = spo_h5_get_attr_float(f, NULL, "alpha", &alpha);
    if (!rc) rc = spo_h5_get_attr_int(f, NULL, "step", &l->step);
    if (!rc) rc = spo_h5_get_attr_str(f, NULL, "lora_id", l->lora_id, sizeof l->lora_id);
    if (!rc) rc = spo_h5_get_attr_str(f, NULL, "model_id", l->model_id, sizeof l->model_id);
    if (!rc && (rank < 1 || rank > 1024 || !(alpha > 0) || n < 1 || n > 100000))
        rc = spo_err(SPO_EINVAL, "%s: bad LoRA rank, alpha or module count", spo_h5_path(f));
    if (!rc && !(l->m = calloc((size_t)n, sizeof *l->m))) rc = spo_err(SPO_EIO, "out of memory");
    l->rank = (int)rank;
    l->alpha = (float)alpha;
    for (int64_t i = 0; i < n && !rc; i++) {
        spo_lora_module *m = &l->m[l->n++];
        m->name = strdup(names[i]);
        char p[600];
        spo_dsinfo di, ui;
        snprintf(p, sizeof p, "/lora/%s/down", names[i]);
        if ((rc = spo_h5_info(f, p, &di))) break;
        snprintf(p, sizeof p, "/lora/%s/up", names[i]);
        if ((rc = spo_h5_info(f, p, &ui))) break;
        if (di.ndim != 2 || ui.ndim != 2 || di.shape[0] != rank || ui.shape[1] != rank) {
            rc = spo_err(SPO_EINVAL, "%s: module %s: down/up shapes do not match rank %lld", spo_h5_path(f), names[i],
                         (long long)rank);
            break;
        }
        m->in = (int)di.shape[1];
        m->out = (int)ui.shape[0];
        m->down = malloc((size_t)rank * m->in * sizeof *m->down);
        m->up = malloc((size_t)m->out * rank * sizeof *m->up);
        if (!m->name || !m->down || !m->up) {
            rc = spo_err(SPO_EIO, "out of memory");
            break;
        }
        snprintf(p, sizeof p, "/lora/%s/down", names[i]);
        if ((rc = spo_h5_read_f32(f, p, m->down, (size_t)rank * m->in))) break;
        snprintf(p, sizeof p, "/lora/%s/up", names[i]);
        rc = spo_h5_read_f32(f, p, m->up, (size_t)m->out * rank);
    }
    spo_strings_free(names, n);
    if (rc) spo_lora_free(l);
    return rc;
}

int spo_lora_check(const spo_lora *l, spo_unet *u)
{
    spo_lora t;
    int rc = spo_lora_targets(&t, u);
    if (rc) return rc;
    if (t.n != l->n) rc = spo_err(SPO_EINVAL, "the LoRA has %d modules, this UNet has %d attention projections", l->n, t.n);
    for (int i = 0; i < t.n && !rc; i++) {
        const spo_lora_module *a = &l->m[i], *b = &t.m[i];
        if (strcmp(a->name, b->name))
            rc = spo_err(SPO_EINVAL, "LoRA module %d is '%s', the UNet's is '%s'", i, a->name, b->name);
        else if (a->in != b->in || a->out != b->out)
            rc = spo_err(SPO_EINVAL, "LoRA module '%s' is %dx%d, the UNet's layer is %dx%d", a->name, a->out, a->in,
                         b->out, b->in);
    }
    spo_lora_free(&t);
    return rc;
}

int spo_lora_merge(const spo_lora *l, spo_unet *u, float sign)
{
    spo_params *ps = spo_unet_params(u);
    float s = sign * l->alpha / (float)l->rank;
    int rc = SPO_OK;
    float *w = NULL;
    size_t cap = 0;
    for (int i = 0; i < l->n && !rc; i++) {
        const spo_lora_module *m = &l->m[i];
        char name[600];
        snprintf(name, sizeof name, "%s.weight", m->name);
        const spo_param *e = spo_params_find(ps, name);
        if (!e || e->numel != (size_t)m->in * m->out) {
            rc = spo_err(SPO_EINVAL, "the UNet has no %dx%d layer '%s'", m->out, m->in, name);
            break;
        }
        if (e->numel > cap) {
            free(w);
            cap = e->numel;
            if (!(w = malloc(cap * sizeof *w))) {
                rc = spo_err(SPO_EIO, "out of memory");
                break;
            }
        }
        if ((rc = spo_dev_download(ps->dev, w, ps->buf + e->offset, e->numel))) break;
        for (int o = 0; o < m->out; o++) {
            float *row = w + (size_t)o * m->in;
            for (int r = 0; r < l->rank; r++) {
                float b = s * m->up[(size_t)o * l->rank + r];
                if (b == 0.0f) continue;
                const float *a = m->down + (size_t)r * m->in;
                for (int k = 0; k < m->in; k++) row[k] += b * a[k];
            }
        }
        rc = spo_dev_upload(ps->dev, ps->buf + e->offset, w, e->numel);
    }
    free(w);
    return rc;
}

int spo_lora_tag_of(const spo_lora *l, char *buf, size_t n) { return spo_lora_tag(buf, n, l->lora_id, l->step); }

int spo_lora_step(const char *lora_id, int64_t *step)
{
    if (!strcmp(lora_id, "none")) {
        *step = 0;
        return SPO_OK;
    }
    const char *at = strrchr(lora_id, '@');
    char *end;
    if (at && at > lora_id && at[1] >= '0' && at[1] <= '9') {
        errno = 0;
        long long v = strtoll(at + 1, &end, 10);
        if (!*end && !errno && v >= 0) {
            *step = v;
            return SPO_OK;
        }
    }
    return spo_err(SPO_EINVAL, "lora_id '%s' names no optimizer step (expected 'none' or 'ID@STEP')", lora_id);
}

int spo_lora_tag(char *buf, size_t n, const char *id, int64_t step)
{
    if (!*id || !strcmp(id, "none") || strchr(id, '@') || step < 0)
        return spo_err(SPO_EINVAL, "invalid LoRA id '%s' or step %" PRId64, id, step);
    int k = snprintf(buf, n, "%s@%" PRId64, id, step);
    return k >= 0 && (size_t)k < n ? SPO_OK : spo_err(SPO_EINVAL, "LoRA id '%s' too long", id);
}
