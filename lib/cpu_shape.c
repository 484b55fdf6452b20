/* cpu_shape.c — shape and elementwise ops on the CPU: nearest 2x upsample,
 * channel concat, last-two-dims transpose, add, axpy, per-channel bias add
 * and scale. Backward versions accumulate (+=). */
#include <string.h>

#include "ops_impl.h"

/* x (n,c,h,w) -> y (n,c,2h,2w), y[.., 2i+a, 2j+b] = x[.., i, j] */
int spo_cpu_upsample2x_fwd(spo_dev *d, float *y, const float *x, int n, int c, int h, int w)
{
    (void)d;
    const size_t planes = (size_t)n * c;
    for (size_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * h * w;
        float *yp = y + pl * 4 * h * w;
        for (int i = 0; i < h; i++) {
            const float *xr = xp + (size_t)i * w;
            float *y0 = yp + (size_t)2 * i * 2 * w, *y1 = y0 + 2 * w;
            for (int j = 0; j < w; j++) y0[2 * j] = y0[2 * j + 1] = xr[j];
            memcpy(y1, y0, (size_t)2 * w * sizeof *y1);
        }
    }
    return SPO_OK;
}

/* dx (n,c,h,w) += sum of each 2x2 block of dy (n,c,2h,2w) */
int spo_cpu_upsample2x_bwd(spo_dev *d, float *dx, const float *dy, int n, int c, int h, int w)
{
    (void)d;
    const size_t planes = (size_t)n * c;
    for (size_t pl = 0; pl < planes; pl++) {
        float *xp = dx + pl * h * w;
        const float *yp = dy + pl * 4 * h * w;
        for (int i = 0; i < h; i++) {
            float *xr = xp + (size_t)i * w;
            const float *y0 = yp + (size_t)2 * i * 2 * w, *y1 = y0 + 2 * w;
            for (int j = 0; j < w; j++) xr[j] += (y0[2 * j] + y0[2 * j + 1]) + (y1[2 * j] + y1[2 * j + 1]);
        }
    }
    return SPO_OK;
}

/* a (n,ca,hw), b (n,cb,hw) -> y (n,ca+cb,hw) */
int spo_cpu_concat_fwd(spo_dev *d, float *y, const float *a, const float *b, int n, int ca, int cb, int hw)
{
    (void)d;
    const size_t sa = (size_t)ca * hw, sb = (size_t)cb * hw;
    for (int i = 0; i < n; i++) {
        memcpy(y + i * (sa + sb), a + i * sa, sa * sizeof *y);
        memcpy(y + i * (sa + sb) + sa, b + i * sb, sb * sizeof *y);
    }
    return SPO_OK;
}

static void acc(float *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

/* da += dy[:, :ca], db += dy[:, ca:] */
int spo_cpu_concat_bwd(spo_dev *d, float *da, float *db, const float *dy, int n, int ca, int cb, int hw)
{
    (void)d;
    const size_t sa = (size_t)ca * hw, sb = (size_t)cb * hw;
    for (int i = 0; i < n; i++) {
        if (da) acc(da + i * sa, dy + i * (sa + sb), sa);
        if (db) acc(db + i * sb, dy + i * (sa + sb) + sa, sb);
    }
    return SPO_OK;
}

#define TILE 32

/* x (n,r,c) -> y (n,c,r), in TILE x TILE blocks */
int spo_cpu_transpose_fwd(spo_dev *d, float *y, const float *x, int n, int r, int c)
{
    (void)d;
    const size_t plane = (size_t)r * c;
    for (int i = 0; i < n; i++) {
        const float *xp = x + i * plane;
        float *yp = y + i * plane;
        for (int r0 = 0; r0 < r; r0 += TILE)
            for (int c0 = 0; c0 < c; c0 += TILE) {
                const int r1 = r0 + TILE < r ? r0 + TILE : r, c1 = c0 + TILE < c ? c0 + TILE : c;
                for (int a = r0; a < r1; a++)
                    for (int b = c0; b < c1; b++) yp[(size_t)b * r + a] = xp[(size_t)a * c + b];
            }
    }
    return SPO_OK;
}

int spo_cpu_add_fwd(spo_dev *d, float *y, const float *a, const float *b, size_t n)
{
    (void)d;
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
    return SPO_OK;
}

int spo_cpu_axpy(spo_dev *d, float *y, float alpha, const float *x, size_t n)
{
    (void)d;
    for (size_t i = 0; i < n; i++) y[i] += alpha * x[i];
    return SPO_OK;
}

/* y (n,c,hw) += b (n,c) broadcast over hw */
int spo_cpu_add_nc_fwd(spo_dev *d, float *y, const float *b, int n, int c, int hw)
{
    (void)d;
    const size_t nc = (size_t)n * c;
    for (size_t i = 0; i < nc; i++) {
        float *yr = y + i * hw;
        const float v = b[i];
        for (int j = 0; j < hw; j++) yr[j] += v;
    }
    return SPO_OK;
}

/* db (n,c) += sum_hw dy */
int spo_cpu_add_nc_bwd(spo_dev *d, float *db, const float *dy, int n, int c, int hw)
{
    (void)d;
    const size_t nc = (size_t)n * c;
    for (size_t i = 0; i < nc; i++) {
        const float *r = dy + i * hw;
        double s = 0.0;
        for (int j = 0; j < hw; j++) s += r[j];
        db[i] += (float)s;
    }
    return SPO_OK;
}

int spo_cpu_scale(spo_dev *d, float *y, const float *x, float s, size_t n)
{
    (void)d;
    for (size_t i = 0; i < n; i++) y[i] = x[i] * s;
    return SPO_OK;
}
