/* png_read.c — read a PNG back as 8-bit RGB with its text chunks (for
 * tests and helpers: spo_png in image_io.h). Any colour type and bit depth
 * is converted (palette and grey expanded, 16 bits stripped, alpha dropped,
 * interlace undone). Sizes are limited to 32768 x 32768. */
#include <errno.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "io/image_io.h"
#include "core/infile.h"

typedef struct {
    const uint8_t *buf;
    size_t len, pos;
    char msg[200];
} reader;

static void on_error(png_structp p, png_const_charp msg)
{
    reader *r = png_get_error_ptr(p);
    if (!r->msg[0]) snprintf(r->msg, sizeof r->msg, "%s", msg);
    png_longjmp(p, 1);
}

static void on_warning(png_structp p, png_const_charp msg) { (void)p, (void)msg; }

static void read_mem(png_structp p, png_bytep data, size_t n)
{
    reader *r = png_get_io_ptr(p);
    if (n > r->len - r->pos) png_error(p, "truncated file");
    memcpy(data, r->buf + r->pos, n);
    r->pos += n;
}

static char *dup_str(const char *s)
{
    char *d = malloc(strlen(s) + 1);
    if (d) strcpy(d, s);
    return d;
}

void spo_png_free(spo_png *p)
{
    if (!p) return;
    for (int i = 0; i < p->ntext; i++) {
        if (p->key) free(p->key[i]);
        if (p->text) free(p->text[i]);
    }
    free(p->key);
    free(p->text);
    free(p->rgb);
    memset(p, 0, sizeof *p);
}

/* Copy the text chunks libpng collected into out. */
static int copy_text(png_structp p, png_infop info, spo_png *out)
{
    png_textp t = NULL;
    int n = 0;
    png_get_text(p, info, &t, &n);
    if (n <= 0) return SPO_OK;
    out->key = calloc((size_t)n, sizeof *out->key);
    out->text = calloc((size_t)n, sizeof *out->text);
    if (!out->key || !out->text) return SPO_EIO;
    out->ntext = n;
    for (int i = 0; i < n; i++) {
        out->key[i] = dup_str(t[i].key);
        out->text[i] = dup_str(t[i].text ? t[i].text : "");
        if (!out->key[i] || !out->text[i]) return SPO_EIO;
    }
    return SPO_OK;
}

int spo_png_read_mem(spo_png *out, const void *buf, size_t len)
{
    memset(out, 0, sizeof *out);
    if (len < 8 || png_sig_cmp((png_const_bytep)buf, 0, 8)) return spo_err(SPO_EINVAL, "not a PNG file");
    reader r = {buf, len, 0, {0}};
    png_structp p = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, on_error, on_warning);
    if (!p) return spo_err(SPO_EIO, "out of memory");
    png_infop info = png_create_info_struct(p);
    uint8_t *volatile rgb = NULL;
    png_bytep *volatile rows = NULL;
    if (!info) {
        png_destroy_read_struct(&p, NULL, NULL);
        return spo_err(SPO_EIO, "out of memory");
    }
    if (setjmp(png_jmpbuf(p))) {
        png_destroy_read_struct(&p, &info, NULL);
        free(rgb);
        free(rows);
        spo_png_free(out);
        return spo_err(SPO_EINVAL, "not a valid PNG: %s", r.msg);
    }
    png_set_read_fn(p, &r, read_mem);
    png_set_user_limits(p, 32768, 32768);
    png_read_info(p, info);
    int w = (int)png_get_image_width(p, info), h = (int)png_get_image_height(p, info);
    png_set_expand(p);
    png_set_strip_16(p);
    png_set_strip_alpha(p);
    png_set_gray_to_rgb(p);
    png_set_interlace_handling(p);
    png_read_update_info(p, info);
    if (png_get_rowbytes(p, info) != (size_t)w * 3) png_error(p, "unexpected row size after conversion");
    rgb = malloc((size_t)w * h * 3);
    rows = malloc((size_t)h * sizeof *rows);
    if (!rgb || !rows) png_error(p, "out of memory");
    for (int y = 0; y < h; y++) rows[y] = rgb + (size_t)y * w * 3;
    png_read_image(p, rows);
    png_read_end(p, info);
    out->w = w, out->h = h;
    out->rgb = rgb;
    int rc = copy_text(p, info, out);
    png_destroy_read_struct(&p, &info, NULL);
    free(rows);
    if (rc) {
        spo_png_free(out);
        return spo_err(SPO_EIO, "out of memory");
    }
    return SPO_OK;
}

int spo_png_read(spo_png *out, const char *path)
{
    memset(out, 0, sizeof *out);
    int std = !strcmp(path, "-");
    FILE *fp = stdin;
    int orc = std ? SPO_OK : spo_fopen_in(&fp, path);
    if (orc) return orc;
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = SPO_OK;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            uint8_t *b = realloc(buf, cap);
            if (!b) { rc = spo_err(SPO_EIO, "%s: out of memory", path); break; }
            buf = b;
        }
        size_t got = fread(buf + len, 1, cap - len, fp);
        len += got;
        if (got == 0) break;
    }
    if (!rc && ferror(fp)) rc = spo_err(SPO_EIO, "%s: read failed", path);
    if (!std) fclose(fp);
    if (!rc && (rc = spo_png_read_mem(out, buf, len))) spo_err_prefix(rc, "%s", std ? "<stdin>" : path);
    free(buf);
    return rc;
}

const char *spo_png_get_text(const spo_png *p, const char *key)
{
    for (int i = 0; i < p->ntext; i++)
        if (!strcmp(p->key[i], key)) return p->text[i];
    return NULL;
}
