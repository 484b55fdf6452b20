/* ops.h — the op layer. Model code (UNet, VAE, CLIP) calls only these
 * functions and never knows the device: every pointer is memory of `dev`
 * (host memory for the CPU device, device memory for CUDA) obtained with
 * spo_dev_alloc. The CPU implementation is fp32 with BLAS sgemm
 * (lib/cpu_*.c); the CUDA one (kernels/ with cuBLAS) fills the same table.
 *
 * Conventions (as llm.c):
 *  - layouts are row-major; images NCHW; token sequences (B,T,C).
 *  - forward writes its output (=), never reads it first.
 *  - backward ACCUMULATES (+=) into every gradient it is given (dx, dw, db),
 *    so residual branches just add; a NULL gradient pointer is skipped.
 *  - shapes are given in the comment of every function; every int dimension
 *    must be >= 1 (size_t counts may be 0), else SPO_EINVAL.
 *  - outputs do not alias inputs unless a comment says they may.
 *  - functions return SPO_OK or an error code with spo_err() set (lib/core/err.h).
 */
#ifndef SPO_OPS_H
#define SPO_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef enum { SPO_DEV_CPU = 0, SPO_DEV_CUDA = 1 } spo_devkind;

typedef struct spo_dev spo_dev;

/* ---- device ---------------------------------------------------------- */
int spo_dev_open(spo_dev **dev, spo_devkind kind, int threads); /* threads 0: all cores */
void spo_dev_close(spo_dev *dev);
spo_devkind spo_dev_kind(const spo_dev *dev);
float *spo_dev_alloc(spo_dev *dev, size_t n);              /* n floats, zeroed; NULL + spo_err on failure; n 0 is valid */
void spo_dev_free(spo_dev *dev, float *p);
int spo_dev_upload(spo_dev *dev, float *dst, const float *host, size_t n);
int spo_dev_download(spo_dev *dev, float *host, const float *src, size_t n);
int spo_dev_zero(spo_dev *dev, float *p, size_t n);
int spo_dev_copy(spo_dev *dev, float *dst, const float *src, size_t n);
int spo_dev_sync(spo_dev *dev);

/* ---- dense ----------------------------------------------------------- */
/* linear: x (M,K), w (N,K), b (N) or NULL -> y (M,N) = x w^T + b */
int spo_linear_fwd(spo_dev *d, float *y, const float *x, const float *w, const float *b, int M, int K, int N);
/* dx (M,K) += dy w; dw (N,K) += dy^T x; db (N) += sum_m dy */
int spo_linear_bwd(spo_dev *d, float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                   int M, int K, int N);

/* ---- convolution ------------------------------------------------------ */
typedef struct {
    int n, cin, h, w;    /* input (n,cin,h,w) */
    int cout, k, stride, pad;
} spo_conv;
static inline int spo_conv_ho(const spo_conv *c) { return (c->h + 2 * c->pad - c->k) / c->stride + 1; }
static inline int spo_conv_wo(const spo_conv *c) { return (c->w + 2 * c->pad - c->k) / c->stride + 1; }
/* x (n,cin,h,w), w (cout,cin,k,k), b (cout) or NULL -> y (n,cout,ho,wo) */
int spo_conv2d_fwd(spo_dev *d, float *y, const float *x, const float *w, const float *b, const spo_conv *c);
int spo_conv2d_bwd(spo_dev *d, float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                   const spo_conv *c);

/* ---- normalisation ---------------------------------------------------- */
/* groupnorm: x (n,c,hw), gamma/beta (c), groups g; saves mean/rstd (n,g) for backward.
 * gamma NULL means 1 and beta NULL means 0 (no affine), here and in layernorm. */
int spo_groupnorm_fwd(spo_dev *d, float *y, float *mean, float *rstd, const float *x, const float *gamma,
                      const float *beta, int n, int c, int hw, int g, float eps);
int spo_groupnorm_bwd(spo_dev *d, float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                      const float *mean, const float *rstd, const float *gamma, int n, int c, int hw, int g);
/* layernorm over the last dim: x (m,c), gamma/beta (c); saves mean/rstd (m) */
int spo_layernorm_fwd(spo_dev *d, float *y, float *mean, float *rstd, const float *x, const float *gamma,
                      const float *beta, int m, int c, float eps);
int spo_layernorm_bwd(spo_dev *d, float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                      const float *mean, const float *rstd, const float *gamma, int m, int c);

/* ---- activations (elementwise over n) --------------------------------- */
typedef enum { SPO_ACT_SILU, SPO_ACT_GELU /* exact erf */, SPO_ACT_QUICK_GELU /* x*sigmoid(1.702x) */ } spo_act;
int spo_act_fwd(spo_dev *d, spo_act a, float *y, const float *x, size_t n);      /* y may equal x */
int spo_act_bwd(spo_dev *d, spo_act a, float *dx, const float *dy, const float *x, size_t n);
/* geglu: x (m, 2c) -> y (m, c) = x[:, :c] * gelu(x[:, c:]) (exact erf) */
int spo_geglu_fwd(spo_dev *d, float *y, const float *x, int m, int c);
int spo_geglu_bwd(spo_dev *d, float *dx, const float *dy, const float *x, int m, int c);

/* ---- attention ---------------------------------------------------------- */
/* multi-head scaled dot-product attention, heads packed in the channel dim:
 * q (b,tq,h*dh), k and v (b,tk,h*dh) -> o (b,tq,h*dh); scale 1/sqrt(dh);
 * causal masks key j > query i. p (b,h,tq,tk) receives the softmax
 * probabilities (the backward needs them); may be NULL for inference. */
int spo_attention_fwd(spo_dev *d, float *o, float *p, const float *q, const float *k, const float *v, int b, int tq,
                      int tk, int h, int dh, int causal);
int spo_attention_bwd(spo_dev *d, float *dq, float *dk, float *dv, const float *dout, const float *p, const float *q,
                      const float *k, const float *v, int b, int tq, int tk, int h, int dh);

/* ---- shape and elementwise ---------------------------------------------- */
/* nearest 2x: x (n,c,h,w) -> y (n,c,2h,2w); bwd sums each 2x2 block */
int spo_upsample2x_fwd(spo_dev *d, float *y, const float *x, int n, int c, int h, int w);
int spo_upsample2x_bwd(spo_dev *d, float *dx, const float *dy, int n, int c, int h, int w);
/* channel concat: a (n,ca,hw), b (n,cb,hw) -> y (n,ca+cb,hw); bwd splits */
int spo_concat_fwd(spo_dev *d, float *y, const float *a, const float *b, int n, int ca, int cb, int hw);
int spo_concat_bwd(spo_dev *d, float *da, float *db, const float *dy, int n, int ca, int cb, int hw);
/* transpose the last two dims: x (n,r,c) -> y (n,c,r); NCHW <-> (B,T,C). Its own backward. */
int spo_transpose_fwd(spo_dev *d, float *y, const float *x, int n, int r, int c);
/* y = a + b (n); y may alias a or b. Backward is the identity (accumulate dy). */
int spo_add_fwd(spo_dev *d, float *y, const float *a, const float *b, size_t n);
/* y += alpha * x (n) */
int spo_axpy(spo_dev *d, float *y, float alpha, const float *x, size_t n);
/* y (n,c,hw) += b (n,c) broadcast over hw (time embedding into a resnet);
 * bwd: db (n,c) += sum_hw dy */
int spo_add_nc_fwd(spo_dev *d, float *y, const float *b, int n, int c, int hw);
int spo_add_nc_bwd(spo_dev *d, float *db, const float *dy, int n, int c, int hw);
/* y = x * s (n); y may equal x */
int spo_scale(spo_dev *d, float *y, const float *x, float s, size_t n);
/* sinusoidal embedding: t (n) -> y (n, dim); half = dim/2,
 * freq_i = exp(-ln(max_period) * i / (half - shift)), arg = t * freq_i;
 * flip_sin_to_cos 1 gives [cos, sin], 0 gives [sin, cos]. diffusers SD:
 * max_period 10000, shift 0 (downscale_freq_shift=0 gives divisor half),
 * flip 1. No backward (t is not trained). */
int spo_timestep_embed(spo_dev *d, float *y, const float *t, int n, int dim, int flip_sin_to_cos, float shift,
                       float max_period);

#endif
