// attn.cu — multi-head scaled dot-product attention on CUDA (mirrors
// lib/ops/cpu/cpu_attn.c).
//
// q (b,tq,h*dh), k and v (b,tk,h*dh), heads packed in the channel dim, so
// head hi of batch bi is a strided view (leading dimension h*dh) that
// cuBLAS reads in place; the heads of one batch item are one strided
// batched product (head stride dh). Per batch item and chunk of heads:
//   S = Q K^T * scale (tq,tk); P = softmax(S) by rows, causal: P[i][j] = 0
//   for key j > query i; O = P V.
// P is written to p (b,h,tq,tk) when given (the backward needs it), else
// to scratch, in chunks of heads of at most S_MAX floats.
// Backward from P:
//   dV += P^T dO; dP = dO V^T; dS = P * (dP - rowsum(dP * P));
//   dQ += scale dS K; dK += scale dS^T Q.
#include <math.h>

#include "cuda_common.cuh"

#define S_MAX ((size_t)64 << 20) // floats of score scratch at most (256 MiB), at least one head
#define NT 256

// heads per chunk: as many as fit S_MAX floats of (tq,tk) scores, >= 1
static int head_chunk(int h, int tq, int tk)
{
    size_t per = (size_t)tq * tk, r = S_MAX / per;
    if (r < 1) r = 1;
    return r < (size_t)h ? (int)r : h;
}

// in place softmax of the rows of s (nh*tq rows of tk): one block a row;
// row r is query r % tq; causal rows see keys [0, min(q+1, tk))
static __global__ void k_softmax(float *s, int tq, int tk, int causal)
{
    float *row = s + (size_t)blockIdx.x * tk;
    const int q = (int)(blockIdx.x % (unsigned)tq);
    const int nv = causal && q + 1 < tk ? q + 1 : tk;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < nv; j += blockDim.x) mx = fmaxf(mx, row[j]);
    mx = spo_cu_block_max(mx);
    double sum = 0.0;
    for (int j = threadIdx.x; j < nv; j += blockDim.x) {
        const float e = expf(row[j] - mx);
        row[j] = e;
        sum += e;
    }
    const float f = (float)(1.0 / spo_cu_block_sum(sum));
    for (int j = threadIdx.x; j < tk; j += blockDim.x) row[j] = j < nv ? row[j] * f : 0.0f;
}

extern "C" int spo_cuda_attention_fwd(spo_dev *d, float *o, float *p, const float *q, const float *k, const float *v,
                                      int b, int tq, int tk, int h, int dh, int causal)
{
    static const char fn[] = "spo_attention_fwd";
    const int ld = h * dh, hc = head_chunk(h, tq, tk);
    const float scale = (float)(1.0 / sqrt((double)dh));
    const long long ss = (long long)tq * tk; // stride of one head's scores
    float *scr = NULL;
    if (!p && !(scr = (float *)spo_cu_scratch(d, (size_t)hc * ss * sizeof(float), fn))) return SPO_EIO;
    for (int bi = 0; bi < b; bi++)
        for (int h0 = 0; h0 < h; h0 += hc) {
            const int nh = h - h0 < hc ? h - h0 : hc;
            const size_t hoff = (size_t)h0 * dh;
            const float *Q = q + (size_t)bi * tq * ld + hoff, *K = k + (size_t)bi * tk * ld + hoff;
            const float *V = v + (size_t)bi * tk * ld + hoff;
            float *O = o + (size_t)bi * tq * ld + hoff;
            float *S = p ? p + ((size_t)bi * h + h0) * (size_t)ss : scr;
            // S (tq,tk) = scale Q (tq,dh) K^T (dh,tk), per head
            SPO_TRY(spo_cu_gemm(d, fn, false, true, tq, tk, dh, scale, Q, ld, dh, K, ld, dh, 0.0f, S, tk, ss, nh));
            k_softmax<<<(unsigned)((size_t)nh * tq), NT>>>(S, tq, tk, causal);
            SPO_CU_LAUNCHED(fn);
            // O (tq,dh) = P (tq,tk) V (tk,dh), per head
            SPO_TRY(spo_cu_gemm(d, fn, false, false, tq, dh, tk, 1.0f, S, tk, ss, V, ld, dh, 0.0f, O, ld, dh, nh));
        }
    return SPO_OK;
}

// dS = P * (dP - rowsum(dP * P)) in place over dP (rows of tk); one block a row
static __global__ void k_dsoftmax(float *ds, const float *p, int tk)
{
    float *sr = ds + (size_t)blockIdx.x * tk;
    const float *pr = p + (size_t)blockIdx.x * tk;
    double acc = 0.0;
    for (int j = threadIdx.x; j < tk; j += blockDim.x) acc += (double)sr[j] * pr[j];
    const float rs = (float)spo_cu_block_sum(acc);
    for (int j = threadIdx.x; j < tk; j += blockDim.x) sr[j] = pr[j] * (sr[j] - rs);
}

extern "C" int spo_cuda_attention_bwd(spo_dev *d, float *dq, float *dk, float *dv, const float *dout, const float *p,
                                      const float *q, const float *k, const float *v, int b, int tq, int tk, int h,
                                      int dh)
{
    static const char fn[] = "spo_attention_bwd";
    const int ld = h * dh, hc = head_chunk(h, tq, tk);
    const float scale = (float)(1.0 / sqrt((double)dh));
    const long long ss = (long long)tq * tk;
    float *dS = NULL;
    if ((dq || dk) && !(dS = (float *)spo_cu_scratch(d, (size_t)hc * ss * sizeof(float), fn))) return SPO_EIO;
    for (int bi = 0; bi < b; bi++)
        for (int h0 = 0; h0 < h; h0 += hc) {
            const int nh = h - h0 < hc ? h - h0 : hc;
            const size_t hoff = (size_t)h0 * dh, qo = (size_t)bi * tq * ld + hoff, ko = (size_t)bi * tk * ld + hoff;
            const float *P = p + ((size_t)bi * h + h0) * (size_t)ss, *dO = dout + qo;
            if (dv) // dV (tk,dh) += P^T (tk,tq) dO (tq,dh)
                SPO_TRY(spo_cu_gemm(d, fn, true, false, tk, dh, tq, 1.0f, P, tk, ss, dO, ld, dh, 1.0f, dv + ko, ld, dh,
                                    nh));
            if (!dS) continue;
            // dP (tq,tk) = dO (tq,dh) V^T (dh,tk), then dS in place
            SPO_TRY(spo_cu_gemm(d, fn, false, true, tq, tk, dh, 1.0f, dO, ld, dh, v + ko, ld, dh, 0.0f, dS, tk, ss, nh));
            k_dsoftmax<<<(unsigned)((size_t)nh * tq), NT>>>(dS, P, tk);
            SPO_CU_LAUNCHED(fn);
            if (dq) // dQ (tq,dh) += scale dS (tq,tk) K (tk,dh)
                SPO_TRY(spo_cu_gemm(d, fn, false, false, tq, dh, tk, scale, dS, tk, ss, k + ko, ld, dh, 1.0f, dq + qo,
                                    ld, dh, nh));
            if (dk) // dK (tk,dh) += scale dS^T (tk,tq) Q (tq,dh)
                SPO_TRY(spo_cu_gemm(d, fn, true, false, tk, dh, tq, scale, dS, tk, ss, q + qo, ld, dh, 1.0f, dk + ko,
                                    ld, dh, nh));
        }
    return SPO_OK;
}
