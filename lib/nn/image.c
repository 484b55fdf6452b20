/* image.c — bicubic resize, center crop and CLIP normalisation (see image.h).
 * Arithmetic is in float in PyTorch's order so results agree to rounding. */
#include "nn/image.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

const float spo_clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
const float spo_clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

#define CUBIC_A (-0.75f)
#define MAX_SIDE (1 << 20)

/* |x| <= 1 and 1 < |x| < 2 pieces of the cubic convolution kernel. PyTorch's
 * x86 build contracts these polynomials (and the source coordinate) into
 * fused multiply-adds; doing the same here brings the weights, and so the
 * results, from ~1e-6 to within an ulp or two of torch's. */
static float cubic1(float x) { return fmaf(fmaf(CUBIC_A + 2, x, -(CUBIC_A + 3)) * x, x, 1); }
static float cubic2(float x) { return fmaf(fmaf(fmaf(CUBIC_A, x, -5 * CUBIC_A), x, 8 * CUBIC_A), x, -4 * CUBIC_A); }

/* For output positions [start, start + n) of an in_size -> out_size resize:
 * the 4 source indices (clamped) and weights of each. */
static void taps(int in_size, int out_size, int start, int n, int *idx, float *wt)
{
    float scale = (float)in_size / (float)out_size;
    for (int i = 0; i < n; i++) {
        float real = fmaf(scale, (float)(start + i) + 0.5f, -0.5f);
        int64_t k = (int64_t)floorf(real);
        if (k > in_size - 1) k = in_size - 1;
        float t = real - (float)k;
        t = t < 0 ? 0 : t > 1 ? 1 : t;
        wt[4 * i + 0] = cubic2(t + 1.0f);
        wt[4 * i + 1] = cubic1(t);
        wt[4 * i + 2] = cubic1(1.0f - t);
        wt[4 * i + 3] = cubic2(1.0f - t + 1.0f);
        for (int j = 0; j < 4; j++) {
            int64_t s = k - 1 + j;
            idx[4 * i + j] = (int)(s < 0 ? 0 : s > in_size - 1 ? in_size - 1 : s);
        }
    }
}

static int bad_dims(int n, int c, int h, int w, int oh, int ow)
{
    if (n < 1 || c < 1 || h < 1 || w < 1 || oh < 1 || ow < 1 || h > MAX_SIDE || w > MAX_SIDE || oh > MAX_SIDE ||
        ow > MAX_SIDE)
        return spo_err(SPO_EINVAL, "resize: bad size [%d,%d,%d,%d] -> [%d,%d]", n, c, h, w, oh, ow);
    return SPO_OK;
}

int spo_resize_bicubic_window(const float *in, int n, int c, int h, int w, int oh, int ow, int top, int left,
                              int ch, int cw, float *out)
{
    int rc = bad_dims(n, c, h, w, oh, ow);
    if (rc) return rc;
    if (ch < 1 || cw < 1 || top < 0 || left < 0 || top > oh - ch || left > ow - cw)
        return spo_err(SPO_EINVAL, "resize: window %dx%d at (%d,%d) is outside %dx%d", ch, cw, top, left, oh, ow);
    int *iy = malloc((size_t)ch * 4 * sizeof *iy), *ix = malloc((size_t)cw * 4 * sizeof *ix);
    float *wy = malloc((size_t)ch * 4 * sizeof *wy), *wx = malloc((size_t)cw * 4 * sizeof *wx);
    if (!iy || !ix || !wy || !wx) {
        free(iy), free(ix), free(wy), free(wx);
        return spo_err(SPO_EIO, "resize: out of memory");
    }
    taps(h, oh, top, ch, iy, wy);
    taps(w, ow, left, cw, ix, wx);
    for (int64_t p = 0; p < (int64_t)n * c; p++) {
        const float *src = in + p * h * w;
        float *dst = out + p * ch * cw;
        for (int y = 0; y < ch; y++)
            for (int x = 0; x < cw; x++) {
                const int *xi = ix + 4 * x;
                const float *xw = wx + 4 * x;
                float acc = 0;
                for (int j = 0; j < 4; j++) {
                    const float *row = src + (int64_t)iy[4 * y + j] * w;
                    float r = row[xi[0]] * xw[0];
                    r += row[xi[1]] * xw[1];
                    r += row[xi[2]] * xw[2];
                    r += row[xi[3]] * xw[3];
                    if (j == 0) acc = r * wy[4 * y];
                    else acc += r * wy[4 * y + j];
                }
                dst[(int64_t)y * cw + x] = acc;
            }
    }
    free(iy), free(ix), free(wy), free(wx);
    return SPO_OK;
}

int spo_resize_bicubic(const float *in, int n, int c, int h, int w, int oh, int ow, float *out)
{
    return spo_resize_bicubic_window(in, n, c, h, w, oh, ow, 0, 0, oh, ow, out);
}

void spo_clip_resize_size(int h, int w, int size, int *oh, int *ow)
{
    double scale = (double)size / (h < w ? h : w);
    *oh = (int)(h * scale + 0.5);
    *ow = (int)(w * scale + 0.5);
}

void spo_center_crop_origin(int h, int w, int ch, int cw, int *top, int *left)
{
    /* Python's round(): half to even, which rint gives in the default mode */
    *top = (int)rint((h - ch) / 2.0);
    *left = (int)rint((w - cw) / 2.0);
}

int spo_clip_preprocess(const float *img, int n, int h, int w, int size, float *out)
{
    if (n < 1 || h < 1 || w < 1 || size < 1 || size > 4096 || h > MAX_SIDE || w > MAX_SIDE)
        return spo_err(SPO_EINVAL, "clip preprocess: bad size [%d,3,%d,%d] -> %d", n, h, w, size);
    int oh, ow, top = 0, left = 0;
    spo_clip_resize_size(h, w, size, &oh, &ow);
    if (oh < size || ow < size) return spo_err(SPO_EINVAL, "clip preprocess: %dx%d resized to %dx%d", h, w, oh, ow);
    if (oh != ow) spo_center_crop_origin(oh, ow, size, size, &top, &left);
    int rc = spo_resize_bicubic_window(img, n, 3, h, w, oh, ow, top, left, size, size, out);
    if (rc) return rc;
    size_t plane = (size_t)size * size;
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++) {
            float *p = out + ((size_t)i * 3 + c) * plane, m = spo_clip_mean[c], s = spo_clip_std[c];
            for (size_t k = 0; k < plane; k++) {
                float v = p[k] / 2.0f + 0.5f;
                v = v < 0 ? 0 : v > 1 ? 1 : v; /* NaN stays NaN, as clamp */
                p[k] = (v - m) / s;
            }
        }
    return SPO_OK;
}
