/* philox.c — the CPU side of the Philox 4x32-10 noise stream (philox.h
 * holds the algorithm and the exact mapping the GPU reproduces). */
#include "core/philox.h"

/* out[0..n): n normals of stream (seed, prompt_id, step, child). */
void spo_normal_fill(float *out, size_t n, uint64_t seed, uint32_t prompt_id, uint32_t step, uint32_t child)
{
    float z[4];
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        spo_philox_normal4(seed, prompt_id, step, child, (uint32_t)(i / 4), out + i);
    if (i < n) {
        spo_philox_normal4(seed, prompt_id, step, child, (uint32_t)(i / 4), z);
        for (size_t k = 0; i + k < n; k++) out[i + k] = z[k];
    }
}

uint32_t spo_uniform_u32(uint64_t seed, uint32_t prompt_id, uint32_t step, uint32_t child, uint64_t index)
{
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    uint32_t ctr[4] = {(uint32_t)(index / 4), prompt_id, step, child};
    uint32_t w[4];
    spo_philox4x32_10(ctr, key, w);
    return w[index % 4];
}
