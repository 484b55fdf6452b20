/* ops_impl.h — private: the device struct and the op table behind ops.h.
 *
 * Each backend (CPU: lib/ops/cpu/; CUDA: kernels/) fills one
 * spo_ops_table: the device functions, then one slot per entry of
 * ops_list.h with exactly the signature of the public function. The
 * public functions (lib/ops/dev.c, lib/ops/ops.c) check the arguments once for every backend (pointers, dimensions >= 1, overflow of
 * element counts) and then call the table, so a backend may assume valid
 * arguments. An entry left NULL makes the public function fail with
 * SPO_EINVAL "... not implemented on <backend>", which lets a backend be
 * filled in op by op. */
#ifndef SPO_OPS_IMPL_H
#define SPO_OPS_IMPL_H

#ifdef __cplusplus
extern "C" { /* also for ops.h and err.h, which have no guards of their own */
#endif

#include "ops/ops.h"

typedef struct spo_ops_table spo_ops_table;
struct spo_cpu_state; /* lib/ops/cpu/cpu_pool.c */

struct spo_dev {
    spo_devkind kind;
    int threads;              /* CPU threads for BLAS and the CPU pool (>= 1) */
    const spo_ops_table *ops; /* the backend */
    void *impl;               /* backend state (CPU: lib/ops/cpu/cpu_pool.c; CUDA: stream, cuBLAS handle) */
};

struct spo_ops_table {
    const char *name; /* "cpu", "cuda" */
    /* device: open fills d->impl (may be NULL), close frees it */
    int (*open)(spo_dev *d);
    void (*close)(spo_dev *d);
    float *(*alloc)(spo_dev *d, size_t n); /* n >= 1 floats, zeroed, 64-byte aligned */
    void (*free)(spo_dev *d, float *p);
    int (*sync)(spo_dev *d);
#define SPO_OP_SLOT(name, params, args) int(*name) params;
    SPO_DEV_MEM(SPO_OP_SLOT) /* upload, download, zero, copy */

    /* ops: one slot per entry of ops_list.h, signatures as in ops.h */
    SPO_OPS(SPO_OP_SLOT)
#undef SPO_OP_SLOT
};

/* A backend's table: its name, its five device functions, then
 * ENTRY(name, params, args) of each SPO_DEV_MEM function and SPO_OPS op,
 * which gives ".name = <the backend's function>," */
#define SPO_OPS_TABLE(NAME, OPEN, CLOSE, ALLOC, FREE, SYNC, ENTRY)                                                   \
    {.name = NAME, .open = OPEN, .close = CLOSE, .alloc = ALLOC, .free = FREE, .sync = SYNC,                          \
     SPO_DEV_MEM(ENTRY) SPO_OPS(ENTRY)}

extern const spo_ops_table spo_cpu_ops;
/* the CPU backend in guard mode (lib/ops/cpu/cpu_guard.c): device buffers
 * are PROT_NONE outside the table's functions; chosen by spo_dev_open for
 * SPO_DEV_CPU when the environment has SPO_DEV_GUARD=1 (tests only) */
extern const spo_ops_table spo_cpu_guard_ops;
#ifdef SPO_HAVE_CUDA
extern const spo_ops_table spo_cuda_ops; /* kernels/cuda_dev.cu */
int spo_cuda_device_count(void);          /* GPUs that answer; 0 without a driver or on any error */
/* the CUDA op of an entry, once its kernel exists: int spo_cuda_<name>(parameters) */
#define SPO_OP_CUDA_PROTO(name, params, args) int spo_cuda_##name params;
SPO_OPS(SPO_OP_CUDA_PROTO)
#undef SPO_OP_CUDA_PROTO
#endif

/* ---- CPU backend (lib/ops/cpu/): fp32, BLAS sgemm, and a thread pool
 * (lib/ops/cpu/cpu_pool.c, d->impl) for the other ops. Arguments were checked by
 * the caller. ---- */
int spo_cpu_open(spo_dev *d);
void spo_cpu_close(spo_dev *d);
float *spo_cpu_alloc(spo_dev *d, size_t n);
void spo_cpu_free(spo_dev *d, float *p);
int spo_cpu_sync(spo_dev *d);

/* the CPU function of each entry of ops_list.h: int spo_cpu_<name>(parameters) */
#define SPO_OP_CPU_PROTO(name, params, args) int spo_cpu_##name params;
SPO_DEV_MEM(SPO_OP_CPU_PROTO)
SPO_OPS(SPO_OP_CPU_PROTO)
#undef SPO_OP_CPU_PROTO

/* blocking limits of the CPU ops, in floats: the conv column buffer of
 * lib/ops/cpu/cpu_conv.c or the padded input and output band of
 * lib/ops/cpu/cpu_convs.c (spo_cpu_col_max, defined with the scratch in
 * lib/ops/cpu/cpu_pool.c, which both use), and the attention score block
 * (lib/ops/cpu/cpu_attn.c). Tests lower them (and set spo_cpu_shift_force)
 * to exercise the other paths; nothing else should write them. */
extern size_t spo_cpu_col_max;
extern size_t spo_cpu_attn_max;
extern int spo_cpu_shift_force; /* 1: lib/ops/cpu/cpu_convs.c serves every stride-1 k > 1 convolution */

/* stride-1 convolution as k*k shifted products (lib/ops/cpu/cpu_convs.c): _ok says
 * whether it serves c (stride 1, k > 1, images large against cout, cin not
 * tiny); bwd_dx is the backward to the input only */
int spo_cpu_conv_shift_ok(const spo_conv *c);
int spo_cpu_conv_shift_fwd(spo_dev *d, float *y, const float *x, const float *w, const float *b, const spo_conv *c);
int spo_cpu_conv_shift_bwd_dx(spo_dev *d, float *dx, const float *dy, const float *w, const spo_conv *c);

/* scratch for a CPU op: n floats (not zeroed), NULL + spo_err on failure;
 * the device's cached buffer when it is free (lib/ops/cpu/cpu_pool.c). Give it
 * back with spo_cpu_scratch_put (NULL is fine); one at a time per op. */
float *spo_cpu_scratch(spo_dev *d, size_t n);
void spo_cpu_scratch_put(spo_dev *d, float *p);

/* the thread pool (lib/ops/cpu/cpu_pool.c). spo_cpu_parallel_for calls
 * fn(ctx, lo, hi, worker) for the chunks [lo, hi) of [0, n), grain items
 * each (the last may be shorter), on up to spo_cpu_workers(d) threads, and
 * returns when all are done; worker in [0, spo_cpu_workers(d)) names the
 * calling thread (for per-thread scratch). The chunks do not depend on the
 * thread count; fn must write disjoint outputs per chunk. OpenBLAS runs one
 * thread inside a job, so fn may call sgemm. */
typedef void (*spo_cpu_task)(void *ctx, size_t lo, size_t hi, int worker);
struct spo_cpu_state *spo_cpu_state_new(int threads); /* the device's d->impl */
void spo_cpu_state_free(struct spo_cpu_state *st);
int spo_cpu_workers(const spo_dev *d);
void spo_cpu_parallel_for(spo_dev *d, size_t n, size_t grain, spo_cpu_task fn, void *ctx);
/* elements per task of the element- and row-wise ops: far above the cost of
 * a hand-over */
#define SPO_CPU_CHUNK 16384
/* a row-wise op: row(ctx, i) for each row i of m rows of c elements, through
 * spo_cpu_parallel_for in chunks of about SPO_CPU_CHUNK elements; SPO_OK */
typedef void (*spo_cpu_row)(const void *ctx, size_t i);
int spo_cpu_rows(spo_dev *d, size_t m, size_t c, spo_cpu_row row, const void *ctx);
/* the grain for items of `per` elements each: chunk / per items, at least 1 */
static inline size_t spo_cpu_grain(size_t chunk, size_t per)
{
    size_t r = chunk / (per ? per : 1);
    return r ? r : 1;
}

/* exp and erf of arrays (lib/ops/cpu/cpu_vexp.c, lib/ops/cpu/cpu_act.c), as spo_expf and
 * spo_erff of lib/ops/cpu/cpu_math.h: y[i] = exp(x[i] - s), exp(x[i]), erf(x[i]);
 * y may equal x */
void spo_cpu_exp_shift_n(float *y, const float *x, float s, size_t n);
void spo_cpu_expf_n(float *y, const float *x, size_t n);
void spo_cpu_erff_n(float *y, const float *x, size_t n);

#ifdef __cplusplus
}
#endif

#endif
