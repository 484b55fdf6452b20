/* params.c — name-table parameters in one buffer (see params.h). */
#include "nn/params.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "core/philox.h"
#include "ckpt/safetensors.h"

void spo_params_init(spo_params *ps) { memset(ps, 0, sizeof *ps); }

void spo_params_free(spo_params *ps)
{
    for (int i = 0; i < ps->n; i++) {
        free(ps->p[i].name);
        free(ps->p[i].alias);
    }
    free(ps->p);
    for (int i = 0; i < ps->nignore; i++) free(ps->ignore[i]);
    free(ps->ignore);
    if (ps->buf && ps->dev) spo_dev_free(ps->dev, ps->buf);
    memset(ps, 0, sizeof *ps);
}

int spo_params_add(spo_params *ps, float **slot, const char *name, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    if (ps->buf) return spo_err(SPO_EINVAL, "params: add '%s' after alloc", name);
    spo_param *p = spo_grow(ps->p, &ps->cap, (size_t)ps->n + 1, sizeof *p, 256);
    if (!p) return SPO_EIO;
    ps->p = p;
    spo_param *e = &ps->p[ps->n];
    memset(e, 0, sizeof *e);
    int64_t d[4] = {d0, d1, d2, d3};
    e->numel = 1;
    for (int i = 0; i < 4 && d[i] > 0; i++) {
        if ((uint64_t)d[i] > SPO_PARAMS_MAX_FLOATS / e->numel)
            return spo_err(SPO_EINVAL, "the config declares '%s' with more than %llu elements", name,
                           (unsigned long long)SPO_PARAMS_MAX_FLOATS);
        e->shape[e->ndim++] = d[i];
        e->numel *= (size_t)d[i];
    }
    if (ps->total + e->numel + 15 > SPO_PARAMS_MAX_FLOATS)
        return spo_err(SPO_EINVAL, "the config declares more than %llu parameters (at '%s')",
                       (unsigned long long)SPO_PARAMS_MAX_FLOATS, name);
    e->name = strdup(name);
    if (!e->name) return spo_err(SPO_EIO, "out of memory");
    e->slot = slot;
    e->offset = ps->total;
    ps->total += (e->numel + 15) & ~(size_t)15; /* 64-byte aligned entries */
    ps->n++;
    return SPO_OK;
}

int spo_params_addf(spo_params *ps, float **slot, int64_t d0, int64_t d1, int64_t d2, int64_t d3, const char *fmt,
                    ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return spo_params_add(ps, slot, name, d0, d1, d2, d3);
}

const spo_param *spo_params_find(const spo_params *ps, const char *name)
{
    for (int i = 0; i < ps->n; i++)
        if (!strcmp(ps->p[i].name, name)) return &ps->p[i];
    return NULL;
}

int spo_params_alias(spo_params *ps, const char *name, const char *alias)
{
    spo_param *e = (spo_param *)spo_params_find(ps, name);
    if (!e) return spo_err(SPO_EINVAL, "params: alias for undeclared '%s'", name);
    free(e->alias);
    e->alias = strdup(alias);
    if (!e->alias) return spo_err(SPO_EIO, "out of memory");
    return SPO_OK;
}

int spo_params_unit_dims(spo_params *ps, const char *name)
{
    spo_param *e = (spo_param *)spo_params_find(ps, name);
    if (!e) return spo_err(SPO_EINVAL, "params: unit_dims for undeclared '%s'", name);
    e->unit_dims = 1;
    return SPO_OK;
}

int spo_params_ignore(spo_params *ps, const char *prefix)
{
    char **g = realloc(ps->ignore, (ps->nignore + 1) * sizeof *g);
    if (!g) return spo_err(SPO_EIO, "out of memory");
    ps->ignore = g;
    if (!(g[ps->nignore] = strdup(prefix))) return spo_err(SPO_EIO, "out of memory");
    ps->nignore++;
    return SPO_OK;
}

/* Does the file shape s (nd dims) fit entry e? */
static int shape_fits(const spo_param *e, int nd, const int64_t *s)
{
    if (nd < e->ndim || (nd > e->ndim && !e->unit_dims)) return 0;
    for (int k = 0; k < nd; k++)
        if (s[k] != (k < e->ndim ? e->shape[k] : 1)) return 0;
    return 1;
}

int spo_params_alloc(spo_params *ps, spo_dev *dev)
{
    ps->dev = dev;
    ps->buf = spo_dev_alloc(dev, ps->total ? ps->total : 1);
    if (!ps->buf) return SPO_EIO;
    for (int i = 0; i < ps->n; i++)
        if (ps->p[i].slot) *ps->p[i].slot = ps->buf + ps->p[i].offset;
    return SPO_OK;
}

static void shape_str(char *b, size_t n, int nd, const int64_t *s)
{
    size_t k = (size_t)snprintf(b, n, "[");
    for (int i = 0; i < nd && k < n; i++) k += (size_t)snprintf(b + k, n - k, "%s%lld", i ? "," : "", (long long)s[i]);
    if (k < n) snprintf(b + k, n - k, "]");
}

/* a safetensors file as a spo_tensor_src */
static int st_info(void *ctx, int i, const char **name, int *ndim, const int64_t **shape)
{
    const spo_st_tensor *t = spo_st_get(ctx, i);
    *name = t->name;
    *ndim = t->ndim;
    *shape = t->shape;
    return SPO_OK;
}

static int st_read(void *ctx, int i, float *dst) { return spo_st_read_f32(ctx, spo_st_get(ctx, i), dst); }

spo_tensor_src spo_tensor_src_st(spo_st *st, const char *label)
{
    return (spo_tensor_src){label, st, spo_st_count(st), st_info, st_read};
}

static int ignored(const spo_params *ps, const char *name)
{
    for (int g = 0; g < ps->nignore; g++)
        if (!strncmp(name, ps->ignore[g], strlen(ps->ignore[g]))) return 1;
    return 0;
}

/* the entry of ps for a file name (prefix stripped), or -1 */
static int lookup(const spo_params *ps, const char *name)
{
    for (int j = 0; j < ps->n; j++)
        if (!strcmp(ps->p[j].name, name) || (ps->p[j].alias && !strcmp(ps->p[j].alias, name))) return j;
    return -1;
}

/* Match the source's tensors to the tables by name and shape; read: also
 * read each tensor into its table's buffer (else names and shapes only). */
static int match(spo_params *const *tabs, int ntabs, const spo_tensor_src *src, const char *prefix, int allow_extra,
                 int read)
{
    int rc = SPO_OK;
    const char *path = src->label;
    size_t plen = prefix ? strlen(prefix) : 0;
    float *host = NULL;
    size_t host_n = 0;
    char **seen = calloc((size_t)ntabs, sizeof *seen);
    if (!seen) return spo_err(SPO_EIO, "out of memory");
    for (int k = 0; k < ntabs; k++)
        if (!(seen[k] = calloc(tabs[k]->n ? tabs[k]->n : 1, 1))) { rc = spo_err(SPO_EIO, "out of memory"); goto out; }
    for (int i = 0; i < src->count; i++) {
        const char *full, *name;
        int nd;
        const int64_t *shape;
        if ((rc = src->info(src->ctx, i, &full, &nd, &shape))) goto out;
        name = full;
        int skip = 0;
        for (int k = 0; k < ntabs && !skip; k++) skip = ignored(tabs[k], full);
        if (skip) continue;
        if (plen && strncmp(name, prefix, plen) == 0) name += plen;
        int k, j = -1;
        for (k = 0; k < ntabs && j < 0; k++) j = lookup(tabs[k], name);
        if (j < 0) {
            if (allow_extra) continue;
            rc = spo_err(SPO_EINVAL, "%s: unexpected tensor '%s'", path, full);
            goto out;
        }
        spo_params *ps = tabs[--k];
        spo_param *e = &ps->p[j];
        if (seen[k][j]) {
            if (e->alias)
                rc = spo_err(SPO_EINVAL, "%s: tensor '%s' is given twice (as itself and as its alias '%s')", path,
                             e->name, e->alias);
            else
                rc = spo_err(SPO_EINVAL, "%s: tensor '%s' is given twice", path, e->name);
            goto out;
        }
        if (!shape_fits(e, nd, shape)) {
            char a[96], b[96];
            shape_str(a, sizeof a, nd, shape);
            shape_str(b, sizeof b, e->ndim, e->shape);
            rc = spo_err(SPO_EINVAL, "%s: tensor '%s' is %s, expected %s for this config", path, full, a, b);
            goto out;
        }
        seen[k][j] = 1;
        if (!read) continue;
        if (e->numel > host_n) {
            free(host);
            host_n = e->numel;
            host = malloc(host_n * sizeof *host);
            if (!host) { rc = spo_err(SPO_EIO, "out of memory"); goto out; }
        }
        if ((rc = src->read(src->ctx, i, host))) goto out;
        if ((rc = spo_dev_upload(ps->dev, ps->buf + e->offset, host, e->numel))) goto out;
    }
    for (int k = 0; k < ntabs; k++)
        for (int j = 0; j < tabs[k]->n; j++)
            if (!seen[k][j]) {
                const char *pf = prefix ? prefix : "";
                const spo_param *e = &tabs[k]->p[j];
                if (e->alias)
                    rc = spo_err(SPO_EINVAL, "%s: missing tensor '%s%s' (or '%s%s')", path, pf, e->name, pf, e->alias);
                else
                    rc = spo_err(SPO_EINVAL, "%s: missing tensor '%s%s'", path, pf, e->name);
                goto out;
            }
out:
    for (int k = 0; k < ntabs; k++) free(seen[k]);
    free(seen);
    free(host);
    return rc;
}

int spo_params_load_src(spo_params *const *tabs, int ntabs, const spo_tensor_src *src, const char *prefix,
                        int allow_extra)
{
    for (int k = 0; k < ntabs; k++)
        if (!tabs[k]->buf) return spo_err(SPO_EINVAL, "%s: load into a parameter table not allocated", src->label);
    int rc = match(tabs, ntabs, src, prefix, allow_extra, 0); /* every name and shape before any data */
    return rc ? rc : match(tabs, ntabs, src, prefix, allow_extra, 1);
}

int spo_params_check_src(spo_params *const *tabs, int ntabs, const spo_tensor_src *src, const char *prefix,
                         int allow_extra)
{
    return match(tabs, ntabs, src, prefix, allow_extra, 0);
}

/* A safetensors file's tensors against one table: names and shapes first;
 * then dev: allocate the table there; then read (load): the data. */
static int with_file(spo_params *ps, const char *path, const char *prefix, int allow_extra, spo_dev *dev, int load)
{
    spo_st *st;
    SPO_TRY(spo_st_open(&st, path));
    spo_tensor_src src = spo_tensor_src_st(st, path);
    int rc = match(&ps, 1, &src, prefix, allow_extra, 0);
    if (!rc && dev) rc = spo_params_alloc(ps, dev);
    if (!rc && load) rc = ps->buf ? match(&ps, 1, &src, prefix, allow_extra, 1)
                                  : spo_err(SPO_EINVAL, "%s: load into a parameter table not allocated", path);
    spo_st_close(st);
    return rc;
}

int spo_params_load(spo_params *ps, const char *path, const char *prefix, int allow_extra)
{
    return with_file(ps, path, prefix, allow_extra, NULL, 1);
}

int spo_params_alloc_load(spo_params *ps, spo_dev *dev, const char *path, const char *prefix, int allow_extra)
{
    return with_file(ps, path, prefix, allow_extra, dev, 1);
}

void *spo_params_new(const spo_params_kind *k, const void *init, spo_dev *dev, const char *weights, int *rc)
{
    void *m = malloc(k->size);
    if (!m) {
        *rc = spo_err(SPO_EIO, "out of memory");
        return NULL;
    }
    memcpy(m, init, k->size);
    spo_params *ps = (spo_params *)((char *)m + k->ps_at);
    spo_params_init(ps);
    if ((*rc = k->declare(m, ps)) && weights) *rc = spo_err_prefix(*rc, "%s", weights);
    if (!*rc && dev) *rc = weights ? with_file(ps, weights, NULL, 0, dev, 1) : spo_params_alloc(ps, dev);
    if (!*rc) return m;
    k->release(m);
    return NULL;
}

int spo_params_check_file(spo_params *ps, const char *path, const char *prefix, int allow_extra)
{
    return with_file(ps, path, prefix, allow_extra, NULL, 0);
}

int spo_params_randn(spo_params *ps, uint64_t seed, float std)
{
    float *host = NULL;
    size_t cap = 0;
    for (int i = 0; i < ps->n; i++) {
        spo_param *e = &ps->p[i];
        if (e->numel > cap) {
            free(host);
            cap = e->numel;
            host = malloc(cap * sizeof *host);
            if (!host) return spo_err(SPO_EIO, "out of memory");
        }
        spo_normal_fill(host, e->numel, seed, (uint32_t)i, 0xFFFFFFFFu, 0);
        for (size_t k = 0; k < e->numel; k++) host[k] *= std;
        int rc = spo_dev_upload(ps->dev, ps->buf + e->offset, host, e->numel);
        if (rc) { free(host); return rc; }
    }
    free(host);
    return SPO_OK;
}

int spo_params_set(spo_params *ps, const char *name, const float *host, size_t n)
{
    const spo_param *e = spo_params_find(ps, name);
    if (!e) return spo_err(SPO_EINVAL, "no parameter '%s'", name);
    if (n != e->numel) return spo_err(SPO_EINVAL, "parameter '%s' has %zu elements, got %zu", name, e->numel, n);
    return spo_dev_upload(ps->dev, ps->buf + e->offset, host, n);
}
