/* decode_run.h — spo-decode's whole job: read the latents of a state, pool
 * or pairs file (spo/latset.h), decode them with the model's VAE into 8-bit
 * PNG images (as diffusers' output_type="pil") and write them: a folder of
 * PNGs, a tar of them (a file or a stream), and/or one contact sheet (rows =
 * prompts, columns = children). Each PNG carries the prompt (from the
 * embeddings file, when given) and its provenance as text chunks. The
 * library prints nothing: the tool gets progress and timings through
 * callbacks. */
#ifndef SPO_DECODE_RUN_H
#define SPO_DECODE_RUN_H

#include "core/hooks.h"
#include "ops/ops.h" /* spo_devkind */

typedef struct {
    const char *model, *in; /* a diffusers model directory (its vae/); the latents' file ("-": stdin) */
    const char *vae;        /* NULL, or a VAE directory to use instead of model/vae */
    const char *embeds;     /* NULL, or the embeddings file whose /prompt gives each row's text */
    const char *what;       /* NULL: the file's default latents (spo/latset.h) */
    const char *out;        /* NULL; FILE.tar, "-", a device or a FIFO: a tar; anything else: a folder */
    const char *sheet;      /* NULL, or the contact sheet PNG ("-": standard output) */
    const char *software;   /* the PNGs' Software text ("spo-decode 0.1.0") */
    int gap, batch, force;  /* pixels between sheet cells; images decoded at once; replace outputs */
    spo_devkind device;     /* SPO_DEV_CPU (0, the default) or SPO_DEV_CUDA */
    spo_hooks hooks;        /* progress: images decoded; phases "load", "read"; timings "decode", "png", "write" */
} spo_decode_job;

/* Every output is checked before any work (nothing is created until the
 * latents are read): a folder's parent must exist, an existing PNG in it,
 * a tar file or a sheet need force. SPO_EINVAL naming the file for bad
 * input (no latents, latent channels other than the VAE's, a prompt id
 * the embeddings lack), SPO_EIO for a failed job. On failure every output
 * is removed: the PNGs written into the folder, the folder when this run
 * made it, the temporaries. */
int spo_decode_run(const spo_decode_job *j);

#endif
