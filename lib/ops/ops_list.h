/* ops_list.h — the one list of ops. Every op is one entry
 *
 *     X(name, (parameters), (arguments))
 *
 * and everything else is generated from this list: the public function
 * int spo_<name>(parameters) of ops.h, its wrapper in ops.c (checks the
 * device and the arguments, then calls the backend), the slot `name` of the
 * op table (ops_impl.h), the CPU prototype spo_cpu_<name> and the CPU table
 * (lib/ops/cpu/cpu_dev.c). The first parameter is always the device `d`.
 * Conventions (layouts, accumulation, aliasing) are those of ops.h. Shapes
 * are in the comment of every entry. Include ops.h (which includes this),
 * not this file. SPO_DEV_MEM below lists the device's memory functions the
 * same way. */
#ifndef SPO_OPS_LIST_H
#define SPO_OPS_LIST_H

/* clang-format off */
#define SPO_OPS(X)                                                                                                 \
    /* ---- dense ---- */                                                                                          \
    /* linear: x (M,K), w (N,K), b (N) or NULL -> y (M,N) = x w^T + b */                                           \
    X(linear_fwd, (spo_dev *d, float *y, const float *x, const float *w, const float *b, int M, int K, int N),     \
      (d, y, x, w, b, M, K, N))                                                                                    \
    /* dx (M,K) += dy w; dw (N,K) += dy^T x; db (N) += sum_m dy */                                                 \
    X(linear_bwd, (spo_dev *d, float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,   \
                   int M, int K, int N),                                                                           \
      (d, dx, dw, db, dy, x, w, M, K, N))                                                                          \
    /* ---- convolution ---- */                                                                                    \
    /* x (n,cin,h,w), w (cout,cin,k,k), b (cout) or NULL -> y (n,cout,ho,wo) */                                    \
    X(conv2d_fwd, (spo_dev *d, float *y, const float *x, const float *w, const float *b, const spo_conv *c),       \
      (d, y, x, w, b, c))                                                                                          \
    X(conv2d_bwd, (spo_dev *d, float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,   \
                   const spo_conv *c),                                                                             \
      (d, dx, dw, db, dy, x, w, c))                                                                                \
    /* ---- normalisation ---- */                                                                                  \
    /* groupnorm: x (n,c,hw), gamma/beta (c), groups g; saves mean/rstd (n,g) for backward.                        \
     * gamma NULL means 1 and beta NULL means 0 (no affine), here and in layernorm. */                             \
    X(groupnorm_fwd, (spo_dev *d, float *y, float *mean, float *rstd, const float *x, const float *gamma,          \
                      const float *beta, int n, int c, int hw, int g, float eps),                                  \
      (d, y, mean, rstd, x, gamma, beta, n, c, hw, g, eps))                                                        \
    X(groupnorm_bwd, (spo_dev *d, float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,         \
                      const float *mean, const float *rstd, const float *gamma, int n, int c, int hw, int g),      \
      (d, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, n, c, hw, g))                                               \
    /* layernorm over the last dim: x (m,c), gamma/beta (c); saves mean/rstd (m) */                                \
    X(layernorm_fwd, (spo_dev *d, float *y, float *mean, float *rstd, const float *x, const float *gamma,          \
                      const float *beta, int m, int c, float eps),                                                 \
      (d, y, mean, rstd, x, gamma, beta, m, c, eps))                                                               \
    X(layernorm_bwd, (spo_dev *d, float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,         \
                      const float *mean, const float *rstd, const float *gamma, int m, int c),                     \
      (d, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, m, c))                                                      \
    /* ---- activations (elementwise over n) ---- */                                                               \
    X(act_fwd, (spo_dev *d, spo_act a, float *y, const float *x, size_t n), (d, a, y, x, n)) /* y may equal x */    \
    X(act_bwd, (spo_dev *d, spo_act a, float *dx, const float *dy, const float *x, size_t n), (d, a, dx, dy, x, n)) \
    /* geglu: x (m, 2c) -> y (m, c) = x[:, :c] * gelu(x[:, c:]) (exact erf) */                                     \
    X(geglu_fwd, (spo_dev *d, float *y, const float *x, int m, int c), (d, y, x, m, c))                            \
    X(geglu_bwd, (spo_dev *d, float *dx, const float *dy, const float *x, int m, int c), (d, dx, dy, x, m, c))     \
    /* ---- attention ---- */                                                                                      \
    /* multi-head scaled dot-product attention, heads packed in the channel dim:                                   \
     * q (b,tq,h*dh), k and v (b,tk,h*dh) -> o (b,tq,h*dh); scale 1/sqrt(dh);                                      \
     * causal (any nonzero value) masks key j > query i. p (b,h,tq,tk) receives                                    \
     * the softmax probabilities (the backward needs them); may be NULL for inference. */                          \
    X(attention_fwd, (spo_dev *d, float *o, float *p, const float *q, const float *k, const float *v, int b,       \
                      int tq, int tk, int h, int dh, int causal),                                                  \
      (d, o, p, q, k, v, b, tq, tk, h, dh, causal))                                                                \
    X(attention_bwd, (spo_dev *d, float *dq, float *dk, float *dv, const float *dout, const float *p,              \
                      const float *q, const float *k, const float *v, int b, int tq, int tk, int h, int dh),       \
      (d, dq, dk, dv, dout, p, q, k, v, b, tq, tk, h, dh))                                                         \
    /* ---- shape and elementwise ---- */                                                                          \
    /* nearest 2x: x (n,c,h,w) -> y (n,c,2h,2w); bwd sums each 2x2 block */                                        \
    X(upsample2x_fwd, (spo_dev *d, float *y, const float *x, int n, int c, int h, int w), (d, y, x, n, c, h, w))   \
    X(upsample2x_bwd, (spo_dev *d, float *dx, const float *dy, int n, int c, int h, int w),                        \
      (d, dx, dy, n, c, h, w))                                                                                     \
    /* channel concat: a (n,ca,hw), b (n,cb,hw) -> y (n,ca+cb,hw); bwd splits */                                   \
    X(concat_fwd, (spo_dev *d, float *y, const float *a, const float *b, int n, int ca, int cb, int hw),           \
      (d, y, a, b, n, ca, cb, hw))                                                                                 \
    X(concat_bwd, (spo_dev *d, float *da, float *db, const float *dy, int n, int ca, int cb, int hw),              \
      (d, da, db, dy, n, ca, cb, hw))                                                                              \
    /* transpose the last two dims: x (n,r,c) -> y (n,c,r); NCHW <-> (B,T,C). Its own backward. */                 \
    X(transpose_fwd, (spo_dev *d, float *y, const float *x, int n, int r, int c), (d, y, x, n, r, c))              \
    /* y = a + b (n); y may alias a or b. Backward is the identity (accumulate dy). */                             \
    X(add_fwd, (spo_dev *d, float *y, const float *a, const float *b, size_t n), (d, y, a, b, n))                  \
    /* y += alpha * x (n) */                                                                                       \
    X(axpy, (spo_dev *d, float *y, float alpha, const float *x, size_t n), (d, y, alpha, x, n))                    \
    /* y (n,c,hw) += b (n,c) broadcast over hw (time embedding into a resnet);                                     \
     * bwd: db (n,c) += sum_hw dy */                                                                               \
    X(add_nc_fwd, (spo_dev *d, float *y, const float *b, int n, int c, int hw), (d, y, b, n, c, hw))               \
    X(add_nc_bwd, (spo_dev *d, float *db, const float *dy, int n, int c, int hw), (d, db, dy, n, c, hw))           \
    /* y = x * s (n); y may equal x */                                                                             \
    X(scale, (spo_dev *d, float *y, const float *x, float s, size_t n), (d, y, x, s, n))                           \
    /* ---- embeddings ---- */                                                                                     \
    /* sinusoidal embedding: t (n) -> y (n, dim); half = dim/2,                                                    \
     * freq_i = exp(-ln(max_period) * i / (half - shift)), arg = t * freq_i;                                       \
     * flip_sin_to_cos nonzero gives [cos, sin], 0 gives [sin, cos]. diffusers SD:                                 \
     * max_period 10000, shift 0 (downscale_freq_shift=0 gives divisor half),                                      \
     * flip 1. No backward (t is not trained). */                                                                  \
    X(timestep_embed, (spo_dev *d, float *y, const float *t, int n, int dim, int flip_sin_to_cos, float shift,     \
                       float max_period),                                                                          \
      (d, y, t, n, dim, flip_sin_to_cos, shift, max_period))                                                       \
    /* embedding gather: table (vocab, dim), ids (n) HOST int32 -> y (n, dim),                                     \
     * y[i] = table[ids[i]]; n may be 0. An id outside [0, vocab) is SPO_EINVAL                                    \
     * naming it (checked before the backend runs). The ids live on the host                                       \
     * because they come from the tokenizer. */                                                                    \
    X(embed_fwd, (spo_dev *d, float *y, const float *table, const int32_t *ids, int n, int dim, int vocab),        \
      (d, y, table, ids, n, dim, vocab))                                                                           \
    /* ---- adaLN modulation (DiT; the step-aware preference model) ----                                          \
     * Per-sample vectors come as rows of a (b, ld) matrix (chunks of one                                          \
     * Linear's output), ld >= c: row i of shift is shift[i*ld .. i*ld + c), and                                   \
     * so on. No backward yet (nothing trains them). */                                                            \
    /* modulate: x (b,t,c) -> y[i,j,:] = x[i,j,:] * (1 + scale[i,:]) + shift[i,:]; y may equal x */               \
    X(modulate_fwd, (spo_dev *d, float *y, const float *x, const float *shift, const float *scale, int ld, int b,  \
                     int t, int c),                                                                                \
      (d, y, x, shift, scale, ld, b, t, c))                                                                        \
    /* gated residual: x (b,t,c) += gate[i,:] * y[i,j,:], gate rows of stride ld */                                \
    X(gate_add_fwd, (spo_dev *d, float *x, const float *y, const float *gate, int ld, int b, int t, int c),        \
      (d, x, y, gate, ld, b, t, c))

/* The device's memory functions that have a table slot, as a list too:
 * int spo_dev_<name>(parameters) (checked by lib/ops/dev.c), the slot
 * `name`, the CPU function spo_cpu_<name>. n floats; n 0 does nothing. */
#define SPO_DEV_MEM(X)                                                                                             \
    X(upload, (spo_dev *d, float *dst, const float *host, size_t n), (d, dst, host, n))     /* host -> device */   \
    X(download, (spo_dev *d, float *host, const float *src, size_t n), (d, host, src, n))   /* device -> host */   \
    X(zero, (spo_dev *d, float *p, size_t n), (d, p, n))                                                           \
    X(copy, (spo_dev *d, float *dst, const float *src, size_t n), (d, dst, src, n)) /* device -> device, may overlap */
/* clang-format on */

#endif
