/* imgout.h — a set of 8-bit PNG images written as one output, all or
 * nothing. The output path says where they go:
 *
 *   DIR        one PNG per image, NAME as given, inside DIR (created when
 *              missing; its parent folder must exist)
 *   FILE.png   exactly one image (any case of ".png")
 *   FILE.tar   a tar archive of the PNGs
 *   -          a tar stream on standard output (also to a character
 *              device or a FIFO given by name: written, never replaced)
 *
 * An existing folder is always DIR. spo_imgout_check validates a path and
 * the names before any work and creates nothing (existing PNGs, or an
 * existing FILE.png/FILE.tar, need force). Every file goes through a
 * temporary name and a rename (lib/io/outfile.h); spo_imgout_abort removes
 * all that was written: the PNGs renamed into DIR so far, DIR itself when
 * spo_imgout_open made it, the tar's temporary. */
#ifndef SPO_IMGOUT_H
#define SPO_IMGOUT_H

#include <stdint.h>

#include "io/image_io.h"
#include "io/outfile.h"

enum { SPO_IMGOUT_DIR = 1, SPO_IMGOUT_PNG, SPO_IMGOUT_TAR, SPO_IMGOUT_STDOUT };

typedef struct spo_imgout spo_imgout;

/* The kind of output path names (SPO_IMGOUT_*). */
int spo_imgout_kind(const char *path);
/* n images named names[n] (plain file names, no '/'). */
int spo_imgout_check(const char *path, int n, const char *const *names, int force);
/* Check again and create what the output needs. */
int spo_imgout_open(spo_imgout **o, const char *path, int n, const char *const *names, int force);
/* Add image `name`: rgb (h, w, 3) with ntext text chunks. */
int spo_imgout_put(spo_imgout *o, const char *name, const uint8_t *rgb, int w, int h, const spo_png_text *text,
                   int ntext);
/* Finish (the tar's end, the renames) and free o; on failure everything is
 * removed as by spo_imgout_abort. */
int spo_imgout_close(spo_imgout *o);
/* Remove everything written and free o. Safe on NULL. */
void spo_imgout_abort(spo_imgout *o);

/* The pieces, for outputs of other shapes (spo/decode_run.c): one PNG
 * file at path through the atomic writer, or one PNG as member name of a
 * tar archive. */
int spo_png_file_write(const char *path, const uint8_t *rgb, int w, int h, const spo_png_text *text, int ntext,
                       int force);
int spo_tar_add_png(spo_tar *t, const char *name, const uint8_t *rgb, int w, int h, const spo_png_text *text,
                    int ntext);

#endif
