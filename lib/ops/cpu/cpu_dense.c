/* cpu_dense.c — linear layer on the CPU with BLAS sgemm.
 * x (M,K), w (N,K) as torch.nn.Linear stores it, b (N) -> y (M,N).
 * With more than one thread, y and dx are computed by blocks of ROWS rows
 * of x on the device's pool (single-threaded sgemm each: OpenBLAS's own
 * threads gain less on these shapes), dw on BLAS's threads; with one
 * thread, by one sgemm (a block re-packs w). */
#include <cblas.h>

#include "ops/ops_impl.h"

#define ROWS 256

typedef struct {
    float *y;
    const float *x, *w, *b;
    int M, K, N;
    int one; /* one block of all M rows */
} dense_job;

/* blocks of rows: ROWS each with a pool, else all M in one */
static size_t nblocks(spo_dev *d, int M) { return spo_cpu_workers(d) > 1 ? ((size_t)M + ROWS - 1) / ROWS : 1; }

/* the rows [*m0, *m0 + return) of blocks [lo, hi) */
static int rows(const dense_job *j, size_t lo, size_t hi, int *m0)
{
    if (j->one) return *m0 = 0, j->M;
    *m0 = (int)lo * ROWS;
    return ((int)hi * ROWS < j->M ? (int)hi * ROWS : j->M) - *m0;
}

/* y[m0..m1) = x[m0..m1) w^T + b */
static void fwd_task(void *ctx, size_t lo, size_t hi, int worker)
{
    const dense_job *j = ctx;
    int m0;
    const int m = rows(j, lo, hi, &m0), N = j->N;
    float *y = j->y + (size_t)m0 * N;
    float beta = 0.0f;
    if (j->b) {
        for (int r = 0; r < m; r++)
            for (int c = 0; c < N; c++) y[(size_t)r * N + c] = j->b[c];
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, N, j->K, 1.0f, j->x + (size_t)m0 * j->K, j->K, j->w,
                j->K, beta, y, N);
}

/* y (M,N) = x (M,K) w^T + b */
int spo_cpu_linear_fwd(spo_dev *d, float *y, const float *x, const float *w, const float *b, int M, int K, int N)
{
    dense_job j = {.y = y, .x = x, .w = w, .b = b, .M = M, .K = K, .N = N, .one = nblocks(d, M) == 1};
    spo_cpu_parallel_for(d, nblocks(d, M), 1, fwd_task, &j);
    return SPO_OK;
}

/* dx[m0..m1) += dy[m0..m1) w */
static void dx_task(void *ctx, size_t lo, size_t hi, int worker)
{
    const dense_job *j = ctx;
    int m0;
    const int m = rows(j, lo, hi, &m0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, j->K, j->N, 1.0f, j->x + (size_t)m0 * j->N, j->N, j->w,
                j->K, 1.0f, j->y + (size_t)m0 * j->K, j->K);
}

/* dx (M,K) += dy (M,N) w (N,K); dw (N,K) += dy^T x; db (N) += sum_m dy */
int spo_cpu_linear_bwd(spo_dev *d, float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                       int M, int K, int N)
{
    if (dx) {
        dense_job j = {.y = dx, .x = dy, .w = w, .M = M, .K = K, .N = N, .one = nblocks(d, M) == 1};
        spo_cpu_parallel_for(d, nblocks(d, M), 1, dx_task, &j);
    }
    if (dw) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, K, M, 1.0f, dy, N, x, K, 1.0f, dw, K);
    if (db) {
        for (int m = 0; m < M; m++) {
            const float *r = dy + (size_t)m * N;
            for (int j = 0; j < N; j++) db[j] += r[j];
        }
    }
    return SPO_OK;
}
