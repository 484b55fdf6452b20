/* spm_src.c — the step-aware preference model's weight file as a
 * spo_tensor_src (lib/nn/params.h): a PyTorch .bin (a zip, read by lib/ptbin
 * without executing pickle code) or a safetensors file. */
#include <stdio.h>
#include <string.h>

#include "ckpt/ptbin.h"
#include "core/infile.h"
#include "ckpt/safetensors.h"
#include "nn/spm_impl.h"

static int pt_info(void *ctx, int i, const char **name, int *ndim, const int64_t **shape)
{
    const spo_ptbin_tensor *t = spo_ptbin_get(ctx, i);
    *name = t->name, *ndim = t->ndim, *shape = t->shape;
    return SPO_OK;
}

static int pt_read(void *ctx, int i, float *dst) { return spo_ptbin_read_f32(ctx, spo_ptbin_get(ctx, i), dst); }

/* 1 when the file starts like a zip (torch.save's format since 1.6) */
static int is_zip(const char *path)
{
    unsigned char b[4] = {0};
    FILE *f;
    if (spo_fopen_in(&f, path)) return 0;
    size_t k = fread(b, 1, 4, f);
    fclose(f);
    return k == 4 && b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4;
}

int spo_spm_src_open(spm_src *s, const char *path)
{
    memset(s, 0, sizeof *s);
    s->src.label = path;
    int rc;
    if (is_zip(path)) {
        spo_ptbin *b;
        if ((rc = spo_ptbin_open(&b, path))) return rc;
        s->h = s->src.ctx = b;
        s->kind = 1;
        s->src.count = spo_ptbin_count(b);
        s->src.info = pt_info;
        s->src.read = pt_read;
        return SPO_OK;
    }
    spo_st *st;
    if ((rc = spo_st_open(&st, path))) return rc;
    s->h = st;
    s->src = spo_tensor_src_st(st, path);
    return SPO_OK;
}

void spo_spm_src_close(spm_src *s)
{
    if (s->h && s->kind == 0) spo_st_close(s->h);
    if (s->h && s->kind == 1) spo_ptbin_close(s->h);
    s->h = NULL;
}
