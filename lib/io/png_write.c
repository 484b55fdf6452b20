/* png_write.c — decoder images to 8-bit RGB, and RGB to PNG (libpng) on a
 * FILE* or into memory, with text chunks. See image_io.h for the exact
 * mapping (diffusers' VaeImageProcessor.postprocess, output_type="pil").
 *
 * libpng reports errors by longjmp: every libpng call sits after the
 * setjmp of its function, and what is freed on the error path is volatile. */
#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "io/image_io.h"

/* ---- float (3,h,w) in [-1,1] -> uint8 (h,w,3) --------------------------- */
static uint8_t to_u8(float x)
{
    float v = x / 2.0f + 0.5f; /* torch: images / 2 + 0.5, float32 */
    if (!(v > 0.0f)) v = 0.0f; /* clamp(0, 1); NaN -> 0 */
    if (v > 1.0f) v = 1.0f;
    float s = v * 255.0f;             /* numpy: float32 array * 255 stays float32 */
    return (uint8_t)nearbyintf(s);    /* .round(): half to even (default rounding mode) */
}

void spo_img_to_rgb8(const float *img, int h, int w, uint8_t *rgb)
{
    size_t plane = (size_t)h * w;
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++) rgb[i * 3 + c] = to_u8(img[c * plane + i]);
}

/* ---- libpng plumbing -------------------------------------------------------- */
typedef struct {
    char msg[200];
    int io; /* the failure was the output's, not libpng's */
} pngerr;

static void on_error(png_structp p, png_const_charp msg)
{
    pngerr *e = png_get_error_ptr(p);
    if (!e->msg[0]) snprintf(e->msg, sizeof e->msg, "%s", msg);
    png_longjmp(p, 1);
}

static void on_warning(png_structp p, png_const_charp msg)
{
    (void)p, (void)msg; /* the library never prints */
}

static void write_file(png_structp p, png_bytep data, size_t n)
{
    FILE *fp = png_get_io_ptr(p);
    if (fwrite(data, 1, n, fp) != n) {
        pngerr *e = png_get_error_ptr(p);
        snprintf(e->msg, sizeof e->msg, "write failed: %s", strerror(errno ? errno : EIO));
        e->io = 1;
        png_error(p, e->msg);
    }
}

static void flush_file(png_structp p) { fflush((FILE *)png_get_io_ptr(p)); }

typedef struct {
    uint8_t *buf;
    size_t len, cap;
} membuf;

static void write_mem(png_structp p, png_bytep data, size_t n)
{
    membuf *m = png_get_io_ptr(p);
    if (m->len + n > m->cap) {
        size_t cap = m->cap ? m->cap : 4096;
        while (cap < m->len + n) cap *= 2;
        uint8_t *b = realloc(m->buf, cap);
        if (!b) {
            pngerr *e = png_get_error_ptr(p);
            snprintf(e->msg, sizeof e->msg, "out of memory");
            e->io = 1;
            png_error(p, e->msg);
        }
        m->buf = b, m->cap = cap;
    }
    memcpy(m->buf + m->len, data, n);
    m->len += n;
}

static void flush_mem(png_structp p) { (void)p; }

static int is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80) return 0;
    return 1;
}

/* One 8-bit RGB PNG through fn(io). */
static int write_png(png_rw_ptr fn, png_flush_ptr flush, void *io, const char *name, const uint8_t *rgb, int w,
                     int h, const spo_png_text *text, int ntext)
{
    if (w <= 0 || h <= 0 || w > 1000000 || h > 1000000 || (size_t)w * h > ((size_t)1 << 31))
        return spo_err(SPO_EINVAL, "%s: cannot write a %dx%d PNG", name, w, h);
    if (ntext < 0 || (ntext && !text)) return spo_err(SPO_EINVAL, "%s: bad text chunk list", name);
    pngerr e = {{0}, 0};
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, &e, on_error, on_warning);
    if (!p) return spo_err(SPO_EIO, "%s: out of memory", name);
    png_infop info = png_create_info_struct(p);
    png_text *volatile tx = NULL;
    if (!info) {
        png_destroy_write_struct(&p, NULL);
        return spo_err(SPO_EIO, "%s: out of memory", name);
    }
    if (setjmp(png_jmpbuf(p))) {
        png_destroy_write_struct(&p, &info);
        free(tx);
        return spo_err(e.io ? SPO_EIO : SPO_EINVAL, "%s: PNG: %s", name, e.msg);
    }
    png_set_write_fn(p, io, fn, flush);
    png_set_IHDR(p, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (ntext) {
        tx = calloc((size_t)ntext, sizeof *tx);
        if (!tx) {
            snprintf(e.msg, sizeof e.msg, "out of memory");
            e.io = 1;
            png_error(p, e.msg);
        }
        for (int i = 0; i < ntext; i++) {
            const char *t = text[i].text ? text[i].text : "";
            tx[i].compression = is_ascii(t) ? PNG_TEXT_COMPRESSION_NONE : PNG_ITXT_COMPRESSION_NONE;
            tx[i].key = (png_charp)text[i].key;
            tx[i].text = (png_charp)t;
        }
        png_set_text(p, info, tx, ntext);
    }
    png_write_info(p, info);
    for (int y = 0; y < h; y++) png_write_row(p, rgb + (size_t)y * w * 3);
    png_write_end(p, info);
    png_destroy_write_struct(&p, &info);
    free(tx);
    return SPO_OK;
}

int spo_png_write(FILE *fp, const char *name, const uint8_t *rgb, int w, int h, const spo_png_text *text, int ntext)
{
    errno = 0;
    int rc = write_png(write_file, flush_file, fp, name ? name : "PNG", rgb, w, h, text, ntext);
    if (!rc && ferror(fp)) rc = spo_err(SPO_EIO, "%s: write failed", name ? name : "PNG");
    return rc;
}

int spo_png_write_mem(uint8_t **buf, size_t *len, const uint8_t *rgb, int w, int h, const spo_png_text *text,
                      int ntext)
{
    membuf m = {NULL, 0, 0};
    *buf = NULL, *len = 0;
    int rc = write_png(write_mem, flush_mem, &m, "PNG", rgb, w, h, text, ntext);
    if (rc) {
        free(m.buf);
        return rc;
    }
    *buf = m.buf, *len = m.len;
    return SPO_OK;
}
