/* cpu_shape.c — shape and elementwise ops on the CPU: nearest 2x upsample,
 * channel concat, last-two-dims transpose, add, axpy, per-channel bias add
 * and scale. Backward versions accumulate (+=). Large ones run in chunks
 * on the device's threads (lib/ops/cpu/cpu_pool.c); each output element is written
 * by one chunk, with the same arithmetic whatever the thread count. */
#include <string.h>

#include "ops/cpu/cpu_math.h"
#include "ops/ops_impl.h"

#define CHUNK 32768 /* elements per task: these ops only move memory */

typedef struct {
    float *y;
    const float *a, *b;
    float s;
    int n, c, h, w, r;
} shape_job;

/* x (n,c,h,w) -> y (n,c,2h,2w), y[.., 2i+a, 2j+b] = x[.., i, j]; planes [lo, hi) */
static void up_fwd_task(void *ctx, size_t lo, size_t hi, int worker)
{
    const shape_job *j = ctx;
    const int h = j->h, w = j->w;
    for (size_t pl = lo; pl < hi; pl++) {
        const float *xp = j->a + pl * h * w;
        float *yp = j->y + pl * 4 * h * w;
        for (int i = 0; i < h; i++) {
            const float *xr = xp + (size_t)i * w;
            float *y0 = yp + (size_t)2 * i * 2 * w, *y1 = y0 + 2 * w;
            for (int k = 0; k < w; k++) y0[2 * k] = y0[2 * k + 1] = xr[k];
            memcpy(y1, y0, (size_t)2 * w * sizeof *y1);
        }
    }
}

int spo_cpu_upsample2x_fwd(spo_dev *d, float *y, const float *x, int n, int c, int h, int w)
{
    shape_job j = {.y = y, .a = x, .h = h, .w = w};
    spo_cpu_parallel_for(d, (size_t)n * c, spo_cpu_grain(CHUNK, (size_t)4 * h * w), up_fwd_task, &j);
    return SPO_OK;
}

/* dx (n,c,h,w) += sum of each 2x2 block of dy (n,c,2h,2w); planes [lo, hi) */
static void up_bwd_task(void *ctx, size_t lo, size_t hi, int worker)
{
    const shape_job *j = ctx;
    const int h = j->h, w = j->w;
    for (size_t pl = lo; pl < hi; pl++) {
        float *xp = j->y + pl * h * w;
        const float *yp = j->a + pl * 4 * h * w;
        for (int i = 0; i < h; i++) {
            float *xr = xp + (size_t)i * w;
            const float *y0 = yp + (size_t)2 * i * 2 * w, *y1 = y0 + 2 * w;
            for (int k = 0; k < w; k++) xr[k] += (y0[2 * k] + y0[2 * k + 1]) + (y1[2 * k] + y1[2 * k + 1]);
        }
    }
}

int spo_cpu_upsample2x_bwd(spo_dev *d, float *dx, const float *dy, int n, int c, int h, int w)
{
    shape_job j = {.y = dx, .a = dy, .h = h, .w = w};
    spo_cpu_parallel_for(d, (size_t)n * c, spo_cpu_grain(CHUNK, (size_t)4 * h * w), up_bwd_task, &j);
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

/* x (n,r,c) -> y (n,c,r), in TILE x TILE blocks; items: (plane, row block) */
static void transpose_task(void *ctx, size_t lo, size_t hi, int worker)
{
    const shape_job *j = ctx;
    const int r = j->r, c = j->c, nrb = (r + TILE - 1) / TILE;
    const size_t plane = (size_t)r * c;
    for (size_t it = lo; it < hi; it++) {
        const size_t i = it / (size_t)nrb;
        const int r0 = (int)(it % (size_t)nrb) * TILE, r1 = r0 + TILE < r ? r0 + TILE : r;
        const float *xp = j->a + i * plane;
        float *yp = j->y + i * plane;
        for (int c0 = 0; c0 < c; c0 += TILE) {
            const int c1 = c0 + TILE < c ? c0 + TILE : c;
            for (int a = r0; a < r1; a++)
                for (int b = c0; b < c1; b++) yp[(size_t)b * r + a] = xp[(size_t)a * c + b];
        }
    }
}

int spo_cpu_transpose_fwd(spo_dev *d, float *y, const float *x, int n, int r, int c)
{
    shape_job j = {.y = y, .a = x, .r = r, .c = c};
    const size_t nrb = ((size_t)r + TILE - 1) / TILE;
    spo_cpu_parallel_for(d, (size_t)n * nrb, spo_cpu_grain(CHUNK, (size_t)TILE * c), transpose_task, &j);
    return SPO_OK;
}

/* elementwise, [lo, hi) */
static void add_task(void *ctx, size_t lo, size_t hi, int worker)
{
    const shape_job *j = ctx;
    for (size_t i = lo; i < hi; i++) j->y[i] = j->a[i] + j->b[i];
}

int spo_cpu_add_fwd(spo_dev *d, float *y, const float *a, const float *b, size_t n)
{
    shape_job j = {.y = y, .a = a, .b = b};
    spo_cpu_parallel_for(d, n, CHUNK, add_task, &j);
    return SPO_OK;
}

static void axpy_task(void *ctx, size_t lo, size_t hi, int worker)
{
    const shape_job *j = ctx;
    for (size_t i = lo; i < hi; i++) j->y[i] += j->s * j->a[i];
}

int spo_cpu_axpy(spo_dev *d, float *y, float alpha, const float *x, size_t n)
{
    shape_job j = {.y = y, .a = x, .s = alpha};
    spo_cpu_parallel_for(d, n, CHUNK, axpy_task, &j);
    return SPO_OK;
}

/* fn over the n*c rows of hw elements, with y and a as the job's y and a */
static int nc_rows(spo_dev *d, spo_cpu_task fn, float *y, const float *a, int n, int c, int hw)
{
    shape_job j = {.y = y, .a = a, .w = hw};
    spo_cpu_parallel_for(d, (size_t)n * c, spo_cpu_grain(CHUNK, (size_t)hw), fn, &j);
    return SPO_OK;
}

/* y (n,c,hw) += b (n,c) broadcast over hw (b in j->a); rows [lo, hi) of the (n*c) */
static void add_nc_task(void *ctx, size_t lo, size_t hi, int worker)
{
    const shape_job *j = ctx;
    for (size_t i = lo; i < hi; i++) {
        float *yr = j->y + i * j->w;
        const float v = j->a[i];
        for (int k = 0; k < j->w; k++) yr[k] += v;
    }
}

int spo_cpu_add_nc_fwd(spo_dev *d, float *y, const float *b, int n, int c, int hw)
{
    return nc_rows(d, add_nc_task, y, b, n, c, hw);
}

/* db (n,c) += sum_hw dy (db in j->y, dy in j->a) */
static void add_nc_bwd_task(void *ctx, size_t lo, size_t hi, int worker)
{
    const shape_job *j = ctx;
    for (size_t i = lo; i < hi; i++) j->y[i] += (float)spo_sum_d(j->a + i * j->w, (size_t)j->w);
}

int spo_cpu_add_nc_bwd(spo_dev *d, float *db, const float *dy, int n, int c, int hw)
{
    return nc_rows(d, add_nc_bwd_task, db, dy, n, c, hw);
}

static void scale_task(void *ctx, size_t lo, size_t hi, int worker)
{
    const shape_job *j = ctx;
    for (size_t i = lo; i < hi; i++) j->y[i] = j->a[i] * j->s;
}

int spo_cpu_scale(spo_dev *d, float *y, const float *x, float s, size_t n)
{
    shape_job j = {.y = y, .a = x, .s = s};
    spo_cpu_parallel_for(d, n, CHUNK, scale_task, &j);
    return SPO_OK;
}
