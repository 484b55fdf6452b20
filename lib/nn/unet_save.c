/* unet_save.c — a UNet's weights as a diffusers unet/ folder (see
 * spo_unet_save_dir in lora_export.h). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "nn/lora_export.h"
#include "nn/params.h"

static const char *WEIGHTS = "diffusion_pytorch_model.safetensors";

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    int rc = SPO_OK;
    char buf[65536];
    size_t k;
    if (!in) return spo_err(SPO_EINVAL, "%s: cannot open", from);
    if (!out) rc = spo_err(SPO_EIO, "%s: cannot create", to);
    while (!rc && (k = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, k, out) != k) rc = spo_err(SPO_EIO, "%s: write failed", to);
    if (!rc && ferror(in)) rc = spo_err(SPO_EIO, "%s: read failed", from);
    fclose(in);
    if (out && fclose(out) && !rc) rc = spo_err(SPO_EIO, "%s: write failed", to);
    return rc;
}

/* Every tensor of u into dir/WEIGHTS, shaped as in like (same numel). */
static int write_weights(spo_unet *u, const char *like_path, const char *path, spo_st_dtype dtype)
{
    const spo_params *ps = spo_unet_params(u);
    spo_st *like;
    int rc = spo_st_open(&like, like_path);
    if (rc) return rc;
    spo_st_writer *w = NULL;
    float *all = malloc(ps->total * sizeof *all + 1);
    if (!all) rc = spo_err(SPO_EIO, "out of memory");
    if (!rc) rc = spo_dev_download(ps->dev, all, ps->buf, ps->total);
    if (!rc) rc = spo_st_writer_new(&w);
    if (!rc) rc = spo_st_writer_meta(w, "format", "pt");
    for (int i = 0; i < ps->n && !rc; i++) {
        const spo_param *p = &ps->p[i];
        const spo_st_tensor *t = spo_st_find(like, p->name);
        if (!t && p->alias) t = spo_st_find(like, p->alias);
        int ndim = p->ndim;
        const int64_t *shape = p->shape;
        if (t && (size_t)t->numel == p->numel) ndim = t->ndim, shape = t->shape;
        rc = spo_st_writer_add(w, p->name, dtype, ndim, shape, all + p->offset);
    }
    if (!rc) rc = spo_st_writer_write(w, path);
    spo_st_writer_free(w);
    spo_st_close(like);
    free(all);
    return rc;
}

/* 1 when dir holds nothing but what spo_unet_save_dir writes */
static int only_ours(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int ok = 1;
    while (ok && (e = readdir(d)))
        ok = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, "config.json") ||
             !strcmp(e->d_name, WEIGHTS);
    closedir(d);
    return ok;
}

static void remove_ours(const char *dir)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/config.json", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/%s", dir, WEIGHTS);
    unlink(p);
    rmdir(dir);
}

static int save_dir(spo_unet *u, const char *config_path, const char *like_path, const char *dir, spo_st_dtype dtype,
                    int force)
{
    struct stat st;
    int exists = stat(dir, &st) == 0;
    if (exists && !force) return spo_err(SPO_EINVAL, "%s exists (use -f to overwrite)", dir);
    if (exists && (!S_ISDIR(st.st_mode) || !only_ours(dir)))
        return spo_err(SPO_EINVAL, "%s: not a unet folder spo-export wrote (holds other files); not overwritten", dir);
    size_t n = strlen(dir) + 64;
    char *tmp = malloc(n), *old = malloc(n), *p = malloc(n);
    int rc = SPO_OK;
    if (!tmp || !old || !p) rc = spo_err(SPO_EIO, "out of memory");
    if (!rc) {
        snprintf(tmp, n, "%s.tmp.XXXXXX", dir);
        if (!mkdtemp(tmp)) rc = spo_err(SPO_EIO, "%s: cannot create a folder beside it: %s", dir, strerror(errno));
        else {
            mode_t mask = umask(0); /* mkdtemp makes 0700; give the folder the usual mode */
            umask(mask);
            chmod(tmp, 0777 & ~mask);
        }
    }
    if (!rc) {
        snprintf(p, n, "%s/config.json", tmp);
        rc = copy_file(config_path, p);
        snprintf(p, n, "%s/%s", tmp, WEIGHTS);
        if (!rc) rc = write_weights(u, like_path, p, dtype);
        if (!rc && exists) {
            snprintf(old, n, "%s.old.XXXXXX", dir);
            if (!mkdtemp(old) || rmdir(old) || rename(dir, old))
                rc = spo_err(SPO_EIO, "%s: cannot move the old folder aside: %s", dir, strerror(errno));
        }
        if (!rc && rename(tmp, dir)) {
            rc = spo_err(SPO_EIO, "%s: cannot rename the new folder into place: %s", dir, strerror(errno));
            if (exists) rename(old, dir);
        }
        if (rc) remove_ours(tmp);
        else if (exists) remove_ours(old);
    }
    free(tmp), free(old), free(p);
    return rc;
}

int spo_unet_save_dir(spo_unet *u, const char *config_path, const char *like_path, const char *dir,
                      spo_st_dtype dtype, int force)
{
    char *d = strdup(dir); /* "out/unet/" names the folder "out/unet" */
    if (!d) return spo_err(SPO_EIO, "out of memory");
    for (size_t n = strlen(d); n > 1 && d[n - 1] == '/'; n--) d[n - 1] = 0;
    int rc = save_dir(u, config_path, like_path, d, dtype, force);
    free(d);
    return rc;
}
