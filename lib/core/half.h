/* half.h — IEEE fp16 (binary16) and bfloat16 <-> fp32 conversion.
 *
 * fp16: 1 sign, 5 exponent (bias 15), 10 mantissa bits; largest finite
 * 65504 (0x7bff), smallest subnormal 2^-24 (0x0001). bf16: the top 16 bits
 * of an fp32 (same 8-bit exponent, 7 mantissa bits).
 *
 * Narrowing (fp32 -> fp16/bf16) rounds to nearest, ties to even, as
 * PyTorch's .half() / .bfloat16() do: too large values become +-inf,
 * too small ones fp16 subnormals or +-0. Widening is exact. NaN stays NaN
 * (sign and top payload bits kept, made quiet); inf stays inf.
 * Values are bit patterns in host order (uint16_t); the safetensors reader
 * assembles them from little-endian bytes. */
#ifndef SPO_HALF_H
#define SPO_HALF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t spo_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float spo_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* fp16 -> fp32, exact. */
static inline float spo_half_to_float(uint16_t h)
{
    uint32_t s = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0x1f) /* inf, or NaN made quiet */
        return spo_bits_f32(s | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0));
    if (e) return spo_bits_f32(s | ((e + 112) << 23) | (m << 13));
    /* zero or subnormal: m * 2^-24, exact in fp32 */
    return spo_bits_f32(s | spo_f32_bits((float)m * 0x1p-24f));
}

/* fp32 -> fp16, round to nearest even. */
static inline uint16_t spo_float_to_half(float f)
{
    uint32_t x = spo_f32_bits(f);
    uint16_t s = (uint16_t)((x >> 16) & 0x8000);
    x &= 0x7fffffffu;
    if (x > 0x7f800000u) return s | 0x7e00 | (uint16_t)((x >> 13) & 0x3ff); /* NaN, quiet */
    if (x >= 0x477ff000u) return s | 0x7c00; /* >= 65520 (tie above 65504 goes up): inf */
    if (x >= 0x38800000u) {                  /* fp16 normal: >= 2^-14 */
        uint32_t h = ((x >> 23) - 112) << 10 | ((x >> 13) & 0x3ff), rem = x & 0x1fff;
        if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* a carry into the exponent is right */
        return s | (uint16_t)h;
    }
    if (x <= 0x33000000u) return s; /* <= 2^-25: the tie with 0 goes to 0 */
    /* subnormal: value / 2^-24 = M >> shift, M the 24-bit significand */
    uint32_t e = x >> 23, mm = (x & 0x7fffffu) | 0x800000u, shift = 126 - e; /* 14..24 */
    uint32_t h = mm >> shift, rem = mm & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) h++;
    return s | (uint16_t)h;
}

/* bf16 -> fp32, exact. */
static inline float spo_bf16_to_float(uint16_t b) { return spo_bits_f32((uint32_t)b << 16); }

/* fp32 -> bf16, round to nearest even. */
static inline uint16_t spo_float_to_bf16(float f)
{
    uint32_t x = spo_f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* NaN, quiet */
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);                 /* overflow gives inf */
}

/* Array versions: dst[i] = convert(src[i]) for i < n. */
void spo_f16_to_f32(float *dst, const uint16_t *src, size_t n);
void spo_f32_to_f16(uint16_t *dst, const float *src, size_t n);
void spo_bf16_to_f32(float *dst, const uint16_t *src, size_t n);
void spo_f32_to_bf16(uint16_t *dst, const float *src, size_t n);

#endif
