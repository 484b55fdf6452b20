/* modelid.h — a stable id of a diffusers base model, stored in every file
 * made from it (the model_id attribute) so that tools refuse to mix files
 * of different base models.
 *
 * The id is the 64-bit FNV-1a hash, as 16 lowercase hex digits, of (in this
 * order) text_encoder/config.json, the text encoder's safetensors header,
 * unet/config.json and the UNet's safetensors header (then, for SDXL, whose
 * model_index.json names a text_encoder_2, its config.json and safetensors
 * header; the id of an SD model is as before), plus a sample of each
 * weights file's data (its first and last 64 KiB), so that fine-tunes of
 * one architecture differ too. Each piece is hashed as its label, a NUL, its
 * length (8 bytes, little-endian) and its bytes. The weights files are the
 * ones the loaders pick (lib/io/modeldir.h: spo_md_weights). Reformatting a
 * config.json or saving the weights in another dtype changes the id. */
#ifndef SPO_MODELID_H
#define SPO_MODELID_H

#include <stddef.h>
#include <stdint.h>

#define SPO_MODEL_ID_LEN 17 /* 16 hex digits and the NUL */

/* Write the id of the model directory into out[n], n >= SPO_MODEL_ID_LEN.
 * SPO_EINVAL naming the file when a part is missing or malformed. */
int spo_model_id(const char *model_dir, char *out, size_t n);

/* FNV-1a 64 over buf[0..len), continuing from h (start with SPO_FNV_INIT). */
#define SPO_FNV_INIT 0xcbf29ce484222325ull
uint64_t spo_fnv1a64(uint64_t h, const void *buf, size_t len);

#endif
