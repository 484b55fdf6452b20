/* cpu_conv.c — 2D convolution on the CPU: im2col + BLAS sgemm.
 *
 * x (n,cin,h,w), w (cout,cin,k,k), b (cout) -> y (n,cout,ho,wo), square
 * kernel, equal stride and zero padding on both axes (torch.nn.Conv2d).
 * Per image, the output rows are taken in bands so that the column buffer
 * col (cin*k*k, rows*wo) stays under spo_cpu_col_max floats whatever the image
 * size; a 1x1 convolution with stride 1 and no padding skips im2col (the
 * image itself is the column matrix). Backward: dw += dy col^T per band,
 * dcol = w^T dy then col2im adds it into dx.
 * sgemm runs on the device's BLAS threads; im2col and col2im, the bias and
 * its gradient run on the pool (lib/ops/cpu/cpu_pool.c), split by channel.
 * Stride-1 convolutions of larger images (and their backward to the input
 * alone) go to lib/ops/cpu/cpu_convs.c instead, which needs no column matrix. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "ops/cpu/cpu_math.h"
#include "ops/ops_impl.h"

/* the output columns ow in [*lo, *hi) read input column ow*s - pad + kj inside [0, w) */
static void valid_cols(const spo_conv *c, int wo, int kj, int *lo, int *hi)
{
    int s = c->stride, a = c->pad - kj, e = c->w - 1 + c->pad - kj;
    int l = a > 0 ? (a + s - 1) / s : 0;
    int u = e < 0 ? 0 : e / s + 1;
    if (u > wo) u = wo;
    if (l > u) l = u;
    *lo = l, *hi = u;
}

/* col (cin*k*k, nr*wo) from image x (cin,h,w), output rows [r0, r0+nr),
 * the rows of input channels [c0, c1) */
static void im2col(float *col, const float *x, const spo_conv *c, int wo, int r0, int nr, int c0, int c1)
{
    const int k = c->k, s = c->stride, p = c->pad, h = c->h, w = c->w;
    const size_t ncol = (size_t)nr * wo;
    for (int ci = c0; ci < c1; ci++) {
        const float *xc = x + (size_t)ci * h * w;
        for (int ki = 0; ki < k; ki++)
            for (int kj = 0; kj < k; kj++) {
                float *row = col + ((size_t)(ci * k + ki) * k + kj) * ncol;
                int lo, hi;
                valid_cols(c, wo, kj, &lo, &hi);
                for (int r = 0; r < nr; r++) {
                    float *dst = row + (size_t)r * wo;
                    int ih = (r0 + r) * s - p + ki;
                    if (ih < 0 || ih >= h || lo == hi) {
                        for (int ow = 0; ow < wo; ow++) dst[ow] = 0.0f;
                        continue;
                    }
                    const float *src = xc + (size_t)ih * w;
                    int iw = lo * s - p + kj;
                    for (int ow = 0; ow < lo; ow++) dst[ow] = 0.0f;
                    if (s == 1) { /* short rows: a loop, not a memcpy call */
                        const float *sp = src + iw - lo;
                        for (int ow = lo; ow < hi; ow++) dst[ow] = sp[ow];
                    } else
                        for (int ow = lo; ow < hi; ow++, iw += s) dst[ow] = src[iw];
                    for (int ow = hi; ow < wo; ow++) dst[ow] = 0.0f;
                }
            }
    }
}

/* dx (cin,h,w) += the columns of col (cin*k*k, nr*wo) put back (adjoint of
 * im2col), input channels [c0, c1) */
static void col2im(float *dx, const float *col, const spo_conv *c, int wo, int r0, int nr, int c0, int c1)
{
    const int k = c->k, s = c->stride, p = c->pad, h = c->h, w = c->w;
    const size_t ncol = (size_t)nr * wo;
    for (int ci = c0; ci < c1; ci++) {
        float *xc = dx + (size_t)ci * h * w;
        for (int ki = 0; ki < k; ki++)
            for (int kj = 0; kj < k; kj++) {
                const float *row = col + ((size_t)(ci * k + ki) * k + kj) * ncol;
                int lo, hi;
                valid_cols(c, wo, kj, &lo, &hi);
                for (int r = 0; r < nr; r++) {
                    int ih = (r0 + r) * s - p + ki;
                    if (ih < 0 || ih >= h) continue;
                    const float *src = row + (size_t)r * wo;
                    float *dst = xc + (size_t)ih * w;
                    int iw = lo * s - p + kj;
                    for (int ow = lo; ow < hi; ow++, iw += s) dst[iw] += src[ow];
                }
            }
    }
}

static int is_pointwise(const spo_conv *c) { return c->k == 1 && c->stride == 1 && c->pad == 0; }

typedef struct {
    const spo_conv *c;
    float *col, *img; /* img: x for im2col, dx for col2im */
    const float *ccol, *cimg, *b;
    float *y;
    int wo, r0, nr;
    size_t howo;
} conv_job;

static void im2col_task(void *ctx, size_t lo, size_t hi, int worker)
{
    const conv_job *j = ctx;
    im2col(j->col, j->cimg, j->c, j->wo, j->r0, j->nr, (int)lo, (int)hi);
}

static void col2im_task(void *ctx, size_t lo, size_t hi, int worker)
{
    const conv_job *j = ctx;
    col2im(j->img, j->ccol, j->c, j->wo, j->r0, j->nr, (int)lo, (int)hi);
}

/* channels per task for a job of `per` elements a channel */
static void par_im2col(spo_dev *d, float *col, const float *x, const spo_conv *c, int wo, int r0, int nr)
{
    conv_job j = {.c = c, .col = col, .cimg = x, .wo = wo, .r0 = r0, .nr = nr};
    const size_t per = (size_t)c->k * c->k * nr * wo; /* elements of one input channel */
    spo_cpu_parallel_for(d, (size_t)c->cin, spo_cpu_grain(SPO_CPU_CHUNK, per), im2col_task, &j);
}

static void par_col2im(spo_dev *d, float *dx, const float *col, const spo_conv *c, int wo, int r0, int nr)
{
    conv_job j = {.c = c, .img = dx, .ccol = col, .wo = wo, .r0 = r0, .nr = nr};
    const size_t per = (size_t)c->k * c->k * nr * wo; /* elements of one input channel */
    spo_cpu_parallel_for(d, (size_t)c->cin, spo_cpu_grain(SPO_CPU_CHUNK, per), col2im_task, &j);
}

/* y[co] (howo) = b[co], channels [lo, hi) */
static void bias_task(void *ctx, size_t lo, size_t hi, int worker)
{
    const conv_job *j = ctx;
    for (size_t co = lo; co < hi; co++) {
        float *r = j->y + co * j->howo;
        const float v = j->b[co];
        for (size_t i = 0; i < j->howo; i++) r[i] = v;
    }
}

/* db[co] += sum over the images and positions of dy, channels [lo, hi) */
static void dbias_task(void *ctx, size_t lo, size_t hi, int worker)
{
    const conv_job *j = ctx;
    const int cout = j->c->cout;
    for (size_t co = lo; co < hi; co++)
        for (int img = 0; img < j->c->n; img++)
            j->y[co] += (float)spo_sum_d(j->cimg + ((size_t)img * cout + co) * j->howo, j->howo);
}

/* output rows per band and the column buffer for them (NULL for 1x1) */
static int band_setup(spo_dev *d, const spo_conv *c, int ho, int wo, int *rows, float **col)
{
    *col = NULL;
    *rows = ho;
    if (is_pointwise(c)) return SPO_OK;
    size_t ckk = (size_t)c->cin * c->k * c->k, per_row = ckk * (size_t)wo;
    size_t r = spo_cpu_col_max / per_row;
    if (r < 1) r = 1;
    if (r < (size_t)ho) *rows = (int)r;
    *col = spo_cpu_scratch(d, per_row * (size_t)*rows);
    return *col ? SPO_OK : SPO_EIO;
}

int spo_cpu_conv2d_fwd(spo_dev *d, float *y, const float *x, const float *w, const float *b, const spo_conv *c)
{
    if (spo_cpu_conv_shift_ok(c)) return spo_cpu_conv_shift_fwd(d, y, x, w, b, c);
    const int ho = spo_conv_ho(c), wo = spo_conv_wo(c), ckk = c->cin * c->k * c->k;
    const size_t howo = (size_t)ho * wo, xsz = (size_t)c->cin * c->h * c->w;
    int rows;
    float *col;
    if (band_setup(d, c, ho, wo, &rows, &col)) return SPO_EIO;
    for (int img = 0; img < c->n; img++) {
        const float *xi = x + img * xsz;
        float *yi = y + (size_t)img * c->cout * howo;
        float beta = 0.0f;
        if (b) {
            conv_job j = {.y = yi, .b = b, .howo = howo};
            spo_cpu_parallel_for(d, (size_t)c->cout, spo_cpu_grain(SPO_CPU_CHUNK, howo), bias_task, &j);
            beta = 1.0f;
        }
        if (!col) { /* 1x1: y (cout,hw) = w (cout,cin) x (cin,hw) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c->cout, (int)howo, c->cin, 1.0f, w, c->cin, xi,
                        (int)howo, beta, yi, (int)howo);
            continue;
        }
        for (int r0 = 0; r0 < ho; r0 += rows) {
            int nr = ho - r0 < rows ? ho - r0 : rows, nb = nr * wo;
            par_im2col(d, col, xi, c, wo, r0, nr);
            /* y[:, band] (cout, nb) = w (cout, ckk) col (ckk, nb) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c->cout, nb, ckk, 1.0f, w, ckk, col, nb, beta,
                        yi + (size_t)r0 * wo, (int)howo);
        }
    }
    spo_cpu_scratch_put(d, col);
    return SPO_OK;
}

int spo_cpu_conv2d_bwd(spo_dev *d, float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                       const spo_conv *c)
{
    const int ho = spo_conv_ho(c), wo = spo_conv_wo(c), ckk = c->cin * c->k * c->k;
    const size_t howo = (size_t)ho * wo, xsz = (size_t)c->cin * c->h * c->w;
    if (!dx && !dw && !db) return SPO_OK;
    if (db) {
        conv_job j = {.c = c, .y = db, .cimg = dy, .howo = howo};
        spo_cpu_parallel_for(d, (size_t)c->cout, spo_cpu_grain(SPO_CPU_CHUNK, (size_t)c->n * howo), dbias_task, &j);
    }
    if (!dw && dx && spo_cpu_conv_shift_ok(c)) return spo_cpu_conv_shift_bwd_dx(d, dx, dy, w, c);
    int rows = 1;
    float *col = NULL;
    if ((dx || dw) && band_setup(d, c, ho, wo, &rows, &col)) return SPO_EIO;
    for (int img = 0; img < c->n; img++) {
        const float *dyi = dy + (size_t)img * c->cout * howo;
        if (!dx && !dw) continue;
        if (!col) { /* 1x1 */
            if (dw) /* dw (cout,cin) += dy (cout,hw) x^T */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c->cout, c->cin, (int)howo, 1.0f, dyi,
                            (int)howo, x + img * xsz, (int)howo, 1.0f, dw, c->cin);
            if (dx) /* dx (cin,hw) += w^T dy */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, c->cin, (int)howo, c->cout, 1.0f, w, c->cin,
                            dyi, (int)howo, 1.0f, dx + img * xsz, (int)howo);
            continue;
        }
        for (int r0 = 0; r0 < ho; r0 += rows) {
            int nr = ho - r0 < rows ? ho - r0 : rows, nb = nr * wo;
            const float *dyb = dyi + (size_t)r0 * wo;
            if (dw) { /* dw (cout, ckk) += dy[:, band] col^T */
                par_im2col(d, col, x + img * xsz, c, wo, r0, nr);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c->cout, ckk, nb, 1.0f, dyb, (int)howo, col, nb,
                            1.0f, dw, ckk);
            }
            if (dx) { /* dcol (ckk, nb) = w^T dy[:, band], then scatter-add */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ckk, nb, c->cout, 1.0f, w, ckk, dyb, (int)howo,
                            0.0f, col, nb);
                par_col2im(d, dx + img * xsz, col, c, wo, r0, nr);
            }
        }
    }
    spo_cpu_scratch_put(d, col);
    return SPO_OK;
}
