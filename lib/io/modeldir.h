/* modeldir.h — a diffusers model directory (as save_pretrained writes it):
 *
 *   model_index.json            {"_class_name": ..., "unet": ["diffusers",
 *                               "UNet2DConditionModel"], ...}
 *   unet/config.json            + diffusion_pytorch_model.safetensors
 *   vae/config.json             + diffusion_pytorch_model.safetensors
 *   text_encoder/config.json    + model.safetensors
 *   tokenizer/tokenizer_config.json, vocab.json, merges.txt
 *   scheduler/scheduler_config.json
 *
 * A component is a model_index.json key not starting with '_' whose value
 * is [library, class]; [null, null] (e.g. an absent safety_checker) means
 * not present. Weights are found as diffusion_pytorch_model.safetensors,
 * model.safetensors, then the .fp16.safetensors variants of both. Messages
 * name the file, e.g. "sd/unet/config.json: missing 'in_channels'". */
#ifndef SPO_MODELDIR_H
#define SPO_MODELDIR_H

#include <stddef.h>

#include "io/jsoncfg.h"

typedef struct spo_modeldir spo_modeldir;

/* Read and check dir/model_index.json. */
int spo_md_open(spo_modeldir **md, const char *dir);
void spo_md_close(spo_modeldir *md);
const char *spo_md_dir(const spo_modeldir *md);
/* model_index.json as parsed (a JSON object). */
const cJSON *spo_md_index(const spo_modeldir *md);

/* Present components, in file order. */
int spo_md_count(const spo_modeldir *md);
const char *spo_md_component(const spo_modeldir *md, int i);
/* Class name of a present component ("UNet2DConditionModel"), else NULL. */
const char *spo_md_class(const spo_modeldir *md, const char *part);

/* Load the part's config.json (or scheduler_config.json, or
 * tokenizer_config.json) into *cfg; free with cJSON_Delete. The part must
 * be a present component. */
int spo_md_config(const spo_modeldir *md, const char *part, cJSON **cfg);
/* Path of the part's weights file into buf[n]. */
int spo_md_weights(const spo_modeldir *md, const char *part, char *buf, size_t n);
/* Path of dir/part/file into buf[n]; SPO_EINVAL when it is not a file. */
int spo_md_file(const spo_modeldir *md, const char *part, const char *file, char *buf, size_t n);

#endif
