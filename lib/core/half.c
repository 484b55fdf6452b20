/* half.c — array fp16/bf16 <-> fp32 conversion (see half.h). The scalar
 * functions are inline in half.h; these loops are what the loaders call
 * over whole tensors. */
#include "core/half.h"

void spo_f16_to_f32(float *dst, const uint16_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = spo_half_to_float(src[i]);
}

void spo_f32_to_f16(uint16_t *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = spo_float_to_half(src[i]);
}

void spo_bf16_to_f32(float *dst, const uint16_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = spo_bf16_to_float(src[i]);
}

void spo_f32_to_bf16(uint16_t *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = spo_float_to_bf16(src[i]);
}
