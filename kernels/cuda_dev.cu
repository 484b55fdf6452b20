// cuda_dev.cu — the CUDA backend (lib/ops/ops_impl.h): the device state (a
// cuBLAS handle and a scratch buffer, d->impl), memory, the row-major
// product helper of cuda_common.cuh, and the op table. Each op's kernel is
// in the kernels/ file that mirrors its lib/ops/cpu file (cpu_conv.c ->
// conv.cu), defines extern "C" spo_cuda_<name> (declared for every entry
// of lib/ops/ops_list.h by ops_impl.h) and is entered in make_table below
// as one line.
#include <stdlib.h>

#include "cuda_common.cuh"

int spo_cu_fail(const char *fn, cudaError_t e)
{
    if (e == cudaErrorMemoryAllocation) return spo_err(SPO_EIO, "%s: CUDA out of memory", fn);
    return spo_err(SPO_EIO, "%s: CUDA error: %s", fn, cudaGetErrorString(e));
}

int spo_cu_blas_fail(const char *fn, cublasStatus_t s)
{
    return spo_err(SPO_EIO, "%s: cuBLAS error %d (%s)", fn, (int)s, cublasGetStatusString(s));
}

static double mib(size_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

void *spo_cu_scratch(spo_dev *d, size_t bytes, const char *fn)
{
    spo_cuda_state *st = spo_cu_state(d);
    if (bytes <= st->scratch_bytes) return st->scratch;
    if (st->scratch) cudaFree(st->scratch); // synchronises: the previous op is done with it
    st->scratch = NULL;
    st->scratch_bytes = 0;
    cudaError_t e = cudaMalloc(&st->scratch, bytes);
    if (e != cudaSuccess) {
        st->scratch = NULL;
        cudaGetLastError(); // clear the sticky-free error state of a failed allocation
        spo_err(SPO_EIO, "%s: CUDA out of memory asking for %zu bytes (%.1f MiB) of scratch: %s", fn, bytes,
                mib(bytes), cudaGetErrorString(e));
        return NULL;
    }
    st->scratch_bytes = bytes;
    return st->scratch;
}

int spo_cu_gemm(spo_dev *d, const char *fn, bool ta, bool tb, int M, int N, int K, float alpha, const float *A,
                int lda, long long sa, const float *B, int ldb, long long sb, float beta, float *C, int ldc,
                long long sc, int count)
{
    cublasOperation_t oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasStatus_t s;
    if (count == 1)
        s = cublasSgemm(spo_cu_blas(d), ob, oa, N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc);
    else
        s = cublasSgemmStridedBatched(spo_cu_blas(d), ob, oa, N, M, K, &alpha, B, ldb, sb, A, lda, sa, &beta, C, ldc,
                                      sc, count);
    return s == CUBLAS_STATUS_SUCCESS ? SPO_OK : spo_cu_blas_fail(fn, s);
}

extern "C" int spo_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
}

static int cu_open(spo_dev *d)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e == cudaErrorNoDevice || (e == cudaSuccess && n < 1))
        return spo_err(SPO_EIO, "device cuda: no CUDA device found");
    if (e == cudaErrorInsufficientDriver)
        return spo_err(SPO_EIO, "device cuda: no NVIDIA driver found, or one older than this build's CUDA runtime");
    if (e != cudaSuccess) return spo_err(SPO_EIO, "device cuda: %s", cudaGetErrorString(e));
    e = cudaFree(0); // create the context now, so a busy or broken GPU is reported here
    if (e == cudaErrorDevicesUnavailable)
        return spo_err(SPO_EIO, "device cuda: the GPU is busy or unavailable (exclusive mode?)");
    if (e != cudaSuccess) return spo_err(SPO_EIO, "device cuda: cannot start a context: %s", cudaGetErrorString(e));
    spo_cuda_state *st = (spo_cuda_state *)calloc(1, sizeof *st);
    if (!st) return spo_err(SPO_EIO, "device cuda: out of host memory");
    cublasStatus_t s = cublasCreate(&st->blas);
    if (s == CUBLAS_STATUS_SUCCESS) s = cublasSetMathMode(st->blas, CUBLAS_PEDANTIC_MATH);
    if (s != CUBLAS_STATUS_SUCCESS) {
        if (st->blas) cublasDestroy(st->blas);
        free(st);
        return spo_cu_blas_fail("device cuda: cuBLAS", s);
    }
    d->impl = st;
    return SPO_OK;
}

static void cu_close(spo_dev *d)
{
    spo_cuda_state *st = spo_cu_state(d);
    if (!st) return;
    cudaDeviceSynchronize();
    cublasDestroy(st->blas);
    cudaFree(st->scratch);
    free(st);
    d->impl = NULL;
}

static float *cu_alloc(spo_dev *d, size_t n)
{
    (void)d;
    void *p = NULL;
    const size_t bytes = n * sizeof(float);
    cudaError_t e = cudaMalloc(&p, bytes); // 256-byte aligned
    if (e == cudaSuccess) e = cudaMemset(p, 0, bytes);
    if (e != cudaSuccess) {
        if (p) cudaFree(p);
        cudaGetLastError();
        spo_err(SPO_EIO, "spo_dev_alloc: CUDA out of memory asking for %zu floats (%.1f MiB): %s", n, mib(bytes),
                cudaGetErrorString(e));
        return NULL;
    }
    return (float *)p;
}

static void cu_free(spo_dev *d, float *p)
{
    (void)d;
    cudaFree(p);
}

static int cu_upload(spo_dev *d, float *dst, const float *host, size_t n)
{
    (void)d;
    SPO_CU_TRY("spo_dev_upload", cudaMemcpy(dst, host, n * sizeof(float), cudaMemcpyHostToDevice));
    return SPO_OK;
}

static int cu_download(spo_dev *d, float *host, const float *src, size_t n)
{
    (void)d;
    SPO_CU_TRY("spo_dev_download", cudaMemcpy(host, src, n * sizeof(float), cudaMemcpyDeviceToHost));
    return SPO_OK;
}

static int cu_zero(spo_dev *d, float *p, size_t n)
{
    (void)d;
    SPO_CU_TRY("spo_dev_zero", cudaMemset(p, 0, n * sizeof(float)));
    return SPO_OK;
}

// device -> device; the ranges may overlap (cudaMemcpy's may not), so an
// overlapping copy goes through the scratch buffer
static int cu_copy(spo_dev *d, float *dst, const float *src, size_t n)
{
    const size_t bytes = n * sizeof(float);
    const char *a = (const char *)dst, *b = (const char *)src;
    if (a < b + bytes && b < a + bytes) {
        void *t = spo_cu_scratch(d, bytes, "spo_dev_copy");
        if (!t) return SPO_EIO;
        SPO_CU_TRY("spo_dev_copy", cudaMemcpy(t, src, bytes, cudaMemcpyDeviceToDevice));
        src = (const float *)t;
    }
    SPO_CU_TRY("spo_dev_copy", cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
    return SPO_OK;
}

static int cu_sync(spo_dev *d)
{
    (void)d;
    SPO_CU_TRY("spo_dev_sync", cudaDeviceSynchronize());
    return SPO_OK;
}

static spo_ops_table make_table(void)
{
    spo_ops_table t = {};
    t.name = "cuda";
    t.open = cu_open;
    t.close = cu_close;
    t.alloc = cu_alloc;
    t.free = cu_free;
    t.upload = cu_upload;
    t.download = cu_download;
    t.zero = cu_zero;
    t.copy = cu_copy;
    t.sync = cu_sync;
    // ops, one line each (kernels/<family>.cu)
    t.linear_fwd = spo_cuda_linear_fwd;
    t.linear_bwd = spo_cuda_linear_bwd;
    t.conv2d_fwd = spo_cuda_conv2d_fwd;
    t.conv2d_bwd = spo_cuda_conv2d_bwd;
    t.groupnorm_fwd = spo_cuda_groupnorm_fwd;
    t.groupnorm_bwd = spo_cuda_groupnorm_bwd;
    t.layernorm_fwd = spo_cuda_layernorm_fwd;
    t.layernorm_bwd = spo_cuda_layernorm_bwd;
    t.act_fwd = spo_cuda_act_fwd;
    t.act_bwd = spo_cuda_act_bwd;
    t.geglu_fwd = spo_cuda_geglu_fwd;
    t.geglu_bwd = spo_cuda_geglu_bwd;
    t.attention_fwd = spo_cuda_attention_fwd;
    t.attention_bwd = spo_cuda_attention_bwd;
    t.upsample2x_fwd = spo_cuda_upsample2x_fwd;
    t.upsample2x_bwd = spo_cuda_upsample2x_bwd;
    t.concat_fwd = spo_cuda_concat_fwd;
    t.concat_bwd = spo_cuda_concat_bwd;
    t.transpose_fwd = spo_cuda_transpose_fwd;
    t.add_fwd = spo_cuda_add_fwd;
    t.axpy = spo_cuda_axpy;
    t.add_nc_fwd = spo_cuda_add_nc_fwd;
    t.add_nc_bwd = spo_cuda_add_nc_bwd;
    t.scale = spo_cuda_scale;
    t.timestep_embed = spo_cuda_timestep_embed;
    t.embed_fwd = spo_cuda_embed_fwd;
    t.modulate_fwd = spo_cuda_modulate_fwd;
    t.gate_add_fwd = spo_cuda_gate_add_fwd;
    return t;
}

extern "C" const spo_ops_table spo_cuda_ops = make_table();
