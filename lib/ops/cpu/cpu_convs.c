/* cpu_convs.c — stride-1 convolution on the CPU as k*k shifted products,
 * without the im2col column matrix (lib/ops/cpu/cpu_conv.c calls it for stride 1,
 * k > 1 and images of at least SHIFT_MIN_HW output positions).
 *
 * The input is copied with its zero padding into xp (cin, rows, wp), wp =
 * w + 2 pad. An output row is then computed at the padded width wp (the
 * last wp - wo columns are garbage), so that for the tap (ki, kj) the
 * input the whole output needs is one strided matrix: xp + ki*wp + kj,
 * (cin, nr*wp) with leading dimension rows*wp. With wt (k*k, cout, cin)
 * the weights by tap:
 *   forward   yp (cout, nr*wp)  = sum_t wt[t] (xp + off_t)
 *   backward  (dxp + off_t)    += wt[t]^T dyp   (dyp's garbage columns 0)
 * and the result is cropped out of yp / added out of dxp. The output rows
 * are taken in bands so that xp and yp stay under spo_cpu_col_max floats;
 * bands overlap by k-1 input rows, which the backward adds band after
 * band. A tap reaches up to k-2 floats past its channel's plane (for the
 * garbage columns only): each plane of xp has k floats of zero slack, so
 * that the backward's rows of dxp + off_t never overlap. The products run
 * on the pool by blocks of ROWS result rows (single-threaded sgemm each);
 * copies, padding and cropping by channel. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops_impl.h"

/* 1: take this path for every stride-1 k > 1 convolution (tests) */
int spo_cpu_shift_force = 0;

/* The extra cost here is reordering w (cout*cin*k*k floats), im2col's is
 * writing the columns (cin*k*k*ho*wo, in short rows): this path pays when
 * the image has more positions than twice the output channels, and when
 * cin is not so small that the k*k products (inner dimension cin) run
 * slowly. */
int spo_cpu_conv_shift_ok(const spo_conv *c)
{
    if (c->stride != 1 || c->k < 2) return 0;
    const size_t hw = (size_t)spo_conv_ho(c) * spo_conv_wo(c);
    return spo_cpu_shift_force || (c->cin >= 16 && hw >= 2 * (size_t)c->cout);
}

typedef struct {
    const spo_conv *c;
    const float *x, *w, *b, *src, *wt;
    float *dst;
    int r0, nr, ho, wo, wp, rows; /* band: output rows [r0, r0+nr), rows = nr + k - 1 */
    size_t ps;                    /* plane stride of xp: rows * wp + k */
    int bwd;                      /* gemm_task: the backward's products */
} shift_job;

/* wt[t][co][ci] = w[co][ci][t]; items: co (w[co] is read k*k times while
 * it is in the cache, wt written in rows of cin) */
static void wt_task(void *ctx, size_t lo, size_t hi, int worker)
{
    const shift_job *j = ctx;
    const size_t cin = (size_t)j->c->cin, kk = (size_t)j->c->k * j->c->k, cout = (size_t)j->c->cout;
    for (size_t co = lo; co < hi; co++)
        for (size_t t = 0; t < kk; t++) {
            const float *s = j->w + co * cin * kk + t;
            float *o = j->dst + (t * cout + co) * cin;
            for (size_t ci = 0; ci < cin; ci++) o[ci] = s[ci * kk];
        }
}

/* xp[ci] (rows, wp) = the input rows r0 - pad .. with zero padding, then
 * k floats of zero slack; items: ci */
static void pad_task(void *ctx, size_t lo, size_t hi, int worker)
{
    const shift_job *j = ctx;
    const spo_conv *c = j->c;
    const int p = c->pad, wp = j->wp;
    for (size_t ci = lo; ci < hi; ci++) {
        float *o = j->dst + ci * j->ps;
        memset(o + (size_t)j->rows * wp, 0, (size_t)c->k * sizeof *o);
        const float *xc = j->x + ci * c->h * c->w;
        for (int rr = 0; rr < j->rows; rr++) {
            const int ih = j->r0 + rr - p;
            float *orow = o + (size_t)rr * wp;
            if (ih < 0 || ih >= c->h) {
                memset(orow, 0, (size_t)wp * sizeof *orow);
                continue;
            }
            for (int q = 0; q < p; q++) orow[q] = orow[p + c->w + q] = 0.0f;
            memcpy(orow + p, xc + (size_t)ih * c->w, (size_t)c->w * sizeof *orow);
        }
    }
}

/* y[co] rows r0.. = yp[co] cropped (+ b[co]); items: co */
static void crop_task(void *ctx, size_t lo, size_t hi, int worker)
{
    const shift_job *j = ctx;
    for (size_t co = lo; co < hi; co++) {
        const float bias = j->b ? j->b[co] : 0.0f;
        for (int rr = 0; rr < j->nr; rr++) {
            const float *s = j->src + (co * j->nr + rr) * j->wp;
            float *o = j->dst + (co * j->ho + j->r0 + rr) * j->wo;
            for (int q = 0; q < j->wo; q++) o[q] = s[q] + bias;
        }
    }
}

/* the geometry shared by forward and backward, the scratch (the padded
 * input band, cin planes of ps floats; the output band (cout, nr, wp); wt)
 * and wt itself, reordered from w */
typedef struct {
    int ho, wo, wp, nr; /* nr: output rows per band */
    float *scr, *in, *out, *wt;
} shift_plan;

static int plan(spo_dev *d, const spo_conv *c, const float *w, shift_plan *p)
{
    const int k = c->k;
    p->ho = spo_conv_ho(c), p->wo = spo_conv_wo(c), p->wp = c->w + 2 * c->pad;
    const size_t per_row = ((size_t)c->cin + c->cout) * p->wp, fixed = (size_t)c->cin * ((k - 1) * p->wp + k);
    size_t r = spo_cpu_col_max > fixed ? (spo_cpu_col_max - fixed) / per_row : 1;
    if (r < 1) r = 1;
    p->nr = r < (size_t)p->ho ? (int)r : p->ho;
    const size_t nxp = (size_t)c->cin * ((size_t)(p->nr + k - 1) * p->wp + k);
    p->scr = spo_cpu_scratch(d, nxp + (size_t)c->cout * p->nr * p->wp + (size_t)k * k * c->cout * c->cin);
    if (!p->scr) return SPO_EIO;
    p->in = p->scr, p->out = p->scr + nxp, p->wt = p->out + (size_t)c->cout * p->nr * p->wp;
    shift_job j = {.c = c, .w = w, .dst = p->wt};
    spo_cpu_parallel_for(d, (size_t)c->cout, spo_cpu_grain(SPO_CPU_CHUNK, (size_t)c->cin * k * k), wt_task, &j);
    return SPO_OK;
}

/* the products of a band, by blocks of ROWS rows of the result (output
 * channels forward, input channels backward) so that threads share the
 * work without BLAS's own threads; the blocks depend on the shape only */
#define ROWS 64

/* forward (bwd 0): yp[co0..co1) (+)= wt[t][co0..co1) (xp + off_t);
 * backward (bwd 1): (dxp + off_t)[ci0..ci1) += wt[t][:, ci0..ci1)^T dyp;
 * t = 0..k*k-1, the blocks [r0, r0 + m) of co (forward) or ci (backward) */
static void gemm_task(void *ctx, size_t lo, size_t hi, int worker)
{
    const shift_job *j = ctx;
    const spo_conv *c = j->c;
    const int total = j->bwd ? c->cin : c->cout;
    const int r0 = (int)lo * ROWS, m = ((int)hi * ROWS < total ? (int)hi * ROWS : total) - r0;
    const int k = c->k, nw = j->nr * j->wp;
    for (int t = 0; t < k * k; t++) {
        const float *wt = j->wt + (size_t)t * c->cout * c->cin;
        const int off = (t / k) * j->wp + t % k;
        if (j->bwd)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, nw, c->cout, 1.0f, wt + r0, c->cin, j->src, nw,
                        1.0f, j->dst + r0 * j->ps + off, (int)j->ps);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, nw, c->cin, 1.0f, wt + (size_t)r0 * c->cin,
                        c->cin, j->x + off, (int)j->ps, t ? 1.0f : 0.0f, j->dst + (size_t)r0 * nw, nw);
    }
}

int spo_cpu_conv_shift_fwd(spo_dev *d, float *y, const float *x, const float *w, const float *b, const spo_conv *c)
{
    shift_plan p;
    if (plan(d, c, w, &p)) return SPO_EIO;
    const int ho = p.ho, wo = p.wo, wp = p.wp, k = c->k;
    float *xp = p.in, *yp = p.out;
    for (int img = 0; img < c->n; img++) {
        const float *xi = x + (size_t)img * c->cin * c->h * c->w;
        float *yi = y + (size_t)img * c->cout * ho * wo;
        for (int r0 = 0; r0 < ho; r0 += p.nr) {
            const int n = ho - r0 < p.nr ? ho - r0 : p.nr, rows = n + k - 1, ps = rows * wp + k;
            shift_job j = {.c = c, .x = xi, .dst = xp, .r0 = r0, .nr = n, .wp = wp, .rows = rows, .ps = ps};
            spo_cpu_parallel_for(d, (size_t)c->cin, spo_cpu_grain(SPO_CPU_CHUNK, (size_t)ps), pad_task, &j);
            /* yp (cout, n*wp) (+)= wt[t] (cout, cin) (xp + off_t) (cin, n*wp) */
            j = (shift_job){.c = c, .x = xp, .wt = p.wt, .dst = yp, .nr = n, .wp = wp, .ps = ps};
            spo_cpu_parallel_for(d, ((size_t)c->cout + ROWS - 1) / ROWS, 1, gemm_task, &j);
            j = (shift_job){.c = c, .b = b, .src = yp, .dst = yi, .r0 = r0, .nr = n, .ho = ho, .wo = wo, .wp = wp};
            spo_cpu_parallel_for(d, (size_t)c->cout, spo_cpu_grain(SPO_CPU_CHUNK, (size_t)n * wp), crop_task, &j);
        }
    }
    spo_cpu_scratch_put(d, p.scr);
    return SPO_OK;
}

/* yp[co] (nr, wp) = dy[co] rows r0.., garbage columns 0; items: co */
static void dypad_task(void *ctx, size_t lo, size_t hi, int worker)
{
    const shift_job *j = ctx;
    for (size_t co = lo; co < hi; co++)
        for (int rr = 0; rr < j->nr; rr++) {
            float *o = j->dst + (co * j->nr + rr) * j->wp;
            memcpy(o, j->src + (co * j->ho + j->r0 + rr) * j->wo, (size_t)j->wo * sizeof *o);
            for (int q = j->wo; q < j->wp; q++) o[q] = 0.0f;
        }
}

/* dx[ci] += the interior of dxp[ci] (rows, wp); items: ci */
static void dxadd_task(void *ctx, size_t lo, size_t hi, int worker)
{
    const shift_job *j = ctx;
    const spo_conv *c = j->c;
    for (size_t ci = lo; ci < hi; ci++)
        for (int rr = 0; rr < j->rows; rr++) {
            const int ih = j->r0 + rr - c->pad;
            if (ih < 0 || ih >= c->h) continue;
            const float *s = j->src + ci * j->ps + (size_t)rr * j->wp + c->pad;
            float *o = j->dst + (ci * c->h + ih) * c->w;
            for (int q = 0; q < c->w; q++) o[q] += s[q];
        }
}

int spo_cpu_conv_shift_bwd_dx(spo_dev *d, float *dx, const float *dy, const float *w, const spo_conv *c)
{
    shift_plan p;
    if (plan(d, c, w, &p)) return SPO_EIO;
    const int ho = p.ho, wo = p.wo, wp = p.wp, k = c->k;
    float *dxp = p.in, *dyp = p.out;
    for (int img = 0; img < c->n; img++) {
        const float *dyi = dy + (size_t)img * c->cout * ho * wo;
        float *dxi = dx + (size_t)img * c->cin * c->h * c->w;
        for (int r0 = 0; r0 < ho; r0 += p.nr) {
            const int n = ho - r0 < p.nr ? ho - r0 : p.nr, rows = n + k - 1, ps = rows * wp + k;
            shift_job j = {.c = c, .src = dyi, .dst = dyp, .r0 = r0, .nr = n, .ho = ho, .wo = wo, .wp = wp};
            spo_cpu_parallel_for(d, (size_t)c->cout, spo_cpu_grain(SPO_CPU_CHUNK, (size_t)n * wp), dypad_task, &j);
            memset(dxp, 0, (size_t)c->cin * ps * sizeof *dxp);
            /* (dxp + off_t) (cin, n*wp) += wt[t]^T (cin, cout) dyp (cout, n*wp) */
            j = (shift_job){.c = c, .src = dyp, .wt = p.wt, .dst = dxp, .nr = n, .wp = wp, .ps = ps, .bwd = 1};
            spo_cpu_parallel_for(d, ((size_t)c->cin + ROWS - 1) / ROWS, 1, gemm_task, &j);
            j = (shift_job){.c = c, .src = dxp, .dst = dxi, .r0 = r0, .wp = wp, .rows = rows, .ps = ps};
            spo_cpu_parallel_for(d, (size_t)c->cin, spo_cpu_grain(SPO_CPU_CHUNK, (size_t)rows * wp), dxadd_task, &j);
        }
    }
    spo_cpu_scratch_put(d, p.scr);
    return SPO_OK;
}
