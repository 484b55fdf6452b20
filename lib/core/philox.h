/* philox.h — Philox 4x32-10 counter-based generator and the normal noise
 * stream, one source for C (CPU) and CUDA (GPU).
 *
 * Everything here is `static inline` and marked SPO_HD, so lib/core/philox.c and
 * kernels/philox.cu compile the very same code. The float math uses only
 * IEEE-exact operations (+ - * / sqrt, each rounded once, never fused into
 * an FMA), with our own log and sin/cos polynomials instead of libm/CUDA
 * math functions, so the CPU and the GPU give bit-identical noise.
 *
 * Philox 4x32-10 (Salmon et al., "Parallel Random Numbers: As Easy as 1, 2,
 * 3", SC11; the Random123 algorithm): a 128-bit counter ctr[4] and a 64-bit
 * key key[2] map to 128 random bits out[4]. One round:
 *   (hi0, lo0) = 0xD2511F53 * ctr[0],  (hi1, lo1) = 0xCD9E8D57 * ctr[2]
 *   ctr = { hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0 }
 * Ten rounds; between rounds the key is bumped by the Weyl constants
 * key[0] += 0x9E3779B9, key[1] += 0xBB67AE85.
 *
 * THE NOISE STREAM (the GPU must reproduce this mapping exactly)
 *   key     = { seed & 0xffffffff, seed >> 32 }
 *   counter = { b, prompt_id, step, child }   with b = i / 4 (uint32; wraps
 *             after 2^34 elements)
 *   w[0..3] = philox4x32_10(counter, key)
 *   uniform u(w)  = (2 * (w >> 9) + 1) * 2^-24, in (0, 1), never 0 or 1
 *   pair (w[0], w[1]) -> normals of elements 4b+0 (cos) and 4b+1 (sin)
 *   pair (w[2], w[3]) -> normals of elements 4b+2 (cos) and 4b+3 (sin)
 *   Box-Muller: r = sqrt(-2 ln u(w_even)), angle = 2 pi u(w_odd),
 *               z_cos = r cos(angle), z_sin = r sin(angle)
 * ln, cos and sin are the polynomials below (not libm's), part of the
 * definition: another implementation of this mapping (e.g. NumPy in double)
 * agrees to about 1e-6, this header's to the bit on every device.
 * Element i is a pure function of (seed, prompt_id, step, child, i): it does
 * not depend on n, the batch, or the device. spo_uniform_u32 returns the raw
 * word w[i % 4] of block i / 4 of the same stream, so callers that need
 * both noise and choices for the same (seed, prompt, step) must use a
 * different child for the choices (SPO_PHILOX_CHILD_CHOICE). */
#ifndef SPO_PHILOX_H
#define SPO_PHILOX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __CUDACC__
#define SPO_HD __host__ __device__
#else
#define SPO_HD
#endif

/* Exact IEEE float operations, never contracted into an FMA. nvcc fuses
 * a*b+c by default; the _rn intrinsics forbid it in device code. Host C11
 * (ISO mode) does not contract; the pragma covers compilers that would. */
#if defined(__CUDA_ARCH__)
#define SPO_FMUL(a, b) __fmul_rn((a), (b))
#define SPO_FADD(a, b) __fadd_rn((a), (b))
#define SPO_FSUB(a, b) __fsub_rn((a), (b))
#define SPO_FDIV(a, b) __fdiv_rn((a), (b))
#define SPO_FSQRT(a) __fsqrt_rn(a)
#else
#if !defined(__GNUC__) || defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif
#include <math.h>
#define SPO_FMUL(a, b) ((float)(a) * (float)(b))
#define SPO_FADD(a, b) ((float)(a) + (float)(b))
#define SPO_FSUB(a, b) ((float)(a) - (float)(b))
#define SPO_FDIV(a, b) ((float)(a) / (float)(b))
#define SPO_FSQRT(a) sqrtf(a)
#endif

/* A child id reserved for choices (resampling indices) so they never share
 * words with the noise of a real child. */
#define SPO_PHILOX_CHILD_CHOICE 0xFFFFFFFFu

static inline SPO_HD void spo_philox_mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo)
{
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

/* ctr[4], key[2] -> out[4]; out may alias ctr. */
static inline SPO_HD void spo_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        uint32_t hi0, lo0, hi1, lo1;
        spo_philox_mulhilo(0xD2511F53u, c0, &hi0, &lo0);
        spo_philox_mulhilo(0xCD9E8D57u, c2, &hi1, &lo1);
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* uint32 -> (2 * (w >> 9) + 1) * 2^-24: 2^23 equally spaced values, all
 * exact in float, in [2^-24, 1 - 2^-24]. Never 0, so log is safe. */
static inline SPO_HD float spo_u32_to_unit(uint32_t w)
{
    return SPO_FMUL((float)(2u * (w >> 9) + 1u), 0x1p-24f);
}

/* ln(u) for u = (2k+1) 2^-24 given v = 2k+1 (odd, < 2^24): ln v - 24 ln 2.
 * v = m 2^e with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(s), s =
 * (m-1)/(m+1), |s| <= 0.1716, by its odd series to s^13 (error < 1e-11). */
static inline SPO_HD float spo_philox_log_unit(uint32_t v)
{
    int e = 0;
    if (!v) v = 1;                            /* not reached for valid v */
    while (v >= (1u << 24)) { v >>= 1; e++; } /* nor this */
    /* normalise v to m in [2^23, 2^24) * 2^-23, i.e. [1, 2), as integers */
    int sh = 0;
    while (!(v & (1u << 23))) { v <<= 1; sh++; }
    e += 23 - sh; /* v_original = (v / 2^23) * 2^e */
    float m = SPO_FMUL((float)v, 0x1p-23f); /* exact */
    if (m > 0x1.6a09e6p+0f) /* sqrt 2 */ { m = SPO_FMUL(m, 0.5f); e++; }
    float s = SPO_FDIV(SPO_FSUB(m, 1.0f), SPO_FADD(m, 1.0f));
    float s2 = SPO_FMUL(s, s);
    /* constants are hex literals so every compiler reads the same float */
    float p = 0x1.3b13b2p-4f;                  /* 1/13 */
    p = SPO_FADD(SPO_FMUL(p, s2), 0x1.745d18p-4f); /* 1/11 */
    p = SPO_FADD(SPO_FMUL(p, s2), 0x1.c71c72p-4f); /* 1/9 */
    p = SPO_FADD(SPO_FMUL(p, s2), 0x1.24924ap-3f); /* 1/7 */
    p = SPO_FADD(SPO_FMUL(p, s2), 0x1.99999ap-3f); /* 1/5 */
    p = SPO_FADD(SPO_FMUL(p, s2), 0x1.555556p-2f); /* 1/3 */
    float lnm = SPO_FMUL(SPO_FADD(s, SPO_FMUL(SPO_FMUL(s, s2), p)), 2.0f);
    /* ln 2 = LN2_HI + LN2_LO; LN2_HI has 16 trailing zero bits so
     * (e - 24) * LN2_HI is exact for |e - 24| <= 24 */
    const float LN2_HI = 0x1.62e4p-1f, LN2_LO = 0x1.7f7d1cp-20f;
    float fe = (float)(e - 24);
    return SPO_FADD(SPO_FMUL(fe, LN2_HI), SPO_FADD(lnm, SPO_FMUL(fe, LN2_LO)));
}

/* cos and sin of 2 pi u, u = (2k+1) 2^-24 given k = w >> 9. Reduction in
 * integers: 4u = q + f, q the nearest integer (no ties), f = j 2^-22 with
 * |j| <= 2^21; x = f pi/2, |x| <= pi/4; Taylor polynomials to x^9 / x^10
 * (error < 2e-9), then rotate by q quarter turns. */
static inline SPO_HD void spo_philox_sincos_unit(uint32_t k, float *c, float *s)
{
    int32_t t = (int32_t)(2u * k + 1u); /* 4u = t 2^-22 */
    int32_t q = (t + (1 << 21)) >> 22;  /* 0..4 */
    int32_t j = t - q * (1 << 22);      /* -2^21 .. 2^21 */
    float x = SPO_FMUL((float)j, 0x1.921fb6p-22f); /* pi/2 * 2^-22 */
    float x2 = SPO_FMUL(x, x);
    float ps = 0x1.71de3ap-19f;                       /* 1/9! */
    ps = SPO_FSUB(SPO_FMUL(ps, x2), 0x1.a01a02p-13f); /* 1/7! */
    ps = SPO_FADD(SPO_FMUL(ps, x2), 0x1.111112p-7f);  /* 1/5! */
    ps = SPO_FSUB(SPO_FMUL(ps, x2), 0x1.555556p-3f);  /* 1/3! */
    float sn = SPO_FADD(x, SPO_FMUL(SPO_FMUL(x, x2), ps));
    float pc = -0x1.27e4fcp-22f;                      /* -1/10! */
    pc = SPO_FADD(SPO_FMUL(pc, x2), 0x1.a01a02p-16f); /* 1/8! */
    pc = SPO_FSUB(SPO_FMUL(pc, x2), 0x1.6c16c2p-10f); /* 1/6! */
    pc = SPO_FADD(SPO_FMUL(pc, x2), 0x1.555556p-5f);  /* 1/4! */
    pc = SPO_FSUB(SPO_FMUL(pc, x2), 0.5f);
    float cs = SPO_FADD(1.0f, SPO_FMUL(x2, pc));
    switch (q & 3) {
    case 0: *c = cs; *s = sn; break;
    case 1: *c = -sn; *s = cs; break;
    case 2: *c = -cs; *s = -sn; break;
    default: *c = sn; *s = -cs; break;
    }
}

/* Two uniform words -> two standard normals (Box-Muller). */
static inline SPO_HD void spo_box_muller(uint32_t wr, uint32_t wa, float *z_cos, float *z_sin)
{
    float ln = spo_philox_log_unit(2u * (wr >> 9) + 1u);
    float r = SPO_FSQRT(SPO_FMUL(-2.0f, ln));
    float c, s;
    spo_philox_sincos_unit(wa >> 9, &c, &s);
    *z_cos = SPO_FMUL(r, c);
    *z_sin = SPO_FMUL(r, s);
}

/* The four normals of block b of stream (seed, prompt, step, child):
 * elements 4b .. 4b+3. */
static inline SPO_HD void spo_philox_normal4(uint64_t seed, uint32_t prompt_id, uint32_t step, uint32_t child,
                                             uint32_t b, float z[4])
{
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    uint32_t ctr[4] = {b, prompt_id, step, child};
    uint32_t w[4];
    spo_philox4x32_10(ctr, key, w);
    spo_box_muller(w[0], w[1], &z[0], &z[1]);
    spo_box_muller(w[2], w[3], &z[2], &z[3]);
}

#ifdef __cplusplus
extern "C" {
#endif

/* out[0..n) = normals 0..n-1 of stream (seed, prompt_id, step, child). */
void spo_normal_fill(float *out, size_t n, uint64_t seed, uint32_t prompt_id, uint32_t step, uint32_t child);

/* Raw word `index` of stream (seed, prompt, step, child): word index % 4
 * of block index / 4. For choices use child SPO_PHILOX_CHILD_CHOICE (or a
 * step/child no noise stream uses); `% n` is unbiased for n a power of 2. */
uint32_t spo_uniform_u32(uint64_t seed, uint32_t prompt_id, uint32_t step, uint32_t child, uint64_t index);

/* The same numbers on the GPU into device memory dev_out[0..n), queued on
 * the default stream (kernels/philox.cu; only in builds with CUDA). */
int spo_cuda_normal_fill(float *dev_out, size_t n, uint64_t seed, uint32_t prompt_id, uint32_t step, uint32_t child);

#ifdef __cplusplus
}
#endif

#endif
