/* vae_int.h — the decoder's internal layout, shared by vae.c (config and
 * parameters) and vae_decode.c (forward). Not a public header. */
#ifndef SPO_VAE_INT_H
#define SPO_VAE_INT_H

#include "nn/params.h"
#include "nn/vae.h"

typedef struct {                 /* ResnetBlock2D without time embedding */
    int cin, cout;
    float *n1w, *n1b, *c1w, *c1b; /* norm1 (cin), conv1 (cout,cin,3,3) */
    float *n2w, *n2b, *c2w, *c2b; /* norm2 (cout), conv2 (cout,cout,3,3) */
    float *scw, *scb;            /* conv_shortcut (cout,cin,1,1), NULL when cin == cout */
} vae_resnet;

typedef struct {                 /* mid-block Attention: one head of width c */
    float *gnw, *gnb;            /* group_norm (c) */
    float *qw, *qb, *kw, *kb, *vw, *vb, *ow, *ob; /* (c,c) and (c) */
} vae_attn;

typedef struct {
    vae_resnet *res;             /* layers_per_block + 1 */
    float *upw, *upb;            /* upsamplers.0.conv (c,c,3,3), NULL in the last block */
} vae_up;

struct spo_vae {
    spo_vae_config cfg;
    spo_dev *dev;
    spo_params ps;
    float *pqw, *pqb;            /* post_quant_conv (lat,lat,1,1) */
    float *ciw, *cib;            /* decoder.conv_in (ch[-1],lat,3,3) */
    vae_resnet mid[2];
    vae_attn attn;
    vae_up up[SPO_VAE_MAX_BLOCKS];
    float *now, *nob, *cow, *cob; /* conv_norm_out (ch[0]), conv_out (out,ch[0],3,3) */
    /* activations for one image, sized for the largest (h, w) seen */
    float *arena;
    size_t arena_n;
    int ah, aw;
    float *x, *hb, *t;           /* three buffers of the largest activation */
    float *aq, *ak, *av, *ao;    /* attention (hw, c) each at the mid-block size */
    float *in;                   /* one latent (latent, h, w), for host input */
    float *mean, *rstd;          /* group norm statistics (groups) */
};

#endif
