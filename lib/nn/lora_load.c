/* lora_load.c — a LoRA from a lora/1 or a diffusers safetensors file (see
 * lora_load.h). */
#include "nn/lora_load.h"
#include "core/infile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "io/h5io.h"
#include "io/modelid.h"
#include "ckpt/safetensors.h"

/* "unet.<module><suffix>" -> module and which matrix (0 down/A, 1 up/B). */
static int split_key(const char *key, char *mod, size_t n, int *which)
{
    static const struct {
        const char *suffix;
        int which;
    } sfx[] = {{".lora.down.weight", 0}, {".lora.up.weight", 1}, {".lora_A.weight", 0}, {".lora_B.weight", 1}};
    if (strncmp(key, "unet.", 5)) return -1;
    size_t len = strlen(key);
    for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
        size_t m = strlen(sfx[i].suffix);
        if (len > 5 + m && !strcmp(key + len - m, sfx[i].suffix) && len - 5 - m < n) {
            memcpy(mod, key + 5, len - 5 - m);
            mod[len - 5 - m] = 0;
            *which = sfx[i].which;
            return 0;
        }
    }
    return -1;
}

/* A tensor's 2-D shape: [a, b] or [a, b, 1, 1] (a 1x1 convolution's LoRA). */
static int mat_shape(const spo_st_tensor *t, int64_t *a, int64_t *b)
{
    if (t->ndim != 2 && !(t->ndim == 4 && t->shape[2] == 1 && t->shape[3] == 1)) return -1;
    *a = t->shape[0], *b = t->shape[1];
    return 0;
}

static spo_lora_module *find_module(spo_lora *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->m[i].name, name)) return &l->m[i];
    return NULL;
}

static int bad_key(const char *path, const char *key)
{
    if (!strncmp(key, "text_encoder", 12))
        return spo_err(SPO_EINVAL, "%s: %s: a text-encoder LoRA is not supported (spo puts LoRA on the UNet only)",
                       path, key);
    return spo_err(SPO_EINVAL, "%s: %s: not a UNet LoRA weight (expected unet.<module>.lora.down.weight or "
                   ".lora.up.weight)", path, key);
}

/* Check key's tensor against the UNet layer and store it into l. */
static int take(spo_lora *l, const spo_st *st, const spo_st_tensor *t, const char *path, spo_unet *u, int *rank)
{
    char mod[512], wname[540];
    int which;
    if (split_key(t->name, mod, sizeof mod, &which)) return bad_key(path, t->name);
    snprintf(wname, sizeof wname, "%s.weight", mod);
    const spo_param *p = spo_params_find(spo_unet_params(u), wname);
    if (!p || !(p->ndim == 2 || (p->ndim == 4 && p->shape[2] == 1 && p->shape[3] == 1)))
        return spo_err(SPO_EINVAL, "%s: %s: the UNet has no linear layer '%s'", path, t->name, mod);
    int out = (int)p->shape[0], in = (int)p->shape[1];
    int64_t a, b;
    if (mat_shape(t, &a, &b)) return spo_err(SPO_EINVAL, "%s: %s: not a matrix", path, t->name);
    int64_t r = which ? b : a, dim = which ? a : b, want = which ? out : in;
    if (dim != want || r < 1 || r > 1024)
        return spo_err(SPO_EINVAL, "%s: %s is [%lld, %lld], the layer '%s' is %dx%d", path, t->name, (long long)a,
                       (long long)b, mod, out, in);
    if (*rank && r != *rank)
        return spo_err(SPO_EINVAL, "%s: %s has rank %lld, other modules %d (one rank per file)", path, t->name,
                       (long long)r, *rank);
    *rank = (int)r;
    spo_lora_module *m = find_module(l, mod);
    if (!m) {
        m = &l->m[l->n++];
        if (!(m->name = strdup(mod))) return spo_err(SPO_EIO, "out of memory");
        m->in = in, m->out = out;
    }
    float **dst = which ? &m->up : &m->down;
    if (*dst) return spo_err(SPO_EINVAL, "%s: %s: module '%s' has this matrix twice", path, t->name, mod);
    if (!(*dst = malloc(t->numel * sizeof **dst))) return spo_err(SPO_EIO, "out of memory");
    return spo_st_read_f32(st, t, *dst);
}

int spo_lora_read_diffusers(spo_lora *l, const char *path, spo_unet *u)
{
    memset(l, 0, sizeof *l);
    spo_st *st;
    int rc = spo_st_open(&st, path);
    if (rc) return rc;
    int n = spo_st_count(st), rank = 0;
    if (n == 0) rc = spo_err(SPO_EINVAL, "%s: holds no LoRA weights", path);
    else if (!(l->m = calloc((size_t)n, sizeof *l->m))) rc = spo_err(SPO_EIO, "out of memory");
    for (int i = 0; i < n && !rc; i++) rc = take(l, st, spo_st_get(st, i), path, u, &rank);
    for (int i = 0; i < l->n && !rc; i++)
        if (!l->m[i].down || !l->m[i].up)
            rc = spo_err(SPO_EINVAL, "%s: unet.%s.lora.%s.weight is missing", path, l->m[i].name,
                         l->m[i].down ? "up" : "down");
    spo_st_close(st);
    if (rc) {
        spo_lora_free(l);
        return rc;
    }
    l->rank = rank;
    l->alpha = (float)rank;
    uint64_t h = SPO_FNV_INIT;
    for (int i = 0; i < l->n; i++) {
        const spo_lora_module *m = &l->m[i];
        h = spo_fnv1a64(h, m->name, strlen(m->name) + 1);
        h = spo_fnv1a64(h, m->down, (size_t)rank * m->in * sizeof *m->down);
        h = spo_fnv1a64(h, m->up, (size_t)m->out * rank * sizeof *m->up);
    }
    snprintf(l->lora_id, sizeof l->lora_id, "st-%016llx", (unsigned long long)h);
    return SPO_OK;
}

static int is_hdf5(const char *path, int *yes)
{
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    unsigned char b[8];
    *yes = 0;
    if (!strcmp(path, "-")) return *yes = 1, SPO_OK; /* only HDF5 streams */
    FILE *fp;
    if (spo_fopen_in(&fp, path)) return spo_err_prefix(SPO_EINVAL, "cannot open the LoRA file");
    *yes = fread(b, 1, 8, fp) == 8 && !memcmp(b, sig, 8);
    fclose(fp);
    return SPO_OK;
}

/* Put l's modules in the order of u's targets (a lora/1 file written
 * elsewhere may list them in another order); the others go last, for
 * spo_lora_check to name. */
static int reorder(spo_lora *l, spo_unet *u)
{
    spo_lora t;
    int rc = spo_lora_targets(&t, u), k = 0;
    if (rc) return rc;
    spo_lora_module *m = malloc((size_t)l->n * sizeof *m);
    char *used = calloc((size_t)l->n, 1);
    if (!m || !used) rc = spo_err(SPO_EIO, "out of memory");
    for (int i = 0; i < t.n && !rc; i++)
        for (int j = 0; j < l->n; j++)
            if (!used[j] && !strcmp(l->m[j].name, t.m[i].name)) {
                m[k++] = l->m[j], used[j] = 1;
                break;
            }
    for (int j = 0; j < l->n && !rc; j++)
        if (!used[j]) m[k++] = l->m[j];
    if (!rc) memcpy(l->m, m, (size_t)l->n * sizeof *m);
    free(m), free(used);
    spo_lora_free(&t);
    return rc;
}

int spo_lora_load(spo_lora *l, const char *path, spo_unet *u)
{
    int h5, rc = is_hdf5(path, &h5);
    memset(l, 0, sizeof *l);
    if (rc) return rc;
    if (!h5) return spo_lora_read_diffusers(l, path, u);
    spo_h5 *f;
    if ((rc = spo_h5_open(&f, path, "lora", NULL))) return rc;
    rc = spo_lora_read(l, f);
    spo_h5_close(f);
    if (rc) return rc;
    if ((rc = reorder(l, u)) || (rc = spo_lora_check(l, u))) {
        spo_lora_free(l);
        return spo_err_prefix(rc, "%s", path);
    }
    return SPO_OK;
}
