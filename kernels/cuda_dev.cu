// cuda_dev.cu — the CUDA backend's op table (lib/ops/ops_impl.h). For now only
// the device memory functions; every op entry is NULL, so the public ops
// fail with "not implemented on cuda". An op's kernel goes in the kernels/
// file that mirrors its lib/ops/cpu file (cpu_conv.c -> conv.cu), defines
// extern "C" spo_cuda_<name> (declared for every entry of lib/ops/ops_list.h
// by ops_impl.h), and is entered here as one line: t.<name> = spo_cuda_<name>;
#include <cuda_runtime.h>

#include "ops/ops_impl.h"

static int cuda_fail(const char *what, cudaError_t e)
{
    return spo_err(SPO_EIO, "cuda %s: %s", what, cudaGetErrorString(e));
}

static int cu_open(spo_dev *d)
{
    (void)d;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) return cuda_fail("device count", e);
    if (n < 1) return spo_err(SPO_EIO, "device cuda: no CUDA device");
    return SPO_OK;
}

static float *cu_alloc(spo_dev *d, size_t n)
{
    (void)d;
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, n * sizeof(float)); // 256-byte aligned
    if (e == cudaSuccess) e = cudaMemset(p, 0, n * sizeof(float));
    if (e != cudaSuccess) {
        cudaFree(p);
        cuda_fail("alloc", e);
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
    cudaError_t e = cudaMemcpy(dst, host, n * sizeof(float), cudaMemcpyHostToDevice);
    return e == cudaSuccess ? SPO_OK : cuda_fail("upload", e);
}

static int cu_download(spo_dev *d, float *host, const float *src, size_t n)
{
    (void)d;
    cudaError_t e = cudaMemcpy(host, src, n * sizeof(float), cudaMemcpyDeviceToHost);
    return e == cudaSuccess ? SPO_OK : cuda_fail("download", e);
}

static int cu_zero(spo_dev *d, float *p, size_t n)
{
    (void)d;
    cudaError_t e = cudaMemset(p, 0, n * sizeof(float));
    return e == cudaSuccess ? SPO_OK : cuda_fail("zero", e);
}

static int cu_copy(spo_dev *d, float *dst, const float *src, size_t n)
{
    (void)d;
    cudaError_t e = cudaMemcpy(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice);
    return e == cudaSuccess ? SPO_OK : cuda_fail("copy", e);
}

static int cu_sync(spo_dev *d)
{
    (void)d;
    cudaError_t e = cudaDeviceSynchronize();
    return e == cudaSuccess ? SPO_OK : cuda_fail("sync", e);
}

static spo_ops_table make_table(void)
{
    spo_ops_table t = {};
    t.name = "cuda";
    t.open = cu_open;
    t.alloc = cu_alloc;
    t.free = cu_free;
    t.upload = cu_upload;
    t.download = cu_download;
    t.zero = cu_zero;
    t.copy = cu_copy;
    t.sync = cu_sync;
    return t;
}

extern "C" const spo_ops_table spo_cuda_ops = make_table();
