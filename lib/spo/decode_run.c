/* decode_run.c — spo-decode's job (see decode_run.h). */
#include "spo/decode_run.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/strbuf.h"
#include "io/h5io.h"
#include "io/imgout.h"
#include "nn/vae.h"
#include "spo/embeds.h"
#include "spo/latset.h"

enum { OUT_NONE, OUT_DIR, OUT_TAR };

typedef struct {
    const spo_decode_job *j;
    /* the outputs, and what to remove again on failure */
    int mode, made_dir;
    char **written; /* PNGs renamed into the folder so far */
    int nwritten;
    spo_outfile tarf, sheetf;
    spo_tar *tar;
    spo_sheet sheet;
    /* the work */
    spo_dev *dev;
    spo_vae *vae;
    spo_h5 *in;
    spo_latset s;
    char **prompt, **allp; /* each row's prompt (NULL without embeds), pointing into allp */
    int64_t nallp;
    float *img;
    uint8_t *rgb;
    char *params;
    size_t np;
    int H, W;
} run_t;

static void phase(const run_t *r, const char *name) { spo_hook_phase(&r->j->hooks, name); }

static void timing(const run_t *r, const char *name, double seconds) { spo_hook_timing(&r->j->hooks, name, seconds); }

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* Before any work: every output can be made (nothing is created yet). */
static int check_outputs(run_t *r)
{
    const spo_decode_job *j = r->j;
    int rc;
    if (j->sheet && (rc = spo_outfile_check(j->sheet, j->force))) return rc;
    if (!j->out) return SPO_OK;
    r->mode = spo_atomic_is_stream(j->out) || ends_with(j->out, ".tar") ? OUT_TAR : OUT_DIR;
    if (r->mode == OUT_TAR) return spo_outfile_check(j->out, j->force);
    struct stat st;
    if (stat(j->out, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return spo_err(SPO_EINVAL, "%s: exists and is not a folder (a tar file must end in .tar)", j->out);
        return SPO_OK;
    }
    return spo_outdir_parent_check(j->out);
}

static void undo_outputs(run_t *r)
{
    spo_tar_abort(r->tar);
    r->tar = NULL;
    spo_outfile_abort(&r->tarf);
    spo_outfile_abort(&r->sheetf);
    for (int i = 0; i < r->nwritten; i++) unlink(r->written[i]);
    if (r->made_dir) rmdir(r->j->out);
    r->made_dir = 0;
}

static int load_vae(run_t *r)
{
    char dir[4096];
    int rc = spo_dev_open(&r->dev, r->j->device, 0);
    if (rc) return rc;
    if (r->j->vae) snprintf(dir, sizeof dir, "%s", r->j->vae);
    else snprintf(dir, sizeof dir, "%s/vae", r->j->model);
    if ((rc = spo_vae_load(&r->vae, dir, r->dev))) return rc;
    const spo_vae_config *vc = spo_vae_cfg(r->vae);
    if (vc->out_channels != 3)
        return spo_err(SPO_EINVAL, "%s: the decoder gives %d channels, not RGB", dir, vc->out_channels);
    return SPO_OK;
}

/* Prompt text of each row from the embeddings file, matched by prompt id. */
static int read_prompts(run_t *r)
{
    const spo_latset *s = &r->s;
    spo_h5 *e;
    int rc = spo_h5_open(&e, r->j->embeds, "embeds", NULL);
    if (rc) return rc;
    int64_t *idx = malloc(((size_t)s->rows + 1) * sizeof *idx);
    r->prompt = calloc((size_t)s->rows + 1, sizeof *r->prompt);
    if (!idx || !r->prompt) rc = spo_err(SPO_EIO, "out of memory");
    if (!rc && !(rc = spo_embeds_rows(e, s->prompt_id, s->rows, spo_h5_path(r->in), idx)) &&
        !(rc = spo_h5_read_strings(e, "/prompt", &r->allp, &r->nallp)))
        for (int i = 0; i < s->rows; i++) r->prompt[i] = r->allp[idx[i]];
    free(idx);
    spo_h5_close(e);
    return rc;
}

/* The latents, the prompts, and no PNG of the folder in the way. */
static int read_latents(run_t *r)
{
    const spo_decode_job *j = r->j;
    int rc = spo_h5_open(&r->in, j->in, NULL, NULL);
    if (rc || (rc = spo_latset_read(&r->s, r->in, j->what, spo_vae_cfg(r->vae)->latent_channels))) return rc;
    if (j->embeds && (rc = read_prompts(r))) return rc;
    if (r->mode != OUT_DIR || j->force) return SPO_OK;
    struct stat st;
    for (int i = 0; i < r->s.rows * r->s.cols; i++) {
        char name[256], path[4200];
        spo_latset_name(&r->s, i, name, sizeof name);
        snprintf(path, sizeof path, "%s/%s", j->out, name);
        if (stat(path, &st) == 0) return spo_err(SPO_EINVAL, "%s: exists (use -f to overwrite)", path);
    }
    return SPO_OK;
}

/* Buffers, the folder or the tar, the sheet's canvas. */
static int open_outputs(run_t *r)
{
    const spo_decode_job *j = r->j;
    const spo_latset *s = &r->s;
    int n = s->rows * s->cols, f = spo_vae_factor(r->vae), rc;
    r->H = s->h * f, r->W = s->w * f;
    size_t pix = (size_t)3 * r->H * r->W;
    r->img = malloc((size_t)j->batch * pix * sizeof *r->img);
    r->rgb = malloc(pix);
    r->written = calloc((size_t)n + 1, sizeof *r->written);
    r->np = 1024; /* room for the longest prompt and the provenance line */
    for (int i = 0; r->prompt && i < s->rows; i++)
        if (strlen(r->prompt[i]) + 1024 > r->np) r->np = strlen(r->prompt[i]) + 1024;
    r->params = malloc(r->np);
    if (!r->img || !r->rgb || !r->written || !r->params) return spo_err(SPO_EIO, "out of memory");
    if (r->mode == OUT_DIR) {
        if (mkdir(j->out, 0777) == 0) r->made_dir = 1;
        else if (errno != EEXIST) return spo_err(SPO_EIO, "%s: cannot create the folder: %s", j->out, strerror(errno));
    }
    if (r->mode == OUT_TAR && ((rc = spo_outfile_open(&r->tarf, j->out, j->force)) ||
                               (rc = spo_tar_open(&r->tar, r->tarf.fp, strcmp(j->out, "-") ? j->out : "<stdout>"))))
        return rc;
    /* with the prompts known, each row's prompt is written under it */
    if (j->sheet && r->prompt) {
        if ((rc = spo_sheet_init_labeled(&r->sheet, s->rows, s->cols, r->H, r->W, j->gap))) return rc;
        for (int i = 0; i < s->rows && !rc; i++) rc = spo_sheet_label(&r->sheet, i, r->prompt[i]);
        if (rc) return rc;
    } else if (j->sheet && (rc = spo_sheet_init(&r->sheet, s->rows, s->cols, r->H, r->W, j->gap)))
        return rc;
    return SPO_OK;
}

/* The "parameters" text of image i: prompt line (when known) and spo provenance. */
static void describe(const run_t *r, int i, const char *prompt)
{
    const spo_latset *s = &r->s;
    int row = i / s->cols;
    char *buf = r->params;
    size_t n = r->np, m = 0;
    buf[0] = 0;
    if (prompt) spo_appendf(buf, n, &m, "%s\n", prompt);
    spo_appendf(buf, n, &m, "spo: %s/1 %s, prompt id %lld", s->schema, s->dataset, (long long)s->prompt_id[row]);
    if (s->cols > 1) spo_appendf(buf, n, &m, ", child %d", i % s->cols);
    if (s->seed[row] >= 0) spo_appendf(buf, n, &m, ", seed %lld", (long long)s->seed[row]);
    if (s->step[row] >= 0) spo_appendf(buf, n, &m, ", step %lld", (long long)s->step[row]);
    if (s->num_steps > 0) spo_appendf(buf, n, &m, " of %lld", (long long)s->num_steps);
    spo_appendf(buf, n, &m, ", timestep %lld", (long long)s->timestep[row]);
    if (s->model_id[0]) spo_appendf(buf, n, &m, ", model %s", s->model_id);
    if (s->lora_id[0]) spo_appendf(buf, n, &m, ", lora %s", s->lora_id);
    spo_appendf(buf, n, &m, ", size %dx%d", r->W, r->H);
}

/* Image i (rgb) into the sheet and the folder or the tar. */
static int put_image(run_t *r, int i)
{
    const spo_latset *s = &r->s;
    const char *p = r->prompt ? r->prompt[i / s->cols] : NULL;
    char name[256], path[4200];
    if (r->j->sheet) spo_sheet_put(&r->sheet, i / s->cols, i % s->cols, r->rgb);
    if (r->mode == OUT_NONE) return SPO_OK;
    spo_latset_name(s, i, name, sizeof name);
    describe(r, i, p);
    spo_png_text tx[3] = {{"parameters", r->params}, {"Software", r->j->software}, {"prompt", p}};
    int nt = p ? 3 : 2;
    if (r->mode == OUT_TAR) return spo_tar_add_png(r->tar, name, r->rgb, r->W, r->H, tx, nt);
    snprintf(path, sizeof path, "%s/%s", r->j->out, name);
    int rc = spo_png_file_write(path, r->rgb, r->W, r->H, tx, nt, r->j->force);
    if (!rc && !(r->written[r->nwritten] = strdup(path))) {
        unlink(path);
        rc = spo_err(SPO_EIO, "out of memory");
    }
    if (!rc) r->nwritten++;
    return rc;
}

static int decode_all(run_t *r)
{
    const spo_decode_job *j = r->j;
    const spo_latset *s = &r->s;
    int n = s->rows * s->cols, rc = SPO_OK;
    size_t lat = (size_t)s->C * s->h * s->w, pix = (size_t)3 * r->H * r->W;
    double t_dec = 0, t_png = 0;
    spo_hook_progress(&j->hooks, 0, n);
    for (int i0 = 0; i0 < n && !rc; i0 += j->batch) {
        int m = n - i0 < j->batch ? n - i0 : j->batch;
        double ta = spo_seconds();
        if ((rc = spo_vae_decode(r->vae, r->img, s->latents + (size_t)i0 * lat, m, s->h, s->w))) break;
        double tb = spo_seconds();
        for (int k = 0; k < m && !rc; k++) {
            spo_img_to_rgb8(r->img + (size_t)k * pix, r->H, r->W, r->rgb);
            rc = put_image(r, i0 + k);
        }
        t_dec += tb - ta, t_png += spo_seconds() - tb;
        if (!rc) spo_hook_progress(&j->hooks, i0 + m, n);
    }
    if (rc) return rc;
    timing(r, "decode", t_dec);
    timing(r, "png", t_png);
    return SPO_OK;
}

/* The contact sheet, with a title and the list of prompts. */
static int write_sheet(run_t *r)
{
    const spo_decode_job *j = r->j;
    const spo_latset *s = &r->s;
    char title[256];
    snprintf(title, sizeof title, "spo-decode contact sheet: %s/1 %s, %d rows (prompts) x %d columns%s", s->schema,
             s->dataset, s->rows, s->cols, s->cols > 1 ? " (children)" : "");
    size_t cap = 64, m = 0;
    for (int i = 0; i < s->rows; i++) cap += (r->prompt ? strlen(r->prompt[i]) : 0) + 32;
    char *plist = malloc(cap);
    if (!plist) return spo_err(SPO_EIO, "out of memory");
    plist[0] = 0;
    for (int i = 0; i < s->rows; i++)
        spo_appendf(plist, cap, &m, "%s%lld%s%s", i ? "\n" : "", (long long)s->prompt_id[i], r->prompt ? ": " : "",
                    r->prompt ? r->prompt[i] : "");
    spo_png_text tx[3] = {{"Title", title}, {"Software", j->software}, {"prompts", plist}};
    int rc = spo_outfile_open(&r->sheetf, j->sheet, j->force);
    if (!rc) rc = spo_png_write(r->sheetf.fp, j->sheet, r->sheet.rgb, r->sheet.width, r->sheet.height, tx, 3);
    if (!rc) rc = spo_outfile_commit(&r->sheetf);
    free(plist);
    return rc;
}

/* The tar's end, then the sheet. */
static int finish(run_t *r)
{
    double t = spo_seconds();
    int rc = SPO_OK;
    if (r->tar) {
        rc = spo_tar_close(r->tar);
        r->tar = NULL;
        if (!rc) rc = spo_outfile_commit(&r->tarf);
    }
    if (!rc && r->j->sheet) rc = write_sheet(r);
    if (!rc) timing(r, "write", spo_seconds() - t);
    return rc;
}

int spo_decode_run(const spo_decode_job *j)
{
    run_t r = {.j = j};
    int rc = check_outputs(&r);
    if (!rc) rc = load_vae(&r);
    if (!rc) phase(&r, "load");
    if (!rc) rc = read_latents(&r);
    if (!rc) phase(&r, "read");
    if (!rc) rc = open_outputs(&r);
    if (!rc) rc = decode_all(&r);
    if (!rc) rc = finish(&r);
    if (rc) undo_outputs(&r);
    for (int i = 0; i < r.nwritten; i++) free(r.written[i]);
    free(r.written), free(r.img), free(r.rgb), free(r.params), free(r.prompt);
    if (r.allp) spo_strings_free(r.allp, r.nallp);
    spo_sheet_free(&r.sheet);
    spo_latset_free(&r.s);
    spo_h5_close(r.in);
    if (r.vae) spo_vae_free(r.vae);
    if (r.dev) spo_dev_close(r.dev);
    return rc;
}
