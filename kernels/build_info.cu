// build_info.cu — the CUDA and cuBLAS versions spo was built against and
// runs with, for `--version`. Host code only; no device needed to answer.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdio.h>

extern "C" int spo_cuda_build_info(char *buf, size_t n)
{
    int rt = 0, drv = 0, ndev = 0;
    cudaRuntimeGetVersion(&rt);
    if (cudaDriverGetVersion(&drv) != cudaSuccess) drv = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess) ndev = 0;
    snprintf(buf, n, "CUDA: built with %d.%d (runtime %d.%d, driver %d.%d, %d device%s); cuBLAS %d.%d.%d",
             CUDART_VERSION / 1000, (CUDART_VERSION % 1000) / 10, rt / 1000, (rt % 1000) / 10,
             drv / 1000, (drv % 1000) / 10, ndev, ndev == 1 ? "" : "s",
             CUBLAS_VER_MAJOR, CUBLAS_VER_MINOR, CUBLAS_VER_PATCH);
    return 0;
}
