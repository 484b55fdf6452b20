/* mkmodel_int.h — private to lib/mkmodel*.c. */
#ifndef SPO_MKMODEL_INT_H
#define SPO_MKMODEL_INT_H

#include "core/err.h"
#include "nn/mkmodel.h"

typedef struct {
    const char *unet, *vae, *text, *spm, *scheduler, *model_index; /* JSON texts */
    const char *text2;                                              /* SDXL's text_encoder_2, or NULL */
    int bos, eos;                                                   /* tokenizer special ids */
} mk_preset_t;

int spo_mk_preset(mk_preset_t *p, const char *name);

#endif
