// conv.cu — 2D convolution on CUDA (mirrors lib/ops/cpu/cpu_conv.c and
// cpu_convs.c): im2col + cuBLAS sgemm, per image and per band of output
// rows so that the column matrix col (cin*k*k, rows*wo) stays under
// COL_MAX floats whatever the image size. A 1x1 convolution with stride 1
// and no padding skips im2col (the image is the column matrix).
// x (n,cin,h,w), w (cout,cin,k,k), b (cout) -> y (n,cout,ho,wo); square
// kernel, equal stride and zero padding on both axes (torch.nn.Conv2d).
// Backward: db += sums of dy; dw += dy col^T per band; dcol = w^T dy, then
// col2im adds it into dx, as a gather (one thread per input element, no
// atomics, the same sum order on every run).
#include "cuda_common.cuh"

#define COL_MAX ((size_t)64 << 20) // floats in the column buffer at most (256 MiB)

// col (ckk, nr*wo): row (ci*k + ki)*k + kj, column r*wo + ow holds input
// x[ci][(r0+r)*s - p + ki][ow*s - p + kj], 0 outside the image
static __global__ void k_im2col(float *col, const float *x, int cin, int h, int w, int k, int s, int p, int wo, int r0,
                                int nr)
{
    const size_t ncol = (size_t)nr * wo, total = (size_t)cin * k * k * ncol;
    SPO_CU_FOR(i, total)
    {
        const size_t row = i / ncol, cc = i % ncol;
        const int r = (int)(cc / (size_t)wo), ow = (int)(cc % (size_t)wo);
        const int kj = (int)(row % (size_t)k), ki = (int)(row / (size_t)k % (size_t)k), ci = (int)(row / ((size_t)k * k));
        const int ih = (r0 + r) * s - p + ki, iw = ow * s - p + kj;
        col[i] = ih >= 0 && ih < h && iw >= 0 && iw < w ? x[((size_t)ci * h + ih) * w + iw] : 0.0f;
    }
}

// dx (cin,h,w) += the adjoint of k_im2col applied to col (ckk, nr*wo), the
// output rows [r0, r0+nr): each input element sums the column entries that
// read it, over (ki, kj) in order
static __global__ void k_col2im(float *dx, const float *col, int cin, int h, int w, int k, int s, int p, int wo,
                                int r0, int nr)
{
    const size_t ncol = (size_t)nr * wo, total = (size_t)cin * h * w;
    SPO_CU_FOR(i, total)
    {
        const int iw = (int)(i % (size_t)w), ih = (int)(i / (size_t)w % (size_t)h), ci = (int)(i / ((size_t)h * w));
        float acc = 0.0f;
        bool any = false;
        for (int ki = 0; ki < k; ki++) {
            const int th = ih + p - ki; // = oh * s
            if (th < 0 || th % s) continue;
            const int oh = th / s;
            if (oh < r0 || oh >= r0 + nr) continue;
            for (int kj = 0; kj < k; kj++) {
                const int tw = iw + p - kj;
                if (tw < 0 || tw % s) continue;
                const int ow = tw / s;
                if (ow >= wo) continue;
                acc += col[((size_t)(ci * k + ki) * k + kj) * ncol + (size_t)(oh - r0) * wo + ow];
                any = true;
            }
        }
        if (any) dx[i] += acc;
    }
}

// y (n,cout,howo): every plane of channel co = b[co]
static __global__ void k_bias_planes(float *y, const float *b, int cout, size_t howo, size_t total)
{
    SPO_CU_FOR(i, total) y[i] = b[i / howo % (size_t)cout];
}

// db[co] += sum over images and positions of dy (n,cout,howo) (a double
// sum, as the CPU's): one block per channel
static __global__ void k_dbias(float *db, const float *dy, int n, int cout, size_t howo)
{
    const int co = blockIdx.x;
    float acc = db[co];
    for (int img = 0; img < n; img++) { // each image's sum is added as a float, as the CPU does
        const float *r = dy + ((size_t)img * cout + co) * howo;
        double s = 0.0;
        for (size_t i = threadIdx.x; i < howo; i += blockDim.x) s += r[i];
        acc += (float)spo_cu_block_sum(s);
    }
    if (threadIdx.x == 0) db[co] = acc;
}

static bool is_pointwise(const spo_conv *c) { return c->k == 1 && c->stride == 1 && c->pad == 0; }

// output rows per band
static int band_rows(const spo_conv *c, int ho, int wo)
{
    size_t per_row = (size_t)c->cin * c->k * c->k * (size_t)wo, r = COL_MAX / per_row;
    if (r < 1) r = 1;
    return r < (size_t)ho ? (int)r : ho;
}

extern "C" int spo_cuda_conv2d_fwd(spo_dev *d, float *y, const float *x, const float *w, const float *b,
                                   const spo_conv *c)
{
    static const char fn[] = "spo_conv2d_fwd";
    const int ho = spo_conv_ho(c), wo = spo_conv_wo(c), ckk = c->cin * c->k * c->k;
    const size_t howo = (size_t)ho * wo, xsz = (size_t)c->cin * c->h * c->w, ysz = (size_t)c->cout * howo;
    float beta = 0.0f;
    if (b) {
        k_bias_planes<<<spo_cu_blocks(ysz * c->n), SPO_CU_THREADS>>>(y, b, c->cout, howo, ysz * c->n);
        SPO_CU_LAUNCHED(fn);
        beta = 1.0f;
    }
    if (is_pointwise(c)) // y (cout,hw) = w (cout,cin) x (cin,hw), every image at once
        return spo_cu_gemm(d, fn, false, false, c->cout, (int)howo, c->cin, 1.0f, w, c->cin, 0, x, (int)howo,
                           (long long)xsz, beta, y, (int)howo, (long long)ysz, c->n);
    const int rows = band_rows(c, ho, wo);
    float *col = (float *)spo_cu_scratch(d, (size_t)ckk * rows * wo * sizeof(float), fn);
    if (!col) return SPO_EIO;
    for (int img = 0; img < c->n; img++) {
        const float *xi = x + img * xsz;
        float *yi = y + img * ysz;
        for (int r0 = 0; r0 < ho; r0 += rows) {
            const int nr = ho - r0 < rows ? ho - r0 : rows, nb = nr * wo;
            k_im2col<<<spo_cu_blocks((size_t)ckk * nb), SPO_CU_THREADS>>>(col, xi, c->cin, c->h, c->w, c->k,
                                                                          c->stride, c->pad, wo, r0, nr);
            SPO_CU_LAUNCHED(fn);
            // y[:, band] (cout, nb) = w (cout, ckk) col (ckk, nb)
            SPO_TRY(spo_cu_gemm(d, fn, false, false, c->cout, nb, ckk, 1.0f, w, ckk, 0, col, nb, 0, beta,
                                yi + (size_t)r0 * wo, (int)howo, 0, 1));
        }
    }
    return SPO_OK;
}

extern "C" int spo_cuda_conv2d_bwd(spo_dev *d, float *dx, float *dw, float *db, const float *dy, const float *x,
                                   const float *w, const spo_conv *c)
{
    static const char fn[] = "spo_conv2d_bwd";
    const int ho = spo_conv_ho(c), wo = spo_conv_wo(c), ckk = c->cin * c->k * c->k;
    const size_t howo = (size_t)ho * wo, xsz = (size_t)c->cin * c->h * c->w, ysz = (size_t)c->cout * howo;
    if (db) {
        k_dbias<<<c->cout, SPO_CU_THREADS>>>(db, dy, c->n, c->cout, howo);
        SPO_CU_LAUNCHED(fn);
    }
    if (!dx && !dw) return SPO_OK;
    if (is_pointwise(c)) {
        for (int img = 0; img < c->n; img++) {
            const float *dyi = dy + img * ysz;
            if (dw) // dw (cout,cin) += dy (cout,hw) x^T (hw,cin); images in order
                SPO_TRY(spo_cu_gemm(d, fn, false, true, c->cout, c->cin, (int)howo, 1.0f, dyi, (int)howo, 0,
                                    x + img * xsz, (int)howo, 0, 1.0f, dw, c->cin, 0, 1));
        }
        if (dx) // dx (cin,hw) += w^T (cin,cout) dy (cout,hw), every image at once
            SPO_TRY(spo_cu_gemm(d, fn, true, false, c->cin, (int)howo, c->cout, 1.0f, w, c->cin, 0, dy, (int)howo,
                                (long long)ysz, 1.0f, dx, (int)howo, (long long)xsz, c->n));
        return SPO_OK;
    }
    const int rows = band_rows(c, ho, wo);
    float *col = (float *)spo_cu_scratch(d, (size_t)ckk * rows * wo * sizeof(float), fn);
    if (!col) return SPO_EIO;
    for (int img = 0; img < c->n; img++) {
        const float *dyi = dy + img * ysz;
        for (int r0 = 0; r0 < ho; r0 += rows) {
            const int nr = ho - r0 < rows ? ho - r0 : rows, nb = nr * wo;
            const float *dyb = dyi + (size_t)r0 * wo;
            if (dw) { // dw (cout, ckk) += dy[:, band] (cout, nb) col^T (nb, ckk)
                k_im2col<<<spo_cu_blocks((size_t)ckk * nb), SPO_CU_THREADS>>>(col, x + img * xsz, c->cin, c->h, c->w,
                                                                              c->k, c->stride, c->pad, wo, r0, nr);
                SPO_CU_LAUNCHED(fn);
                SPO_TRY(spo_cu_gemm(d, fn, false, true, c->cout, ckk, nb, 1.0f, dyb, (int)howo, 0, col, nb, 0, 1.0f,
                                    dw, ckk, 0, 1));
            }
            if (dx) { // dcol (ckk, nb) = w^T (ckk, cout) dy[:, band] (cout, nb), then gather-add
                SPO_TRY(spo_cu_gemm(d, fn, true, false, ckk, nb, c->cout, 1.0f, w, ckk, 0, dyb, (int)howo, 0, 0.0f,
                                    col, nb, 0, 1));
                k_col2im<<<spo_cu_blocks(xsz), SPO_CU_THREADS>>>(dx + img * xsz, col, c->cin, c->h, c->w, c->k,
                                                                 c->stride, c->pad, wo, r0, nr);
                SPO_CU_LAUNCHED(fn);
            }
        }
    }
    return SPO_OK;
}
