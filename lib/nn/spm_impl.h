/* spm_int.h — private: the step-aware preference model's struct, shared by
 * lib/nn/spm.c (config, loading, text, scores) and lib/nn/spm_vision.c (the
 * time-conditioned vision tower). */
#ifndef SPO_SPM_INT_H
#define SPO_SPM_INT_H

#include "nn/clip_layer.h"
#include "nn/clip_text.h"
#include "nn/params.h"
#include "nn/spm.h"

#define SPM_CHUNK 8 /* images per pass through the vision tower */

typedef struct {
    spo_clip_layer L;
    float *modw, *modb; /* adaLN_modulation.1: (6W, W), (6W) */
} spm_layer;

struct spo_spm {
    spo_spm_config cfg;
    spo_dev *dev;
    spo_clip_text *text;       /* the text tower, its own parameter table */
    spo_params ps;             /* everything else */
    /* vision (W = width, N = (image_size/patch)^2 patches, T = N + 1) */
    float *cls, *patchw, *pos; /* class_embedding (W), patch_embedding (W,3,P,P), position_embedding (T,W) */
    float *prew, *preb;        /* pre_layrnorm (W) */
    spm_layer *layer;          /* cfg.layers */
    float *postw, *postb;      /* post_layernorm (W) */
    float *fmodw, *fmodb;      /* vision_model.adaLN_modulation.1: (2W, W), (2W) */
    float *t0w, *t0b, *t2w, *t2b; /* t_embedder.mlp.0 (W,256), (W); mlp.2 (W,W), (W) */
    float *vproj, *tproj;      /* visual_projection (proj, W), text_projection (proj, Wt) */
    float *logit;              /* logit_scale (1) */
    float logit_host;
    /* vision activations for up to varena_n images; text for up to tarena_n prompts */
    float *varena, *tarena;
    int varena_n, tarena_n;
};

/* The weight file as a tensor source: a PyTorch .bin (zip, through
 * lib/ptbin) or a safetensors file, told apart by the first bytes. */
typedef struct {
    spo_tensor_src src;
    void *h;
    int kind; /* 0 safetensors, 1 ptbin */
} spm_src;
int spo_spm_src_open(spm_src *s, const char *path);
void spo_spm_src_close(spm_src *s);

/* Declare the vision tower's tensors (and t_embedder, projections, logit_scale) in m->ps. */
int spo_spm_vision_declare(spo_spm *m);
/* pixels (n,3,S,S) and t (n) device memory -> embeds (n, proj) device memory, n <= SPM_CHUNK */
int spo_spm_vision_fwd(spo_spm *m, float *embeds, const float *pixels, const float *t, int n);
/* Where the inputs (pixels (n,3,S,S), t (n)) and the output (n, proj) of
 * n images live in m->varena (pass them to spo_spm_vision_fwd). */
void spo_spm_vision_io(spo_spm *m, int n, float **pixels, float **t, float **out);
/* device floats spo_spm_vision_fwd needs for n images (inputs and output included) */
size_t spo_spm_vision_arena(const spo_spm_config *c, int n);

#endif
