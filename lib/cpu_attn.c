/* cpu_attn.c — multi-head scaled dot-product attention on the CPU.
 *
 * q (b,tq,h*dh), k and v (b,tk,h*dh), heads packed in the channel dim, so
 * head hi of batch bi is a strided view (leading dimension h*dh) that BLAS
 * reads in place. Per (bi,hi) and per block of query rows:
 *   S = Q K^T * scale (nq,tk); P = softmax(S) by rows, causal: P[i][j] = 0
 *   for key j > query i; O = P V.
 * P goes to p (b,h,tq,tk) when given (for backward), otherwise to a scratch
 * block of at most spo_cpu_attn_max floats. Backward from P:
 *   dV += P^T dO; dP = dO V^T; dS = P * (dP - rowsum(dP * P));
 *   dQ += scale dS K; dK += scale dS^T Q. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>

#include "ops_impl.h"

size_t spo_cpu_attn_max = (size_t)4 << 20; /* floats of score scratch: 16 MiB */

static int block_rows(int tq, int tk)
{
    size_t r = spo_cpu_attn_max / (size_t)tk;
    if (r < 1) r = 1;
    return r < (size_t)tq ? (int)r : tq;
}

/* in place softmax of the rows of s (nq,tk); row r is query q0 + r */
static void softmax_rows(float *s, int nq, int tk, int q0, int causal)
{
    for (int r = 0; r < nq; r++) {
        float *row = s + (size_t)r * tk;
        int nv = causal && q0 + r + 1 < tk ? q0 + r + 1 : tk; /* keys [0, nv) visible */
        float mx = row[0];
        for (int j = 1; j < nv; j++)
            if (row[j] > mx) mx = row[j];
        double sum = 0.0;
        for (int j = 0; j < nv; j++) {
            row[j] = expf(row[j] - mx);
            sum += row[j];
        }
        const float inv = (float)(1.0 / sum);
        for (int j = 0; j < nv; j++) row[j] *= inv;
        for (int j = nv; j < tk; j++) row[j] = 0.0f;
    }
}

int spo_cpu_attention_fwd(spo_dev *d, float *o, float *p, const float *q, const float *k, const float *v, int b,
                          int tq, int tk, int h, int dh, int causal)
{
    (void)d;
    const int ld = h * dh;
    const float scale = (float)(1.0 / sqrt((double)dh));
    const int qb = p ? tq : block_rows(tq, tk);
    float *scr = NULL;
    if (!p && !(scr = spo_cpu_scratch((size_t)qb * tk))) return SPO_EIO;
    for (int bi = 0; bi < b; bi++)
        for (int hi = 0; hi < h; hi++) {
            const size_t hoff = (size_t)hi * dh;
            const float *Q = q + (size_t)bi * tq * ld + hoff, *K = k + (size_t)bi * tk * ld + hoff;
            const float *V = v + (size_t)bi * tk * ld + hoff;
            float *O = o + (size_t)bi * tq * ld + hoff;
            float *P = p ? p + ((size_t)bi * h + hi) * tq * tk : NULL;
            for (int q0 = 0; q0 < tq; q0 += qb) {
                const int nq = tq - q0 < qb ? tq - q0 : qb;
                float *S = P ? P + (size_t)q0 * tk : scr;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, tk, dh, scale, Q + (size_t)q0 * ld, ld, K,
                            ld, 0.0f, S, tk);
                softmax_rows(S, nq, tk, q0, causal);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, dh, tk, 1.0f, S, tk, V, ld, 0.0f,
                            O + (size_t)q0 * ld, ld);
            }
        }
    free(scr);
    return SPO_OK;
}

int spo_cpu_attention_bwd(spo_dev *d, float *dq, float *dk, float *dv, const float *dout, const float *p,
                          const float *q, const float *k, const float *v, int b, int tq, int tk, int h, int dh)
{
    (void)d;
    const int ld = h * dh;
    const float scale = (float)(1.0 / sqrt((double)dh));
    const int qb = block_rows(tq, tk);
    float *dS = NULL;
    if ((dq || dk) && !(dS = spo_cpu_scratch((size_t)qb * tk))) return SPO_EIO;
    for (int bi = 0; bi < b; bi++)
        for (int hi = 0; hi < h; hi++) {
            const size_t hoff = (size_t)hi * dh, qo = (size_t)bi * tq * ld + hoff, ko = (size_t)bi * tk * ld + hoff;
            const float *P = p + ((size_t)bi * h + hi) * tq * tk;
            for (int q0 = 0; q0 < tq; q0 += qb) {
                const int nq = tq - q0 < qb ? tq - q0 : qb;
                const float *Pb = P + (size_t)q0 * tk, *dO = dout + qo + (size_t)q0 * ld;
                if (dv) /* dV (tk,dh) += P^T (tk,nq) dO (nq,dh) */
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, tk, dh, nq, 1.0f, Pb, tk, dO, ld, 1.0f,
                                dv + ko, ld);
                if (!dS) continue;
                /* dP (nq,tk) = dO V^T, then dS = P * (dP - rowsum(dP * P)) in place */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, tk, dh, 1.0f, dO, ld, v + ko, ld, 0.0f, dS,
                            tk);
                for (int r = 0; r < nq; r++) {
                    float *sr = dS + (size_t)r * tk;
                    const float *pr = Pb + (size_t)r * tk;
                    double acc = 0.0;
                    for (int j = 0; j < tk; j++) acc += (double)sr[j] * pr[j];
                    const float rs = (float)acc;
                    for (int j = 0; j < tk; j++) sr[j] = pr[j] * (sr[j] - rs);
                }
                if (dq) /* dQ (nq,dh) += scale dS K */
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, dh, tk, scale, dS, tk, k + ko, ld, 1.0f,
                                dq + qo + (size_t)q0 * ld, ld);
                if (dk) /* dK (tk,dh) += scale dS^T Q */
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, tk, dh, nq, scale, dS, tk,
                                q + qo + (size_t)q0 * ld, ld, 1.0f, dk + ko, ld);
            }
        }
    free(dS);
    return SPO_OK;
}
