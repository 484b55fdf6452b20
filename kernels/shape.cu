// shape.cu — shape and elementwise ops on CUDA (mirrors
// lib/ops/cpu/cpu_shape.c): nearest 2x upsample, channel concat,
// last-two-dims transpose, add, axpy, per-channel bias add and scale. One
// thread per output element (grid-stride); backward versions accumulate
// (+=). add's y may alias a or b and scale's y may equal x: each element is
// read and written by the same thread.
#include "cuda_common.cuh"

// x (n,c,h,w) -> y (n,c,2h,2w), y[.., 2i+a, 2j+b] = x[.., i, j]
static __global__ void k_up_fwd(float *y, const float *x, size_t planes, int h, int w)
{
    const size_t w2 = (size_t)2 * w, per = (size_t)4 * h * w;
    SPO_CU_FOR(e, planes * per)
    {
        const size_t pl = e / per, r = e % per, oi = r / w2, oj = r % w2;
        y[e] = x[(pl * h + oi / 2) * w + oj / 2];
    }
}

// dx (n,c,h,w) += sum of each 2x2 block of dy (n,c,2h,2w), in the CPU's order
static __global__ void k_up_bwd(float *dx, const float *dy, size_t planes, int h, int w)
{
    SPO_CU_FOR(e, planes * (size_t)h * w)
    {
        const size_t pl = e / ((size_t)h * w), r = e % ((size_t)h * w), i = r / w, k = r % w;
        const float *y0 = dy + pl * 4 * h * w + 2 * i * 2 * w, *y1 = y0 + 2 * w;
        dx[e] += (y0[2 * k] + y0[2 * k + 1]) + (y1[2 * k] + y1[2 * k + 1]);
    }
}

extern "C" int spo_cuda_upsample2x_fwd(spo_dev *d, float *y, const float *x, int n, int c, int h, int w)
{
    (void)d;
    const size_t planes = (size_t)n * c;
    k_up_fwd<<<spo_cu_blocks(planes * 4 * h * w), SPO_CU_THREADS>>>(y, x, planes, h, w);
    SPO_CU_LAUNCHED("spo_upsample2x_fwd");
    return SPO_OK;
}

extern "C" int spo_cuda_upsample2x_bwd(spo_dev *d, float *dx, const float *dy, int n, int c, int h, int w)
{
    (void)d;
    const size_t planes = (size_t)n * c;
    k_up_bwd<<<spo_cu_blocks(planes * h * w), SPO_CU_THREADS>>>(dx, dy, planes, h, w);
    SPO_CU_LAUNCHED("spo_upsample2x_bwd");
    return SPO_OK;
}

// a (n,ca,hw), b (n,cb,hw) -> y (n,ca+cb,hw); sa = ca*hw, sb = cb*hw
static __global__ void k_concat_fwd(float *y, const float *a, const float *b, size_t n, size_t sa, size_t sb)
{
    const size_t s = sa + sb;
    SPO_CU_FOR(e, n * s)
    {
        const size_t i = e / s, r = e % s;
        y[e] = r < sa ? a[i * sa + r] : b[i * sb + (r - sa)];
    }
}

// da += dy[:, :ca], db += dy[:, ca:] (either may be NULL)
static __global__ void k_concat_bwd(float *da, float *db, const float *dy, size_t n, size_t sa, size_t sb)
{
    const size_t s = sa + sb;
    SPO_CU_FOR(e, n * s)
    {
        const size_t i = e / s, r = e % s;
        if (r < sa) {
            if (da) da[i * sa + r] += dy[e];
        } else if (db)
            db[i * sb + (r - sa)] += dy[e];
    }
}

extern "C" int spo_cuda_concat_fwd(spo_dev *d, float *y, const float *a, const float *b, int n, int ca, int cb, int hw)
{
    (void)d;
    const size_t sa = (size_t)ca * hw, sb = (size_t)cb * hw;
    k_concat_fwd<<<spo_cu_blocks((size_t)n * (sa + sb)), SPO_CU_THREADS>>>(y, a, b, (size_t)n, sa, sb);
    SPO_CU_LAUNCHED("spo_concat_fwd");
    return SPO_OK;
}

extern "C" int spo_cuda_concat_bwd(spo_dev *d, float *da, float *db, const float *dy, int n, int ca, int cb, int hw)
{
    (void)d;
    const size_t sa = (size_t)ca * hw, sb = (size_t)cb * hw;
    k_concat_bwd<<<spo_cu_blocks((size_t)n * (sa + sb)), SPO_CU_THREADS>>>(da, db, dy, (size_t)n, sa, sb);
    SPO_CU_LAUNCHED("spo_concat_bwd");
    return SPO_OK;
}

// x (n,r,c) -> y (n,c,r): one thread per output element y[i][b][a] = x[i][a][b]
static __global__ void k_transpose(float *y, const float *x, size_t n, int r, int c)
{
    const size_t plane = (size_t)r * c;
    SPO_CU_FOR(e, n * plane)
    {
        const size_t i = e / plane, t = e % plane, bb = t / (size_t)r, a = t % (size_t)r;
        y[e] = x[i * plane + a * c + bb];
    }
}

extern "C" int spo_cuda_transpose_fwd(spo_dev *d, float *y, const float *x, int n, int r, int c)
{
    (void)d;
    k_transpose<<<spo_cu_blocks((size_t)n * r * c), SPO_CU_THREADS>>>(y, x, (size_t)n, r, c);
    SPO_CU_LAUNCHED("spo_transpose_fwd");
    return SPO_OK;
}

static __global__ void k_add(float *y, const float *a, const float *b, size_t n)
{
    SPO_CU_FOR(i, n) y[i] = a[i] + b[i];
}

extern "C" int spo_cuda_add_fwd(spo_dev *d, float *y, const float *a, const float *b, size_t n)
{
    (void)d;
    k_add<<<spo_cu_blocks(n), SPO_CU_THREADS>>>(y, a, b, n);
    SPO_CU_LAUNCHED("spo_add_fwd");
    return SPO_OK;
}

static __global__ void k_axpy(float *y, float alpha, const float *x, size_t n)
{
    SPO_CU_FOR(i, n) y[i] += alpha * x[i];
}

extern "C" int spo_cuda_axpy(spo_dev *d, float *y, float alpha, const float *x, size_t n)
{
    (void)d;
    k_axpy<<<spo_cu_blocks(n), SPO_CU_THREADS>>>(y, alpha, x, n);
    SPO_CU_LAUNCHED("spo_axpy");
    return SPO_OK;
}

// y (n,c,hw) += b (n,c) broadcast over hw
static __global__ void k_add_nc(float *y, const float *b, size_t rows, int hw)
{
    SPO_CU_FOR(e, rows * (size_t)hw) y[e] += b[e / (size_t)hw];
}

extern "C" int spo_cuda_add_nc_fwd(spo_dev *d, float *y, const float *b, int n, int c, int hw)
{
    (void)d;
    const size_t rows = (size_t)n * c;
    k_add_nc<<<spo_cu_blocks(rows * hw), SPO_CU_THREADS>>>(y, b, rows, hw);
    SPO_CU_LAUNCHED("spo_add_nc_fwd");
    return SPO_OK;
}

// db (n,c) += sum_hw dy, a double sum per row (as the CPU); one block a row
static __global__ void k_add_nc_bwd(float *db, const float *dy, int hw)
{
    const float *r = dy + (size_t)blockIdx.x * hw;
    double s = 0.0;
    for (int k = threadIdx.x; k < hw; k += blockDim.x) s += r[k];
    s = spo_cu_block_sum(s);
    if (threadIdx.x == 0) db[blockIdx.x] += (float)s;
}

extern "C" int spo_cuda_add_nc_bwd(spo_dev *d, float *db, const float *dy, int n, int c, int hw)
{
    (void)d;
    k_add_nc_bwd<<<(unsigned)((size_t)n * c), SPO_CU_THREADS>>>(db, dy, hw);
    SPO_CU_LAUNCHED("spo_add_nc_bwd");
    return SPO_OK;
}

static __global__ void k_scale(float *y, const float *x, float s, size_t n)
{
    SPO_CU_FOR(i, n) y[i] = x[i] * s;
}

extern "C" int spo_cuda_scale(spo_dev *d, float *y, const float *x, float s, size_t n)
{
    (void)d;
    k_scale<<<spo_cu_blocks(n), SPO_CU_THREADS>>>(y, x, s, n);
    SPO_CU_LAUNCHED("spo_scale");
    return SPO_OK;
}
