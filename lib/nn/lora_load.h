/* lora_load.h — read a LoRA for a UNet from either file format it comes in:
 *
 *   lora/1 (HDF5, schemas/lora.json; what spo-init and spo-step-update
 *     write): must hold exactly the UNet's targets with their shapes
 *     (spo_lora_check).
 *   diffusers safetensors (pytorch_lora_weights.safetensors, as
 *     StableDiffusionPipeline.save_lora_weights writes it and the official
 *     SPO recipe saves it): keys
 *       unet.<module>.lora.down.weight  [r, in]     (A)
 *       unet.<module>.lora.up.weight    [out, r]    (B)
 *     or peft's unconverted names unet.<module>.lora_A.weight / .lora_B.weight,
 *     any float dtype. No alpha is stored: alpha = r, as diffusers' loader
 *     assumes. Any subset of the UNet's linear layers (2-D weights, or 1x1
 *     convolutions) may be targeted; every module needs both matrices and
 *     all share one rank. A key that maps to no such layer (another prefix,
 *     a text-encoder LoRA, an unknown module, a 3x3 convolution, a wrong
 *     shape) is SPO_EINVAL naming the key.
 * The format is told by the content (the HDF5 signature), not the name.
 * The lora_id of a diffusers file is "st-" and 16 hex digits of the FNV-1a
 * hash of its module names and values; its model_id is empty. */
#ifndef SPO_LORA_LOAD_H
#define SPO_LORA_LOAD_H

#include "nn/lora.h"
#include "nn/unet.h"

/* Read path (either format) into *l, checked against u. */
int spo_lora_load(spo_lora *l, const char *path, spo_unet *u);
/* Read a diffusers-format safetensors LoRA, checked against u. */
int spo_lora_read_diffusers(spo_lora *l, const char *path, spo_unet *u);

#endif
