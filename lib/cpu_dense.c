/* cpu_dense.c — linear layer on the CPU with BLAS sgemm.
 * x (M,K), w (N,K) as torch.nn.Linear stores it, b (N) -> y (M,N). */
#include <cblas.h>

#include "ops_impl.h"

/* y (M,N) = x (M,K) w^T + b */
int spo_cpu_linear_fwd(spo_dev *d, float *y, const float *x, const float *w, const float *b, int M, int K, int N)
{
    (void)d;
    float beta = 0.0f;
    if (b) {
        for (int m = 0; m < M; m++) {
            float *yr = y + (size_t)m * N;
            for (int j = 0; j < N; j++) yr[j] = b[j];
        }
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, x, K, w, K, beta, y, N);
    return SPO_OK;
}

/* dx (M,K) += dy (M,N) w (N,K); dw (N,K) += dy^T x; db (N) += sum_m dy */
int spo_cpu_linear_bwd(spo_dev *d, float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                       int M, int K, int N)
{
    (void)d;
    if (dx) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, K, N, 1.0f, dy, N, w, K, 1.0f, dx, K);
    if (dw) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, K, M, 1.0f, dy, N, x, K, 1.0f, dw, K);
    if (db) {
        for (int m = 0; m < M; m++) {
            const float *r = dy + (size_t)m * N;
            for (int j = 0; j < N; j++) db[j] += r[j];
        }
    }
    return SPO_OK;
}
