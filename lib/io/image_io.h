/* image_io.h — 8-bit RGB images: from decoder output, to and from PNG
 * (libpng), and contact sheets.
 *
 * Pixels are interleaved (h, w, 3) uint8, rows top to bottom, as PNG and
 * PIL hold them. spo_img_to_rgb8 maps a decoder image (3, h, w) float in
 * about [-1, 1] exactly as diffusers 0.26.1 does for output_type="pil":
 *   VaeImageProcessor.denormalize   v = (x / 2 + 0.5).clamp(0, 1)   (torch, float32)
 *   pt_to_numpy                     channels last, float32
 *   numpy_to_pil                    (v * 255).round().astype("uint8")
 * in float32 with numpy's round half to even; NaN becomes 0.
 *
 * PNG text chunks: keys 1..79 Latin-1 characters; a value that is plain
 * ASCII is written as tEXt, anything else as an uncompressed iTXt (UTF-8).
 * Writing never prints (libpng's messages become the error message). */
#ifndef SPO_IMAGE_IO_H
#define SPO_IMAGE_IO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/err.h"

typedef struct {
    const char *key, *text;
} spo_png_text;

/* img (3, h, w) float -> rgb (h, w, 3) uint8, as above. */
void spo_img_to_rgb8(const float *img, int h, int w, uint8_t *rgb);

/* An 8-bit RGB PNG of rgb (h, w, 3) to fp, with ntext text chunks. name is
 * used in error messages only. */
int spo_png_write(FILE *fp, const char *name, const uint8_t *rgb, int w, int h, const spo_png_text *text,
                  int ntext);
/* The same into a malloc'd buffer *buf of *len bytes (free it). */
int spo_png_write_mem(uint8_t **buf, size_t *len, const uint8_t *rgb, int w, int h, const spo_png_text *text,
                      int ntext);

/* A PNG read back as 8-bit RGB (any bit depth or colour type is converted;
 * alpha is dropped), with its tEXt/zTXt/iTXt chunks. */
typedef struct {
    int w, h;
    uint8_t *rgb; /* (h, w, 3) */
    int ntext;
    char **key, **text;
} spo_png;

/* path may be "-" for standard input. */
int spo_png_read(spo_png *p, const char *path);
int spo_png_read_mem(spo_png *p, const void *buf, size_t len);
/* The text of chunk key, or NULL. */
const char *spo_png_get_text(const spo_png *p, const char *key);
void spo_png_free(spo_png *p);

/* ---- contact sheet (lib/io/sheet.c) ----
 * rows x cols cells of h x w pixels, gap pixels of SPO_SHEET_GAP grey
 * between neighbouring cells (none around the outside):
 *   width  = cols * w + (cols - 1) * gap
 *   height = rows * h + (rows - 1) * gap
 * Cells never filled stay grey. A labelled sheet has a band of
 * SPO_SHEET_LABEL pixels under each row for a line of text (the prompt),
 * and is at least SPO_SHEET_LABEL_MINW wide (cells on the left, grey beside):
 *   height = rows * (h + SPO_SHEET_LABEL) + (rows - 1) * gap */
#define SPO_SHEET_GAP 48
#define SPO_SHEET_LABEL 11
#define SPO_SHEET_LABEL_MINW 256

typedef struct {
    int rows, cols, h, w, gap, label;
    int width, height;
    uint8_t *rgb; /* (height, width, 3) */
} spo_sheet;

int spo_sheet_init(spo_sheet *s, int rows, int cols, int h, int w, int gap);
/* The same with a label band under each row. */
int spo_sheet_init_labeled(spo_sheet *s, int rows, int cols, int h, int w, int gap);
/* Write text in row r's band (a labelled sheet), cut with "..." to fit. */
int spo_sheet_label(spo_sheet *s, int r, const char *text);
/* Copy cell (r, c) from rgb (h, w, 3). */
int spo_sheet_put(spo_sheet *s, int r, int c, const uint8_t *rgb);
void spo_sheet_free(spo_sheet *s);

#endif
