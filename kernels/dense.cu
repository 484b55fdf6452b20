// dense.cu — linear layer on CUDA (mirrors lib/ops/cpu/cpu_dense.c):
// cuBLAS sgemm, row-major through spo_cu_gemm.
// x (M,K), w (N,K) as torch.nn.Linear stores it, b (N) -> y (M,N).
#include "cuda_common.cuh"

// y (M,N) rows = b
static __global__ void spo_k_rows_bias(float *y, const float *b, size_t M, int N)
{
    SPO_CU_FOR(i, M * (size_t)N) y[i] = b[i % (size_t)N];
}

// db (N) += sum_m dy (M,N), rows in order (as the CPU): one thread a column
static __global__ void spo_k_col_sums(float *db, const float *dy, int M, int N)
{
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= N) return;
    float s = db[j];
    for (int m = 0; m < M; m++) s += dy[(size_t)m * N + j];
    db[j] = s;
}

extern "C" int spo_cuda_linear_fwd(spo_dev *d, float *y, const float *x, const float *w, const float *b, int M, int K,
                                   int N)
{
    static const char fn[] = "spo_linear_fwd";
    float beta = 0.0f;
    if (b) {
        spo_k_rows_bias<<<spo_cu_blocks((size_t)M * N), SPO_CU_THREADS>>>(y, b, (size_t)M, N);
        SPO_CU_LAUNCHED(fn);
        beta = 1.0f;
    }
    // y (M,N) = x (M,K) w^T (K,N) + beta y
    return spo_cu_gemm(d, fn, false, true, M, N, K, 1.0f, x, K, 0, w, K, 0, beta, y, N, 0, 1);
}

extern "C" int spo_cuda_linear_bwd(spo_dev *d, float *dx, float *dw, float *db, const float *dy, const float *x,
                                   const float *w, int M, int K, int N)
{
    static const char fn[] = "spo_linear_bwd";
    if (dx) // dx (M,K) += dy (M,N) w (N,K)
        SPO_TRY(spo_cu_gemm(d, fn, false, false, M, K, N, 1.0f, dy, N, 0, w, K, 0, 1.0f, dx, K, 0, 1));
    if (dw) // dw (N,K) += dy^T (N,M) x (M,K)
        SPO_TRY(spo_cu_gemm(d, fn, true, false, N, K, M, 1.0f, dy, N, 0, x, K, 0, 1.0f, dw, K, 0, 1));
    if (db) {
        spo_k_col_sums<<<(N + SPO_CU_THREADS - 1) / SPO_CU_THREADS, SPO_CU_THREADS>>>(db, dy, M, N);
        SPO_CU_LAUNCHED(fn);
    }
    return SPO_OK;
}
