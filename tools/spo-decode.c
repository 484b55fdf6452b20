/* spo-decode — decode the latents of a state, pool or pairs file with the
 * model's VAE into PNG images: a folder of PNGs, a tar stream of them, or
 * one contact sheet (rows = prompts, columns = children). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frame.h"
#include "spo/embeds.h"
#include "io/h5io.h"
#include "io/image_io.h"
#include "spo/latset.h"
#include "io/outfile.h"
#include "nn/vae.h"

static const spo_opt opts[] = {
    {"what", 0, "NAME", "latents to decode: pool x0 (default), children or parent; pairs win (default), lose or parent"},
    {"sheet", 0, "FILE", "also (or only) write one contact sheet PNG: rows = prompts, columns = children"},
    {"gap", 0, "N", "pixels between the cells of the contact sheet (default 2)"},
    {"batch", 'b', "N", "images decoded at once (default 4)"},
    {0},
};

static const spo_tool tool = {
    .name = "spo-decode",
    .synopsis = "-m MODEL [options] FILE|- (-o DIR|FILE.tar|- | --sheet FILE.png|-)",
    .summary = "Decode the latents of a state, pool or pairs file with the model's VAE into 8-bit PNG images\n"
               "(as diffusers' output_type=\"pil\"): a folder of PNGs, a tar of them (-o FILE.tar, or -o - for\n"
               "a tar stream on standard output), and/or one contact sheet.",
    .common = SPO_O_OUT | SPO_O_MODEL | SPO_O_EMBEDS | SPO_O_DEVICE | SPO_O_FORCE,
    .opts = opts,
    .min_args = 1,
    .max_args = 1,
};

typedef struct {
    const char *what, *sheet;
    int gap, batch;
} ctx_t;

static int on_opt(void *p, int idx, const char *arg)
{
    ctx_t *c = p;
    switch (idx) {
    case 0: c->what = arg; break;
    case 1: c->sheet = arg; break;
    case 2: c->gap = (int)spo_arg_long("--gap", arg, 0, 64); break;
    case 3: c->batch = (int)spo_arg_long("--batch", arg, 1, 4096); break;
    }
    return 0;
}

/* ---- the outputs, and removing them again on failure ---- */
enum { OUT_NONE, OUT_DIR, OUT_TAR };
static struct {
    int mode, made_dir;
    const char *dir;
    char **written; /* PNGs renamed into dir so far */
    int nwritten;
    spo_outfile tarf, sheetf;
    spo_tar *tar;
} out;

static void undo_outputs(void)
{
    spo_tar_abort(out.tar);
    out.tar = NULL;
    spo_outfile_abort(&out.tarf);
    spo_outfile_abort(&out.sheetf);
    for (int i = 0; i < out.nwritten; i++) unlink(out.written[i]);
    if (out.made_dir) rmdir(out.dir);
    out.nwritten = 0, out.made_dir = 0;
}

static _Noreturn void fail(int rc)
{
    undo_outputs();
    spo_die_lib(rc);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* Before any work: every output can be made (nothing is created yet). */
static void check_outputs(const spo_args *a, const ctx_t *c)
{
    if (!a->out && !c->sheet) spo_die(2, "give -o DIR, -o FILE.tar, -o - (a tar stream) or --sheet FILE.png");
    if (a->out && c->sheet && !strcmp(a->out, "-") && !strcmp(c->sheet, "-"))
        spo_die(2, "-o - and --sheet - cannot both use standard output");
    if (((a->out && !strcmp(a->out, "-")) || (c->sheet && !strcmp(c->sheet, "-"))) && isatty(STDOUT_FILENO))
        spo_die(2, "refusing to write binary data to a terminal (redirect standard output)");
    int rc;
    if (c->sheet && (rc = spo_outfile_check(c->sheet, a->force))) spo_die_lib(rc);
    if (!a->out) return;
    out.mode = spo_atomic_is_stream(a->out) || ends_with(a->out, ".tar") ? OUT_TAR : OUT_DIR;
    if (out.mode == OUT_TAR) {
        if ((rc = spo_outfile_check(a->out, a->force))) spo_die_lib(rc);
        return;
    }
    out.dir = a->out;
    struct stat st;
    if (stat(a->out, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) spo_die(2, "%s: exists and is not a folder (a tar file must end in .tar)", a->out);
        return;
    }
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", a->out);
    size_t n = strlen(parent);
    while (n > 1 && parent[n - 1] == '/') parent[--n] = 0;
    char *sl = strrchr(parent, '/');
    if (!sl) snprintf(parent, sizeof parent, ".");
    else if (sl == parent) parent[1] = 0;
    else *sl = 0;
    if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode))
        spo_die(2, "%s: its parent folder '%s' does not exist", a->out, parent);
}

/* Prompt text of each row from the embeddings file, matched by prompt id. */
static char **read_prompts(const char *path, const char *latents, const spo_latset *s, char ***all, int64_t *nall)
{
    spo_h5 *e;
    int rc = spo_h5_open(&e, path, "embeds", NULL);
    if (rc) spo_die_lib(rc);
    int64_t *idx = malloc(((size_t)s->rows + 1) * sizeof *idx);
    char **row = calloc((size_t)s->rows + 1, sizeof *row);
    if (!idx || !row) spo_die(1, "out of memory");
    if (!(rc = spo_embeds_rows(e, s->prompt_id, s->rows, latents, idx)) &&
        !(rc = spo_h5_read_strings(e, "/prompt", all, nall)))
        for (int r = 0; r < s->rows; r++) row[r] = (*all)[idx[r]];
    free(idx); /* before exit: LeakSanitizer may not see pointers of a frame exit() leaves */
    spo_h5_close(e);
    if (rc) {
        free(row);
        spo_die_lib(rc);
    }
    return row;
}

/* Append to buf (size n, *m used so far), truncating safely. */
static void app(char *buf, size_t n, size_t *m, const char *fmt, ...) SPO_PRINTF(4, 5);
static void app(char *buf, size_t n, size_t *m, const char *fmt, ...)
{
    if (*m + 1 >= n) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *m, n - *m, fmt, ap);
    va_end(ap);
    if (k > 0) *m = *m + (size_t)k < n ? *m + (size_t)k : n - 1;
}

/* The "parameters" text of image i: prompt line (when known) and spo provenance. */
static void describe(const spo_latset *s, int i, const char *prompt, int W, int H, char *buf, size_t n)
{
    int r = i / s->cols;
    size_t m = 0;
    buf[0] = 0;
    if (prompt) app(buf, n, &m, "%s\n", prompt);
    app(buf, n, &m, "spo: %s/1 %s, prompt id %lld", s->schema, s->dataset, (long long)s->prompt_id[r]);
    if (s->cols > 1) app(buf, n, &m, ", child %d", i % s->cols);
    if (s->seed[r] >= 0) app(buf, n, &m, ", seed %lld", (long long)s->seed[r]);
    if (s->step[r] >= 0) app(buf, n, &m, ", step %lld", (long long)s->step[r]);
    if (s->num_steps > 0) app(buf, n, &m, " of %lld", (long long)s->num_steps);
    app(buf, n, &m, ", timestep %lld", (long long)s->timestep[r]);
    if (s->model_id[0]) app(buf, n, &m, ", model %s", s->model_id);
    if (s->lora_id[0]) app(buf, n, &m, ", lora %s", s->lora_id);
    app(buf, n, &m, ", size %dx%d", W, H);
}

/* One PNG into the folder: temporary name, then rename. */
static int write_dir_png(const char *name, const uint8_t *rgb, int W, int H, const spo_png_text *tx, int nt, int force)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", out.dir, name);
    spo_outfile o;
    int rc = spo_outfile_open(&o, path, force);
    if (!rc && (rc = spo_png_write(o.fp, path, rgb, W, H, tx, nt))) spo_outfile_abort(&o);
    if (!rc && !(rc = spo_outfile_commit(&o))) {
        out.written[out.nwritten] = strdup(path);
        if (out.written[out.nwritten]) out.nwritten++;
    }
    return rc;
}

int main(int argc, char **argv)
{
    double t0 = spo_now();
    ctx_t c = {.gap = 2, .batch = 4};
    spo_args a;
    spo_parse(&tool, argc, argv, &a, on_opt, &c);
    if (!a.model) spo_die(2, "-m MODEL is required (its vae/ decodes the latents)");
    if (a.embeds && !strcmp(a.embeds, "-") && !strcmp(a.argv[0], "-"))
        spo_die(2, "only one of FILE and EMBEDS can be '-'");
    if (strcmp(a.device, "cpu")) spo_die(2, "--device %s: spo-decode runs on the cpu in this build", a.device);
    check_outputs(&a, &c);

    spo_dev *dev;
    spo_vae *vae;
    int rc = spo_dev_open(&dev, SPO_DEV_CPU, 0);
    if (rc) spo_die_lib(rc);
    char vae_dir[4096];
    snprintf(vae_dir, sizeof vae_dir, "%s/vae", a.model);
    if ((rc = spo_vae_load(&vae, vae_dir, dev))) spo_die_lib(rc);
    const spo_vae_config *vc = spo_vae_cfg(vae);
    if (vc->out_channels != 3) spo_die(2, "%s: the decoder gives %d channels, not RGB", vae_dir, vc->out_channels);
    double t_load = spo_now();
    spo_vtime(&a, "load", t_load - t0);

    spo_h5 *in;
    spo_latset s;
    if ((rc = spo_h5_open(&in, a.argv[0], NULL, NULL)) || (rc = spo_latset_read(&s, in, c.what, vc->latent_channels)))
        spo_die_lib(rc);
    char **prompt = NULL, **allp = NULL;
    int64_t nallp = 0;
    if (a.embeds) prompt = read_prompts(a.embeds, spo_h5_path(in), &s, &allp, &nallp);
    int n = s.rows * s.cols, f = spo_vae_factor(vae), H = s.h * f, W = s.w * f;
    size_t lat = (size_t)s.C * s.h * s.w, pix = (size_t)3 * H * W;
    char name[256];
    if (out.mode == OUT_DIR) { /* refuse to overwrite before anything is written */
        struct stat st;
        for (int i = 0; i < n && !a.force; i++) {
            char path[4200];
            spo_latset_name(&s, i, name, sizeof name);
            snprintf(path, sizeof path, "%s/%s", out.dir, name);
            if (stat(path, &st) == 0) spo_die(2, "%s: exists (use -f to overwrite)", path);
        }
    }
    double t_read = spo_now();
    spo_vtime(&a, "read", t_read - t_load);

    float *img = malloc((size_t)c.batch * pix * sizeof *img);
    uint8_t *rgb = malloc(pix);
    out.written = calloc((size_t)n, sizeof *out.written);
    if (!img || !rgb || !out.written) spo_die(1, "out of memory");
    if (out.mode == OUT_DIR && mkdir(out.dir, 0777) == 0) out.made_dir = 1;
    else if (out.mode == OUT_DIR && errno != EEXIST) spo_die(1, "%s: cannot create the folder: %s", out.dir, strerror(errno));
    if (out.mode == OUT_TAR && ((rc = spo_outfile_open(&out.tarf, a.out, a.force)) ||
                                (rc = spo_tar_open(&out.tar, out.tarf.fp, strcmp(a.out, "-") ? a.out : "<stdout>"))))
        fail(rc);
    spo_sheet sheet = {0};
    if (c.sheet && (rc = spo_sheet_init(&sheet, s.rows, s.cols, H, W, c.gap))) fail(rc);

    size_t np = 1024; /* room for the longest prompt and the provenance line */
    for (int r = 0; prompt && r < s.rows; r++)
        if (strlen(prompt[r]) + 1024 > np) np = strlen(prompt[r]) + 1024;
    char *params = malloc(np), soft[64];
    if (!params) fail(spo_err(SPO_EIO, "out of memory"));
    snprintf(soft, sizeof soft, "spo-decode %s", SPO_VERSION);
    double t_dec = 0, t_png = 0;
    spo_progress *pg = spo_progress_start("decoding", n, a.quiet);
    for (int i0 = 0; i0 < n; i0 += c.batch) {
        int m = n - i0 < c.batch ? n - i0 : c.batch;
        double ta = spo_now();
        if ((rc = spo_vae_decode(vae, img, s.latents + (size_t)i0 * lat, m, s.h, s.w))) fail(rc);
        double tb = spo_now();
        for (int j = 0; j < m && !rc; j++) {
            int i = i0 + j;
            const char *p = prompt ? prompt[i / s.cols] : NULL;
            spo_img_to_rgb8(img + (size_t)j * pix, H, W, rgb);
            if (c.sheet) spo_sheet_put(&sheet, i / s.cols, i % s.cols, rgb);
            if (!out.mode) continue;
            spo_latset_name(&s, i, name, sizeof name);
            describe(&s, i, p, W, H, params, np);
            spo_png_text tx[3] = {{"parameters", params}, {"Software", soft}, {"prompt", p}};
            int nt = p ? 3 : 2;
            if (out.mode == OUT_DIR) rc = write_dir_png(name, rgb, W, H, tx, nt, a.force);
            else {
                uint8_t *buf;
                size_t len;
                if (!(rc = spo_png_write_mem(&buf, &len, rgb, W, H, tx, nt))) {
                    rc = spo_tar_add(out.tar, name, buf, len);
                    free(buf);
                }
            }
        }
        if (rc) fail(rc);
        t_dec += tb - ta, t_png += spo_now() - tb;
        spo_progress_update(pg, i0 + m);
    }
    spo_progress_end(pg);
    spo_vtime(&a, "decode", t_dec);
    spo_vtime(&a, "png", t_png);

    double tc = spo_now();
    if (out.tar) {
        rc = spo_tar_close(out.tar);
        out.tar = NULL;
        if (rc || (rc = spo_outfile_commit(&out.tarf))) fail(rc);
    }
    if (c.sheet) {
        char title[256];
        snprintf(title, sizeof title, "spo-decode contact sheet: %s/1 %s, %d rows (prompts) x %d columns%s",
                 s.schema, s.dataset, s.rows, s.cols, s.cols > 1 ? " (children)" : "");
        size_t cap = 64;
        for (int r = 0; r < s.rows; r++) cap += (prompt ? strlen(prompt[r]) : 0) + 32;
        char *plist = malloc(cap);
        if (!plist) fail(spo_err(SPO_EIO, "out of memory"));
        size_t m = 0;
        plist[0] = 0;
        for (int r = 0; r < s.rows; r++)
            app(plist, cap, &m, "%s%lld%s%s", r ? "\n" : "", (long long)s.prompt_id[r], prompt ? ": " : "",
                prompt ? prompt[r] : "");
        spo_png_text tx[3] = {{"Title", title}, {"Software", soft}, {"prompts", plist}};
        if ((rc = spo_outfile_open(&out.sheetf, c.sheet, a.force)) ||
            (rc = spo_png_write(out.sheetf.fp, c.sheet, sheet.rgb, sheet.width, sheet.height, tx, 3)) ||
            (rc = spo_outfile_commit(&out.sheetf))) {
            free(plist);
            fail(rc);
        }
        free(plist);
        spo_sheet_free(&sheet);
    }
    spo_vtime(&a, "write", spo_now() - tc);

    for (int i = 0; i < out.nwritten; i++) free(out.written[i]);
    free(out.written);
    spo_strings_free(allp, nallp);
    free(prompt);
    free(params);
    free(img);
    free(rgb);
    spo_latset_free(&s);
    spo_h5_close(in);
    spo_vae_free(vae);
    spo_dev_close(dev);
    return spo_finish();
}
