/* ops.h — the op layer. Model code (UNet, VAE, CLIP) calls only these
 * functions and never knows the device: every pointer is memory of `dev`
 * (host memory for the CPU device, device memory for CUDA) obtained with
 * spo_dev_alloc. The ops themselves are listed once, in ops_list.h; this
 * header declares them from that list. The CPU implementation is fp32 with
 * BLAS sgemm (lib/ops/cpu/); the CUDA one (kernels/) fills the same table.
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
#include "ops/ops_list.h"

typedef enum { SPO_DEV_CPU = 0, SPO_DEV_CUDA = 1 } spo_devkind;

typedef struct spo_dev spo_dev;

/* ---- device ---------------------------------------------------------- */
int spo_dev_open(spo_dev **dev, spo_devkind kind, int threads); /* threads 0: all cores */
void spo_dev_close(spo_dev *dev);
spo_devkind spo_dev_kind(const spo_dev *dev);
/* the device a tool runs on when none is named: SPO_DEVICE from the
 * environment ("cpu" or "cuda") if set, else CUDA when this build has it
 * and a GPU answers, else the CPU. The first call asks the CUDA driver. */
spo_devkind spo_dev_default(void);
const char *spo_dev_name(spo_devkind kind);              /* "cpu", "cuda" */
int spo_dev_parse(const char *name, spo_devkind *kind); /* "cpu" or "cuda"; else SPO_EINVAL naming it */
float *spo_dev_alloc(spo_dev *dev, size_t n);              /* n floats, zeroed; NULL + spo_err on failure; n 0 is valid */
void spo_dev_free(spo_dev *dev, float *p);
int spo_dev_sync(spo_dev *dev);
/* spo_dev_upload, spo_dev_download, spo_dev_zero, spo_dev_copy (SPO_DEV_MEM of ops_list.h) */
#define SPO_DEV_DECLARE(name, params, args) int spo_dev_##name params;
SPO_DEV_MEM(SPO_DEV_DECLARE)
#undef SPO_DEV_DECLARE

/* ---- ops: one public function per entry of ops_list.h, e.g.
 *   int spo_linear_fwd(spo_dev *d, float *y, const float *x, const float *w, const float *b,
 *                      int M, int K, int N);
 * (shapes and meaning in the comment of each entry there) ---- */
typedef struct {
    int n, cin, h, w;    /* input (n,cin,h,w) */
    int cout, k, stride, pad;
} spo_conv;
static inline int spo_conv_ho(const spo_conv *c) { return (c->h + 2 * c->pad - c->k) / c->stride + 1; }
static inline int spo_conv_wo(const spo_conv *c) { return (c->w + 2 * c->pad - c->k) / c->stride + 1; }

typedef enum { SPO_ACT_SILU, SPO_ACT_GELU /* exact erf */, SPO_ACT_QUICK_GELU /* x*sigmoid(1.702x) */ } spo_act;

#define SPO_OP_DECLARE(name, params, args) int spo_##name params;
SPO_OPS(SPO_OP_DECLARE)
#undef SPO_OP_DECLARE

#endif
