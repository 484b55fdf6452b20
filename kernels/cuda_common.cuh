// cuda_common.cuh — private to kernels/: the CUDA backend's device state
// (d->impl), error checks, launch sizes, row-major cuBLAS products and the
// block reductions the kernels share.
//
// Every kernel runs on the legacy default stream, as do the cuBLAS calls
// (the handle keeps stream 0) and the memory functions of cuda_dev.cu, so
// ops are ordered as they are called and a scratch buffer can be reused by
// the next op. Arguments were checked by lib/ops/ops.c (ops_impl.h).
// fp32 throughout; cuBLAS in pedantic math mode (no TF32, no reduced
// precision), so products round as fp32 sgemm does on the CPU.
#ifndef SPO_CUDA_COMMON_CUH
#define SPO_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/ops_impl.h"

// the backend state behind d->impl
struct spo_cuda_state {
    cublasHandle_t blas;
    void *scratch; // grow-only buffer for one op at a time
    size_t scratch_bytes;
};

static inline spo_cuda_state *spo_cu_state(spo_dev *d) { return (spo_cuda_state *)d->impl; }
static inline cublasHandle_t spo_cu_blas(spo_dev *d) { return spo_cu_state(d)->blas; }

// scratch of `bytes` bytes for the op `fn`, valid until the next call;
// NULL + spo_err (naming fn and the size) on failure (cuda_dev.cu)
void *spo_cu_scratch(spo_dev *d, size_t bytes, const char *fn);

// SPO_EIO naming the op and the CUDA error
int spo_cu_fail(const char *fn, cudaError_t e);
int spo_cu_blas_fail(const char *fn, cublasStatus_t s);

// after a launch: the launch's error, if any
#define SPO_CU_LAUNCHED(fn)                                                                                        \
    do {                                                                                                           \
        cudaError_t e_ = cudaGetLastError();                                                                       \
        if (e_ != cudaSuccess) return spo_cu_fail(fn, e_);                                                         \
    } while (0)

#define SPO_CU_TRY(fn, call)                                                                                       \
    do {                                                                                                           \
        cudaError_t e_ = (call);                                                                                   \
        if (e_ != cudaSuccess) return spo_cu_fail(fn, e_);                                                         \
    } while (0)

#define SPO_CU_THREADS 256
#define SPO_CU_MAXGRID 1048576u // grid-stride beyond this many blocks

// blocks of SPO_CU_THREADS for n items (grid-stride kernels), at least 1
static inline unsigned spo_cu_blocks(size_t n)
{
    size_t b = (n + SPO_CU_THREADS - 1) / SPO_CU_THREADS;
    if (b < 1) b = 1;
    return b > SPO_CU_MAXGRID ? SPO_CU_MAXGRID : (unsigned)b;
}

// grid-stride loop over [0, n)
#define SPO_CU_FOR(i, n)                                                                                           \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

// Row-major products as cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, ...)
// computes them: C (M,N) = alpha op(A) op(B) + beta C. cuBLAS is
// column-major, and a row-major matrix is its transpose in column-major, so
// C^T = op(B)^T op(A)^T: the same flags with the operands swapped. beta 0
// does not read C. `count` products with element strides sa, sb, sc.
int spo_cu_gemm(spo_dev *d, const char *fn, bool ta, bool tb, int M, int N, int K, float alpha, const float *A,
                int lda, long long sa, const float *B, int ldb, long long sb, float beta, float *C, int ldc,
                long long sc, int count);

// the sum of v over the block (blockDim.x a multiple of 32, <= 1024);
// every thread gets it. Uses shared memory; call from every thread.
__device__ inline double spo_cu_block_sum(double v)
{
    __shared__ double part[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    __syncthreads(); // part may still be read by a previous call
    if (lane == 0) part[warp] = v;
    __syncthreads();
    double t = 0.0;
    for (int w = 0; w < nw; w++) t += part[w]; // fixed order: the same sum in every thread
    return t;
}

__device__ inline float spo_cu_block_max(float v)
{
    __shared__ float part[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, o));
    __syncthreads();
    if (lane == 0) part[warp] = v;
    __syncthreads();
    float t = part[0];
    for (int w = 1; w < nw; w++) t = fmaxf(t, part[w]);
    return t;
}

#endif
