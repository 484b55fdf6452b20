/* ops_impl.h — private: the device struct and the op table behind ops.h.
 *
 * Each backend (CPU: lib/cpu_xxx.c; CUDA: kernels/) fills one
 * spo_ops_table whose entries have exactly the signatures of the public
 * functions in ops.h. The public functions (lib/dev.c, lib/ops.c) check the
 * arguments once for every backend (pointers, dimensions >= 1, overflow of
 * element counts) and then call the table, so a backend may assume valid
 * arguments. An entry left NULL makes the public function fail with
 * SPO_EINVAL "... not implemented on <backend>", which lets a backend be
 * filled in op by op. */
#ifndef SPO_OPS_IMPL_H
#define SPO_OPS_IMPL_H

#ifdef __cplusplus
extern "C" { /* also for ops.h and err.h, which have no guards of their own */
#endif

#include "ops.h"

typedef struct spo_ops_table spo_ops_table;

struct spo_dev {
    spo_devkind kind;
    int threads;              /* CPU threads given to BLAS (>= 1) */
    const spo_ops_table *ops; /* the backend */
    void *impl;               /* backend state (CUDA: stream, cuBLAS handle) */
};

struct spo_ops_table {
    const char *name; /* "cpu", "cuda" */
    /* device: open fills d->impl (may be NULL), close frees it */
    int (*open)(spo_dev *d);
    void (*close)(spo_dev *d);
    float *(*alloc)(spo_dev *d, size_t n); /* n >= 1 floats, zeroed, 64-byte aligned */
    void (*free)(spo_dev *d, float *p);
    int (*upload)(spo_dev *d, float *dst, const float *host, size_t n);
    int (*download)(spo_dev *d, float *host, const float *src, size_t n);
    int (*zero)(spo_dev *d, float *p, size_t n);
    int (*copy)(spo_dev *d, float *dst, const float *src, size_t n);
    int (*sync)(spo_dev *d);

    /* ops: signatures as in ops.h */
    int (*linear_fwd)(spo_dev *d, float *y, const float *x, const float *w, const float *b, int M, int K, int N);
    int (*linear_bwd)(spo_dev *d, float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                      int M, int K, int N);
    int (*conv2d_fwd)(spo_dev *d, float *y, const float *x, const float *w, const float *b, const spo_conv *c);
    int (*conv2d_bwd)(spo_dev *d, float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                      const spo_conv *c);
    int (*groupnorm_fwd)(spo_dev *d, float *y, float *mean, float *rstd, const float *x, const float *gamma,
                         const float *beta, int n, int c, int hw, int g, float eps);
    int (*groupnorm_bwd)(spo_dev *d, float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                         const float *mean, const float *rstd, const float *gamma, int n, int c, int hw, int g);
    int (*layernorm_fwd)(spo_dev *d, float *y, float *mean, float *rstd, const float *x, const float *gamma,
                         const float *beta, int m, int c, float eps);
    int (*layernorm_bwd)(spo_dev *d, float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                         const float *mean, const float *rstd, const float *gamma, int m, int c);
    int (*act_fwd)(spo_dev *d, spo_act a, float *y, const float *x, size_t n);
    int (*act_bwd)(spo_dev *d, spo_act a, float *dx, const float *dy, const float *x, size_t n);
    int (*geglu_fwd)(spo_dev *d, float *y, const float *x, int m, int c);
    int (*geglu_bwd)(spo_dev *d, float *dx, const float *dy, const float *x, int m, int c);
    int (*attention_fwd)(spo_dev *d, float *o, float *p, const float *q, const float *k, const float *v, int b,
                         int tq, int tk, int h, int dh, int causal);
    int (*attention_bwd)(spo_dev *d, float *dq, float *dk, float *dv, const float *dout, const float *p,
                         const float *q, const float *k, const float *v, int b, int tq, int tk, int h, int dh);
    int (*upsample2x_fwd)(spo_dev *d, float *y, const float *x, int n, int c, int h, int w);
    int (*upsample2x_bwd)(spo_dev *d, float *dx, const float *dy, int n, int c, int h, int w);
    int (*concat_fwd)(spo_dev *d, float *y, const float *a, const float *b, int n, int ca, int cb, int hw);
    int (*concat_bwd)(spo_dev *d, float *da, float *db, const float *dy, int n, int ca, int cb, int hw);
    int (*transpose_fwd)(spo_dev *d, float *y, const float *x, int n, int r, int c);
    int (*add_fwd)(spo_dev *d, float *y, const float *a, const float *b, size_t n);
    int (*axpy)(spo_dev *d, float *y, float alpha, const float *x, size_t n);
    int (*add_nc_fwd)(spo_dev *d, float *y, const float *b, int n, int c, int hw);
    int (*add_nc_bwd)(spo_dev *d, float *db, const float *dy, int n, int c, int hw);
    int (*scale)(spo_dev *d, float *y, const float *x, float s, size_t n);
    int (*timestep_embed)(spo_dev *d, float *y, const float *t, int n, int dim, int flip_sin_to_cos, float shift,
                          float max_period);
};

extern const spo_ops_table spo_cpu_ops;
#ifdef SPO_HAVE_CUDA
extern const spo_ops_table spo_cuda_ops; /* kernels/cuda_dev.cu */
#endif

/* ---- CPU backend (lib/cpu_*.c): fp32, BLAS sgemm, single-threaded
 * outside BLAS. Arguments were checked by the caller. ---- */
int spo_cpu_open(spo_dev *d);
float *spo_cpu_alloc(spo_dev *d, size_t n);
void spo_cpu_free(spo_dev *d, float *p);
int spo_cpu_upload(spo_dev *d, float *dst, const float *host, size_t n);
int spo_cpu_download(spo_dev *d, float *host, const float *src, size_t n);
int spo_cpu_zero(spo_dev *d, float *p, size_t n);
int spo_cpu_copy(spo_dev *d, float *dst, const float *src, size_t n);
int spo_cpu_sync(spo_dev *d);

int spo_cpu_linear_fwd(spo_dev *d, float *y, const float *x, const float *w, const float *b, int M, int K, int N);
int spo_cpu_linear_bwd(spo_dev *d, float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                       int M, int K, int N);
int spo_cpu_conv2d_fwd(spo_dev *d, float *y, const float *x, const float *w, const float *b, const spo_conv *c);
int spo_cpu_conv2d_bwd(spo_dev *d, float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                       const spo_conv *c);
int spo_cpu_groupnorm_fwd(spo_dev *d, float *y, float *mean, float *rstd, const float *x, const float *gamma,
                          const float *beta, int n, int c, int hw, int g, float eps);
int spo_cpu_groupnorm_bwd(spo_dev *d, float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                          const float *mean, const float *rstd, const float *gamma, int n, int c, int hw, int g);
int spo_cpu_layernorm_fwd(spo_dev *d, float *y, float *mean, float *rstd, const float *x, const float *gamma,
                          const float *beta, int m, int c, float eps);
int spo_cpu_layernorm_bwd(spo_dev *d, float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                          const float *mean, const float *rstd, const float *gamma, int m, int c);
int spo_cpu_act_fwd(spo_dev *d, spo_act a, float *y, const float *x, size_t n);
int spo_cpu_act_bwd(spo_dev *d, spo_act a, float *dx, const float *dy, const float *x, size_t n);
int spo_cpu_geglu_fwd(spo_dev *d, float *y, const float *x, int m, int c);
int spo_cpu_geglu_bwd(spo_dev *d, float *dx, const float *dy, const float *x, int m, int c);
int spo_cpu_attention_fwd(spo_dev *d, float *o, float *p, const float *q, const float *k, const float *v, int b,
                          int tq, int tk, int h, int dh, int causal);
int spo_cpu_attention_bwd(spo_dev *d, float *dq, float *dk, float *dv, const float *dout, const float *p,
                          const float *q, const float *k, const float *v, int b, int tq, int tk, int h, int dh);
int spo_cpu_upsample2x_fwd(spo_dev *d, float *y, const float *x, int n, int c, int h, int w);
int spo_cpu_upsample2x_bwd(spo_dev *d, float *dx, const float *dy, int n, int c, int h, int w);
int spo_cpu_concat_fwd(spo_dev *d, float *y, const float *a, const float *b, int n, int ca, int cb, int hw);
int spo_cpu_concat_bwd(spo_dev *d, float *da, float *db, const float *dy, int n, int ca, int cb, int hw);
int spo_cpu_transpose_fwd(spo_dev *d, float *y, const float *x, int n, int r, int c);
int spo_cpu_add_fwd(spo_dev *d, float *y, const float *a, const float *b, size_t n);
int spo_cpu_axpy(spo_dev *d, float *y, float alpha, const float *x, size_t n);
int spo_cpu_add_nc_fwd(spo_dev *d, float *y, const float *b, int n, int c, int hw);
int spo_cpu_add_nc_bwd(spo_dev *d, float *db, const float *dy, int n, int c, int hw);
int spo_cpu_scale(spo_dev *d, float *y, const float *x, float s, size_t n);
int spo_cpu_timestep_embed(spo_dev *d, float *y, const float *t, int n, int dim, int flip_sin_to_cos, float shift,
                           float max_period);

/* blocking limits of the CPU ops, in floats: the conv column buffer and
 * the attention score block (lib/cpu_conv.c, lib/cpu_attn.c). Tests lower
 * them to exercise the blocked paths; nothing else should write them. */
extern size_t spo_cpu_col_max;
extern size_t spo_cpu_attn_max;

/* scratch for the CPU ops: n floats (not zeroed), NULL + spo_err on failure */
float *spo_cpu_scratch(size_t n);

#ifdef __cplusplus
}
#endif

#endif
