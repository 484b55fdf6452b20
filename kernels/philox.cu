// philox.cu — fill device memory with the Philox 4x32-10 normal stream,
// the same numbers spo_normal_fill gives on the CPU (lib/core/philox.h holds the
// algorithm and the element mapping; both sides compile that one source).
// One thread per block of 4 elements, grid-stride.
#include <cuda_runtime.h>

#include "core/philox.h"

extern "C" {
#include "core/err.h"
}

// out[0..n) = normals of stream (seed, prompt, step, child); nb = ceil(n/4)
__global__ void spo_philox_normal_kernel(float *out, size_t n, size_t nb, uint64_t seed, uint32_t prompt,
                                         uint32_t step, uint32_t child)
{
    for (size_t b = (size_t)blockIdx.x * blockDim.x + threadIdx.x; b < nb; b += (size_t)gridDim.x * blockDim.x) {
        float z[4];
        spo_philox_normal4(seed, prompt, step, child, (uint32_t)b, z);
        size_t i = b * 4;
        if (i + 4 <= n) {
            out[i] = z[0]; out[i + 1] = z[1]; out[i + 2] = z[2]; out[i + 3] = z[3];
        } else {
            for (size_t k = 0; i + k < n; k++) out[i + k] = z[k];
        }
    }
}

// Asynchronous on the default stream; errors of the launch are reported.
extern "C" int spo_cuda_normal_fill(float *dev_out, size_t n, uint64_t seed, uint32_t prompt, uint32_t step,
                                    uint32_t child)
{
    if (n == 0) return SPO_OK;
    if (!dev_out) return spo_err(SPO_EINVAL, "spo_cuda_normal_fill: null output");
    size_t nb = (n + 3) / 4;
    const int threads = 256;
    size_t want = (nb + threads - 1) / threads;
    int blocks = want > 65535 * 8 ? 65535 * 8 : (int)want;
    spo_philox_normal_kernel<<<blocks, threads>>>(dev_out, n, nb, seed, prompt, step, child);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return spo_err(SPO_EIO, "spo_cuda_normal_fill: %s", cudaGetErrorString(e));
    return SPO_OK;
}
