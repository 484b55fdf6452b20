/* spm_pre.c — the step-aware preference model's image preprocessing, as the
 * official get_preference_score does it on tensors (see spm.h): PyTorch's
 * bicubic F.interpolate, torchvision's CenterCrop, clamp, CLIP normalise.
 * Host memory, plain loops (a few hundred thousand pixels per image). */
#include <math.h>
#include <stdlib.h>

#include "spm.h"

static const float clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

/* Keys' cubic convolution weights for fraction t in [0, 1], A = -0.75 (PyTorch) */
static void cubic_weights(float t, float w[4])
{
    const float A = -0.75f;
    float x;
    x = t + 1; w[0] = ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
    x = t;     w[1] = ((A + 2) * x - (A + 3)) * x * x + 1;
    x = 1 - t; w[2] = ((A + 2) * x - (A + 3)) * x * x + 1;
    x = 2 - t; w[3] = ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
}

/* Source indices (4 per output, clamped to the border) and weights of one
 * axis: in -> out, align_corners false: src = (in/out) (o + 0.5) - 0.5. */
static void axis_taps(int in, int out, int *idx, float *wt)
{
    float scale = (float)in / (float)out;
    for (int o = 0; o < out; o++) {
        float real = scale * ((float)o + 0.5f) - 0.5f;
        int i0 = (int)floorf(real);
        if (i0 > in - 1) i0 = in - 1;
        float t = real - (float)i0;
        t = t < 0 ? 0 : t > 1 ? 1 : t;
        cubic_weights(t, wt + 4 * o);
        for (int k = 0; k < 4; k++) {
            int i = i0 - 1 + k;
            idx[4 * o + k] = i < 0 ? 0 : i > in - 1 ? in - 1 : i;
        }
    }
}

int spo_spm_preprocess(const float *img, int n, int h, int w, int size, float *out)
{
    if (!img || !out || n < 1 || h < 1 || w < 1 || size < 1)
        return spo_err(SPO_EINVAL, "spm preprocess: bad shape n=%d h=%d w=%d size=%d", n, h, w, size);
    double s = (double)size / (h < w ? h : w);
    int nh = (int)(h * s + 0.5), nw = (int)(w * s + 0.5);
    if (nh < size || nw < size) return spo_err(SPO_EINVAL, "spm preprocess: %dx%d resizes below %d", h, w, size);
    int top = 0, left = 0;
    if (nh != nw) { /* torchvision: int(round((H - size) / 2.0)), half to even */
        top = (int)nearbyint((nh - size) / 2.0);
        left = (int)nearbyint((nw - size) / 2.0);
    }
    int *iy = malloc(sizeof(int) * 4 * size), *ix = malloc(sizeof(int) * 4 * size);
    float *wy = malloc(sizeof(float) * 4 * size), *wx = malloc(sizeof(float) * 4 * size);
    int *ay = malloc(sizeof(int) * 4 * nh), *ax = malloc(sizeof(int) * 4 * nw);
    float *by = malloc(sizeof(float) * 4 * nh), *bx = malloc(sizeof(float) * 4 * nw);
    int rc = SPO_OK;
    if (!iy || !ix || !wy || !wx || !ay || !ax || !by || !bx) {
        rc = spo_err(SPO_EIO, "out of memory");
        goto out;
    }
    /* taps of the full resize, then keep the cropped window */
    axis_taps(h, nh, ay, by);
    axis_taps(w, nw, ax, bx);
    for (int k = 0; k < 4 * size; k++) {
        iy[k] = ay[4 * top + k], wy[k] = by[4 * top + k];
        ix[k] = ax[4 * left + k], wx[k] = bx[4 * left + k];
    }
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 3; c++) {
            const float *src = img + ((size_t)i * 3 + c) * h * w;
            float *dst = out + ((size_t)i * 3 + c) * size * size;
            for (int y = 0; y < size; y++) {
                const float *r[4];
                for (int k = 0; k < 4; k++) r[k] = src + (size_t)iy[4 * y + k] * w;
                for (int x = 0; x < size; x++) {
                    const int *xi = ix + 4 * x;
                    const float *xw = wx + 4 * x;
                    float v = 0;
                    for (int k = 0; k < 4; k++) {
                        float hv = xw[0] * r[k][xi[0]] + xw[1] * r[k][xi[1]] + xw[2] * r[k][xi[2]] +
                                   xw[3] * r[k][xi[3]];
                        v += wy[4 * y + k] * hv;
                    }
                    v = v / 2 + 0.5f;
                    v = v < 0 ? 0 : v > 1 ? 1 : v;
                    dst[(size_t)y * size + x] = (v - clip_mean[c]) / clip_std[c];
                }
            }
        }
out:
    free(iy), free(ix), free(wy), free(wx), free(ay), free(ax), free(by), free(bx);
    return rc;
}
