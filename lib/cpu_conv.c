/* cpu_conv.c — 2D convolution on the CPU: im2col + BLAS sgemm.
 *
 * x (n,cin,h,w), w (cout,cin,k,k), b (cout) -> y (n,cout,ho,wo), square
 * kernel, equal stride and zero padding on both axes (torch.nn.Conv2d).
 * Per image, the output rows are taken in bands so that the column buffer
 * col (cin*k*k, rows*wo) stays under spo_cpu_col_max floats whatever the image
 * size; a 1x1 convolution with stride 1 and no padding skips im2col (the
 * image itself is the column matrix). Backward: dw += dy col^T per band,
 * dcol = w^T dy then col2im adds it into dx. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "ops_impl.h"

size_t spo_cpu_col_max = (size_t)8 << 20; /* floats in the column buffer: 32 MiB */

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

/* col (cin*k*k, nr*wo) from image x (cin,h,w), output rows [r0, r0+nr) */
static void im2col(float *col, const float *x, const spo_conv *c, int wo, int r0, int nr)
{
    const int k = c->k, s = c->stride, p = c->pad, h = c->h, w = c->w;
    const size_t ncol = (size_t)nr * wo;
    for (int ci = 0; ci < c->cin; ci++) {
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
                        memset(dst, 0, (size_t)wo * sizeof *dst);
                        continue;
                    }
                    const float *src = xc + (size_t)ih * w;
                    int iw = lo * s - p + kj;
                    for (int ow = 0; ow < lo; ow++) dst[ow] = 0.0f;
                    if (s == 1)
                        memcpy(dst + lo, src + iw, (size_t)(hi - lo) * sizeof *dst);
                    else
                        for (int ow = lo; ow < hi; ow++, iw += s) dst[ow] = src[iw];
                    for (int ow = hi; ow < wo; ow++) dst[ow] = 0.0f;
                }
            }
    }
}

/* dx (cin,h,w) += the columns of col (cin*k*k, nr*wo) put back (adjoint of im2col) */
static void col2im(float *dx, const float *col, const spo_conv *c, int wo, int r0, int nr)
{
    const int k = c->k, s = c->stride, p = c->pad, h = c->h, w = c->w;
    const size_t ncol = (size_t)nr * wo;
    for (int ci = 0; ci < c->cin; ci++) {
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

/* output rows per band and the column buffer for them (NULL for 1x1) */
static int band_setup(const spo_conv *c, int ho, int wo, int *rows, float **col)
{
    *col = NULL;
    *rows = ho;
    if (is_pointwise(c)) return SPO_OK;
    size_t ckk = (size_t)c->cin * c->k * c->k, per_row = ckk * (size_t)wo;
    size_t r = spo_cpu_col_max / per_row;
    if (r < 1) r = 1;
    if (r < (size_t)ho) *rows = (int)r;
    *col = spo_cpu_scratch(per_row * (size_t)*rows);
    return *col ? SPO_OK : SPO_EIO;
}

int spo_cpu_conv2d_fwd(spo_dev *d, float *y, const float *x, const float *w, const float *b, const spo_conv *c)
{
    (void)d;
    const int ho = spo_conv_ho(c), wo = spo_conv_wo(c), ckk = c->cin * c->k * c->k;
    const size_t howo = (size_t)ho * wo, xsz = (size_t)c->cin * c->h * c->w;
    int rows;
    float *col;
    if (band_setup(c, ho, wo, &rows, &col)) return SPO_EIO;
    for (int img = 0; img < c->n; img++) {
        const float *xi = x + img * xsz;
        float *yi = y + (size_t)img * c->cout * howo;
        float beta = 0.0f;
        if (b) {
            for (int co = 0; co < c->cout; co++)
                for (size_t i = 0; i < howo; i++) yi[co * howo + i] = b[co];
            beta = 1.0f;
        }
        if (!col) { /* 1x1: y (cout,hw) = w (cout,cin) x (cin,hw) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c->cout, (int)howo, c->cin, 1.0f, w, c->cin, xi,
                        (int)howo, beta, yi, (int)howo);
            continue;
        }
        for (int r0 = 0; r0 < ho; r0 += rows) {
            int nr = ho - r0 < rows ? ho - r0 : rows, nb = nr * wo;
            im2col(col, xi, c, wo, r0, nr);
            /* y[:, band] (cout, nb) = w (cout, ckk) col (ckk, nb) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c->cout, nb, ckk, 1.0f, w, ckk, col, nb, beta,
                        yi + (size_t)r0 * wo, (int)howo);
        }
    }
    free(col);
    return SPO_OK;
}

int spo_cpu_conv2d_bwd(spo_dev *d, float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                       const spo_conv *c)
{
    (void)d;
    const int ho = spo_conv_ho(c), wo = spo_conv_wo(c), ckk = c->cin * c->k * c->k;
    const size_t howo = (size_t)ho * wo, xsz = (size_t)c->cin * c->h * c->w;
    if (!dx && !dw && !db) return SPO_OK;
    int rows = 1;
    float *col = NULL;
    if ((dx || dw) && band_setup(c, ho, wo, &rows, &col)) return SPO_EIO;
    for (int img = 0; img < c->n; img++) {
        const float *dyi = dy + (size_t)img * c->cout * howo;
        if (db)
            for (int co = 0; co < c->cout; co++) {
                const float *r = dyi + co * howo;
                double s = 0.0;
                for (size_t i = 0; i < howo; i++) s += r[i];
                db[co] += (float)s;
            }
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
                im2col(col, x + img * xsz, c, wo, r0, nr);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c->cout, ckk, nb, 1.0f, dyb, (int)howo, col, nb,
                            1.0f, dw, ckk);
            }
            if (dx) { /* dcol (ckk, nb) = w^T dy[:, band], then scatter-add */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ckk, nb, c->cout, 1.0f, w, ckk, dyb, (int)howo,
                            0.0f, col, nb);
                col2im(dx + img * xsz, col, c, wo, r0, nr);
            }
        }
    }
    free(col);
    return SPO_OK;
}
