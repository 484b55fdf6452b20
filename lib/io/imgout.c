/* imgout.c — PNG sets to a folder, one file, a tar file or a tar stream
 * (see imgout.h). */
#include "io/imgout.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/grow.h"
#include "io/outfile.h"

struct spo_imgout {
    int kind, force, made_dir;
    char *path;
    char **written; /* paths renamed into the folder so far */
    int nwritten;
    size_t cap;
    spo_outfile file; /* FILE.png, FILE.tar or stdout */
    spo_tar *tar;
};

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && !strcasecmp(s + n - m, suffix);
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int spo_imgout_kind(const char *path)
{
    if (spo_atomic_is_stream(path)) return SPO_IMGOUT_STDOUT; /* "-", a device, a FIFO */
    if (is_dir(path)) return SPO_IMGOUT_DIR;
    if (ends_with(path, ".png")) return SPO_IMGOUT_PNG;
    if (ends_with(path, ".tar")) return SPO_IMGOUT_TAR;
    return SPO_IMGOUT_DIR;
}

int spo_png_file_write(const char *path, const uint8_t *rgb, int w, int h, const spo_png_text *text, int ntext,
                       int force)
{
    spo_outfile f;
    int rc = spo_outfile_open(&f, path, force);
    if (!rc && (rc = spo_png_write(f.fp, path, rgb, w, h, text, ntext))) spo_outfile_abort(&f);
    if (!rc) rc = spo_outfile_commit(&f);
    return rc;
}

int spo_tar_add_png(spo_tar *t, const char *name, const uint8_t *rgb, int w, int h, const spo_png_text *text,
                    int ntext)
{
    uint8_t *buf;
    size_t len;
    int rc = spo_png_write_mem(&buf, &len, rgb, w, h, text, ntext);
    if (rc) return rc;
    rc = spo_tar_add(t, name, buf, len);
    free(buf);
    return rc;
}

int spo_imgout_check(const char *path, int n, const char *const *names, int force)
{
    if (!*path) return spo_err(SPO_EINVAL, "empty output name");
    for (int i = 0; i < n; i++)
        if (!*names[i] || strchr(names[i], '/')) return spo_err(SPO_EINVAL, "bad image name '%s'", names[i]);
    int kind = spo_imgout_kind(path);
    if (kind == SPO_IMGOUT_PNG && n != 1)
        return spo_err(SPO_EINVAL, "%s: a PNG file holds one image, this run makes %d (give a folder, FILE.tar or -)",
                       path, n);
    if (kind != SPO_IMGOUT_DIR) return spo_outfile_check(path, force);
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISDIR(st.st_mode))
        return spo_err(SPO_EINVAL, "%s: exists and is not a folder", path);
    if (!is_dir(path)) return spo_outdir_parent_check(path);
    for (int i = 0; i < n && !force; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", path, names[i]);
        if (lstat(p, &st) == 0) return spo_err(SPO_EINVAL, "%s: exists (use -f to overwrite)", p);
    }
    return SPO_OK;
}

int spo_imgout_open(spo_imgout **out, const char *path, int n, const char *const *names, int force)
{
    *out = NULL;
    int rc = spo_imgout_check(path, n, names, force);
    if (rc) return rc;
    spo_imgout *o = calloc(1, sizeof *o);
    if (!o || !(o->path = strdup(path))) {
        free(o);
        return spo_err(SPO_EIO, "out of memory");
    }
    o->kind = spo_imgout_kind(path), o->force = force;
    if (o->kind == SPO_IMGOUT_DIR && !is_dir(path)) {
        if (mkdir(path, 0777) != 0) rc = spo_err(SPO_EIO, "%s: cannot create the folder: %s", path, strerror(errno));
        else o->made_dir = 1;
    } else if (o->kind == SPO_IMGOUT_TAR || o->kind == SPO_IMGOUT_STDOUT) {
        rc = spo_outfile_open(&o->file, path, force);
        if (!rc) rc = spo_tar_open(&o->tar, o->file.fp, o->file.shown);
    }
    if (rc) {
        spo_imgout_abort(o);
        return rc;
    }
    *out = o;
    return SPO_OK;
}

static int put_dir(spo_imgout *o, const char *name, const uint8_t *rgb, int w, int h, const spo_png_text *tx, int nt)
{
    char **p = spo_grow(o->written, &o->cap, (size_t)o->nwritten + 1, sizeof *p, 16);
    if (!p) return SPO_EIO;
    o->written = p;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", o->path, name);
    int rc = spo_png_file_write(path, rgb, w, h, tx, nt, o->force);
    if (!rc && !(o->written[o->nwritten] = strdup(path))) {
        unlink(path);
        rc = spo_err(SPO_EIO, "out of memory");
    }
    if (!rc) o->nwritten++;
    return rc;
}

int spo_imgout_put(spo_imgout *o, const char *name, const uint8_t *rgb, int w, int h, const spo_png_text *text,
                   int ntext)
{
    if (o->kind == SPO_IMGOUT_DIR) return put_dir(o, name, rgb, w, h, text, ntext);
    if (o->kind == SPO_IMGOUT_PNG) {
        if (o->file.fp) return spo_err(SPO_EINVAL, "%s: a PNG file holds one image", o->path);
        int rc = spo_outfile_open(&o->file, o->path, o->force);
        if (!rc) rc = spo_png_write(o->file.fp, o->path, rgb, w, h, text, ntext);
        return rc;
    }
    return spo_tar_add_png(o->tar, name, rgb, w, h, text, ntext);
}

static void free_out(spo_imgout *o)
{
    for (int i = 0; i < o->nwritten; i++) free(o->written[i]);
    free(o->written);
    free(o->path);
    free(o);
}

int spo_imgout_close(spo_imgout *o)
{
    int rc = SPO_OK;
    if (o->tar) {
        rc = spo_tar_close(o->tar);
        o->tar = NULL;
    }
    if (!rc && o->file.fp) rc = spo_outfile_commit(&o->file);
    else if (!rc && o->kind == SPO_IMGOUT_PNG) rc = spo_err(SPO_EINVAL, "%s: no image was written", o->path);
    if (rc) {
        spo_imgout_abort(o);
        return rc;
    }
    free_out(o);
    return SPO_OK;
}

void spo_imgout_abort(spo_imgout *o)
{
    if (!o) return;
    spo_tar_abort(o->tar);
    spo_outfile_abort(&o->file);
    for (int i = 0; i < o->nwritten; i++) unlink(o->written[i]);
    if (o->made_dir) rmdir(o->path);
    free_out(o);
}
