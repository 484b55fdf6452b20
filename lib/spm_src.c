/* spm_src.c — the step-aware preference model's weight file as a
 * spo_tensor_src (lib/params.h): a PyTorch .bin (a zip, read by lib/ptbin
 * without executing pickle code) or a safetensors file. */
#include <stdio.h>
#include <string.h>

#include "safetensors.h"
#include "spm_int.h"

static int st_info(void *ctx, int i, const char **name, int *ndim, const int64_t **shape)
{
    const spo_st_tensor *t = spo_st_get(ctx, i);
    *name = t->name, *ndim = t->ndim, *shape = t->shape;
    return SPO_OK;
}

static int st_read(void *ctx, int i, float *dst) { return spo_st_read_f32(ctx, spo_st_get(ctx, i), dst); }

/* 1 when the file starts like a zip (torch.save's format since 1.6) */
static int is_zip(const char *path)
{
    unsigned char b[4] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t k = fread(b, 1, 4, f);
    fclose(f);
    return k == 4 && b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4;
}

int spm_src_open(spm_src *s, const char *path)
{
    memset(s, 0, sizeof *s);
    s->src.label = path;
    if (is_zip(path))
        return spo_err(SPO_EINVAL, "%s: PyTorch .bin checkpoints need lib/ptbin (not merged yet); convert to safetensors",
                       path);
    spo_st *st;
    int rc = spo_st_open(&st, path);
    if (rc) return rc;
    s->h = st;
    s->src.ctx = st;
    s->src.count = spo_st_count(st);
    s->src.info = st_info;
    s->src.read = st_read;
    return SPO_OK;
}

void spm_src_close(spm_src *s)
{
    if (s->h && s->kind == 0) spo_st_close(s->h);
    s->h = NULL;
}
