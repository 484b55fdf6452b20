/* latset.h — the latents to decode from a state/1, pool/1 or pairs/1 file,
 * as a grid of images with names and provenance (for spo-decode).
 *
 *   file     what                       dataset    grid (rows x cols)  image name
 *   state/1  latents (default)          /latents   B x 1               p<id>.png
 *   pool/1   x0 (default) | children    /x0_hat, /children  B x K      p<id>_k<k>.png
 *   pool/1   parent                     /parent    B x 1               p<id>.png
 *   pairs/1  win (default) | lose | parent  /win, /lose, /parent  N x 1  p<id>_n<i>_<what>.png
 *
 * <id> is the prompt id (pairs: /key[i,1]); a row whose prompt id appears
 * more than once in a state or pool gets "_r<row>" before ".png" so names
 * stay unique. The schema comes from the file's spo_schema attribute and
 * is checked with C bound to the decoder's latent channels. */
#ifndef SPO_LATSET_H
#define SPO_LATSET_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "io/h5io.h"

typedef struct {
    char schema[16];     /* "state", "pool" or "pairs" */
    char what[16];       /* "latents", "x0", "children", "parent", "win", "lose" */
    char dataset[16];    /* "/x0_hat", ... */
    int rows, cols;      /* images = rows * cols; image i is row i / cols, column i % cols */
    int C, h, w;         /* latent shape */
    float *latents;      /* [rows * cols, C, h, w] */
    int64_t *prompt_id;  /* [rows]; the block that seed, step and timestep are carved from */
    int64_t *seed;       /* [rows] (pairs: /key[i,0]) */
    int64_t *step;       /* [rows] inference step of the latent's parent (pairs: /key[i,2]) */
    int64_t *timestep;   /* [rows] timestep of the latents (0 for clean ones) */
    int *dup;            /* [rows] 1 when the prompt id is not unique */
    int64_t num_steps;   /* -1 when unknown */
    char model_id[128], lora_id[128]; /* "" when absent */
} spo_latset;

/* Read the latents of what (NULL: the default for the file's schema) from
 * f, opened without a schema. SPO_EINVAL, naming the file, for a file of
 * another schema, an unknown what, or latents with channels other than
 * latent_channels. */
int spo_latset_read(spo_latset *s, const spo_h5 *f, const char *what, int latent_channels);
/* File name of image i (see the table above). */
void spo_latset_name(const spo_latset *s, int i, char *buf, size_t n);
void spo_latset_free(spo_latset *s);

#endif
