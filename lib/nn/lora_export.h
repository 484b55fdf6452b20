/* lora_export.h — a LoRA out of spo and back in (spo-export):
 *
 *   diffusers  pytorch_lora_weights.safetensors as the official SPO recipe
 *              saves it (StableDiffusionPipeline.save_lora_weights of
 *              convert_state_dict_to_diffusers(get_peft_model_state_dict)):
 *              unet.<module>.lora.down.weight [r, in] and
 *              unet.<module>.lora.up.weight [out, r], F32, metadata
 *              {"format": "pt"}, no alpha (loaders take alpha = r; a LoRA
 *              whose alpha is not r gets B scaled by alpha / r so that the
 *              file means the same).
 *   kohya      kohya-ss / stable-diffusion-webui: lora_unet_<module with '_'
 *              for '.'>.lora_down.weight, .lora_up.weight and .alpha (a 0-d
 *              F32 tensor), every key with the lora_unet_ prefix (diffusers'
 *              load_lora_weights takes such a file only then). For SDXL
 *              (a UNet with text_time conditioning) the module is named as
 *              in SDXL's original (SGM) UNet, as sd-scripts trains it and
 *              webui loads it: down_blocks.i.attentions.j is
 *              input_blocks.N.1 (N = 1 + sum over earlier levels of
 *              (layers + 1) + j), mid_block.attentions.0 middle_block.1,
 *              up_blocks.i.attentions.j output_blocks.N.1 (N = sum over
 *              earlier up levels of (layers + 1) + j); the rest of the
 *              name (transformer_blocks.0.attn1.to_q, ...) is the same.
 *   unet       the UNet with the LoRA merged, W += (alpha / r) B A, as a
 *              diffusers unet/ folder (config.json and
 *              diffusion_pytorch_model.safetensors).
 * The reverse: spo_lora_load_any reads lora/1, diffusers (lora_load.h) and
 * kohya files; spo_lora_adopt orders a LoRA as lora/1 wants it. */
#ifndef SPO_LORA_EXPORT_H
#define SPO_LORA_EXPORT_H

#include "ckpt/safetensors.h"
#include "nn/lora.h"
#include "nn/unet.h"

typedef enum { SPO_LORA_DIFFUSERS, SPO_LORA_KOHYA } spo_lora_st_format;

/* Write l as a safetensors LoRA file of format fmt, atomically. sdxl: the
 * UNet's config when kohya names must be SDXL's (spo_lora_kohya_sgm), else NULL. */
int spo_lora_save_st(const spo_lora *l, spo_lora_st_format fmt, const char *path, const spo_unet_config *sdxl);
/* c when its kohya names are SDXL's (text_time conditioning), else NULL. */
const spo_unet_config *spo_lora_kohya_sgm(const spo_unet_config *c);

/* Read path into *l, checked against u: a kohya file (first key
 * lora_unet_...; every key must be lora_unet_<target>.lora_down.weight,
 * .lora_up.weight or .alpha, one rank and one alpha, alpha = r when absent;
 * lora_id "kohya-" and a hash of the values), else spo_lora_load. */
int spo_lora_load_any(spo_lora *l, const char *path, spo_unet *u);

/* Move the modules of in (read from any file, in any order) into *out in
 * the order of u's LoRA targets; every target must be present, with its
 * shape, and nothing else (what training needs). in is left empty. On
 * error, a message naming src and the first missing or extra module. */
int spo_lora_adopt(spo_lora *out, spo_lora *in, spo_unet *u, const char *src);

/* Write u's weights as a diffusers unet folder dir: config.json copied from
 * config_path, diffusion_pytorch_model.safetensors with float tensors as
 * dtype (F32 or F16) and each tensor's shape as in the file like_path (the
 * weights u was loaded from: [C, C, 1, 1] stays 4-D). Atomic: written into
 * a temporary folder beside dir and renamed. An existing dir is refused
 * unless force, and then only if it holds nothing but those two files. */
int spo_unet_save_dir(spo_unet *u, const char *config_path, const char *like_path, const char *dir,
                      spo_st_dtype dtype, int force);

#endif
