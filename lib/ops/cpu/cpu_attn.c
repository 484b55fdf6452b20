/* cpu_attn.c — multi-head scaled dot-product attention on the CPU.
 *
 * q (b,tq,h*dh), k and v (b,tk,h*dh), heads packed in the channel dim, so
 * head hi of batch bi is a strided view (leading dimension h*dh) that BLAS
 * reads in place. Per (bi,hi) and per block of query rows:
 *   S = Q K^T * scale (nq,tk); P = softmax(S) by rows, causal: P[i][j] = 0
 *   for key j > query i; O = P V.
 * P goes to p (b,h,tq,tk) when given (for backward), otherwise to a scratch
 * block per thread, unnormalised: O's rows are scaled instead. A block has at most spo_cpu_attn_max floats (see
 * block_rows).
 * Backward from P:
 *   dV += P^T dO; dP = dO V^T; dS = P * (dP - rowsum(dP * P));
 *   dQ += scale dS K; dK += scale dS^T Q.
 *
 * Threads (lib/ops/cpu/cpu_pool.c): the forward's tasks are the (bi, hi, query
 * block) triples, the backward's the (bi, hi) pairs (dK and dV sum over
 * the query blocks of a head, in order, inside one task); each task calls
 * single-threaded sgemm. The blocks depend on the shapes only, so the
 * result is the same for every thread count. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>

#include "ops/cpu/cpu_math.h"
#include "ops/ops_impl.h"

size_t spo_cpu_attn_max = (size_t)4 << 20; /* floats in one score block at most: 16 MiB */

/* query rows per block: a block of 256 KiB, so that it stays in the core's
 * cache from one product to the next, but at least 256 rows, so that
 * packing K and V for sgemm (tk * dh floats for each block) stays small
 * against the products (256 * tk * dh) when dh is large */
static int block_rows(int tq, int tk)
{
    size_t r = ((size_t)64 << 10) / (size_t)tk, cap = spo_cpu_attn_max / (size_t)tk;
    if (r < 256) r = 256;
    if (r > cap) r = cap;
    if (r < 1) r = 1;
    return r < (size_t)tq ? (int)r : tq;
}

/* the largest of x (n >= 1), as the largest of the floats' bits mapped to
 * ordered ints (negative floats' magnitude bits flipped): an integer max,
 * which vectorises. A NaN is the largest if its sign is clear; the row is
 * NaN then, as it is anyway (its sum is NaN). */
static float row_max(const float *x, int n)
{
    int32_t m = INT32_MIN;
    for (int j = 0; j < n; j++) {
        int32_t i = (int32_t)spo_f2u(x[j]);
        i ^= (int32_t)((uint32_t)(i >> 31) >> 1);
        m = i > m ? i : m;
    }
    m ^= (int32_t)((uint32_t)(m >> 31) >> 1);
    return spo_u2f((uint32_t)m);
}

/* in place softmax of the rows of s (nq,tk); row r is query q0 + r. With
 * inv, the rows are left unnormalised (exp(s - max)) and inv[r] gets the
 * factor, for the caller to apply to O = P V (nq*dh products, not nq*tk). */
static void softmax_rows(float *s, float *inv, int nq, int tk, int q0, int causal)
{
    for (int r = 0; r < nq; r++) {
        float *row = s + (size_t)r * tk;
        const int nv = causal && q0 + r + 1 < tk ? q0 + r + 1 : tk; /* keys [0, nv) visible */
        const float mx = row_max(row, nv);
        spo_cpu_exp_shift_n(row, row, mx, (size_t)nv);
        const float f = (float)(1.0 / spo_sum_d(row, (size_t)nv));
        if (inv)
            inv[r] = f;
        else
            for (int j = 0; j < nv; j++) row[j] *= f;
        for (int j = nv; j < tk; j++) row[j] = 0.0f;
    }
}

typedef struct {
    float *o, *p, *scr;
    const float *q, *k, *v;
    int b, tq, tk, h, dh, causal, qb, nblk;
    float scale;
    float *ds; /* backward: dS scratch per thread */
    float *dq, *dk, *dv;
    const float *dout, *pc;
} attn_job;

static void fwd_task(void *ctx, size_t lo, size_t hi, int worker)
{
    const attn_job *j = ctx;
    const int ld = j->h * j->dh, tq = j->tq, tk = j->tk, dh = j->dh;
    for (size_t it = lo; it < hi; it++) {
        const int blk = (int)(it % (size_t)j->nblk), bh = (int)(it / (size_t)j->nblk);
        const int bi = bh / j->h, hi_ = bh % j->h;
        const int q0 = blk * j->qb, nq = tq - q0 < j->qb ? tq - q0 : j->qb;
        const size_t hoff = (size_t)hi_ * dh;
        const float *Q = j->q + ((size_t)bi * tq + q0) * ld + hoff, *K = j->k + (size_t)bi * tk * ld + hoff;
        const float *V = j->v + (size_t)bi * tk * ld + hoff;
        float *O = j->o + ((size_t)bi * tq + q0) * ld + hoff;
        /* without p: S and the row factors in this thread's scratch, (qb*tk + qb) floats */
        float *scr = j->p ? NULL : j->scr + (size_t)worker * j->qb * (tk + 1), *inv = scr ? scr + j->qb * tk : NULL;
        float *S = j->p ? j->p + ((size_t)bh * tq + q0) * tk : scr;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, tk, dh, j->scale, Q, ld, K, ld, 0.0f, S, tk);
        softmax_rows(S, inv, nq, tk, q0, j->causal);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, dh, tk, 1.0f, S, tk, V, ld, 0.0f, O, ld);
        if (inv)
            for (int r = 0; r < nq; r++)
                for (int c = 0; c < dh; c++) O[(size_t)r * ld + c] *= inv[r];
    }
}

int spo_cpu_attention_fwd(spo_dev *d, float *o, float *p, const float *q, const float *k, const float *v, int b,
                          int tq, int tk, int h, int dh, int causal)
{
    attn_job j = {.o = o, .p = p, .q = q, .k = k, .v = v, .b = b, .tq = tq, .tk = tk, .h = h, .dh = dh,
                  .causal = causal, .qb = block_rows(tq, tk), .scale = (float)(1.0 / sqrt((double)dh))};
    j.nblk = (tq + j.qb - 1) / j.qb;
    if (!p && !(j.scr = spo_cpu_scratch(d, (size_t)spo_cpu_workers(d) * j.qb * ((size_t)tk + 1)))) return SPO_EIO;
    spo_cpu_parallel_for(d, (size_t)b * h * j.nblk, 1, fwd_task, &j);
    spo_cpu_scratch_put(d, j.scr);
    return SPO_OK;
}

static void bwd_task(void *ctx, size_t lo, size_t hi, int worker)
{
    const attn_job *j = ctx;
    const int ld = j->h * j->dh, tq = j->tq, tk = j->tk, dh = j->dh, qb = j->qb;
    float *dS = j->ds ? j->ds + (size_t)worker * qb * tk : NULL;
    for (size_t bh = lo; bh < hi; bh++) {
        const int bi = (int)(bh / (size_t)j->h), hi_ = (int)(bh % (size_t)j->h);
        const size_t hoff = (size_t)hi_ * dh, qo = (size_t)bi * tq * ld + hoff, ko = (size_t)bi * tk * ld + hoff;
        const float *P = j->pc + bh * tq * tk;
        for (int q0 = 0; q0 < tq; q0 += qb) {
            const int nq = tq - q0 < qb ? tq - q0 : qb;
            const float *Pb = P + (size_t)q0 * tk, *dO = j->dout + qo + (size_t)q0 * ld;
            if (j->dv) /* dV (tk,dh) += P^T (tk,nq) dO (nq,dh) */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, tk, dh, nq, 1.0f, Pb, tk, dO, ld, 1.0f,
                            j->dv + ko, ld);
            if (!dS) continue;
            /* dP (nq,tk) = dO V^T, then dS = P * (dP - rowsum(dP * P)) in place */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, tk, dh, 1.0f, dO, ld, j->v + ko, ld, 0.0f, dS,
                        tk);
            for (int r = 0; r < nq; r++) {
                float *sr = dS + (size_t)r * tk;
                const float *pr = Pb + (size_t)r * tk;
                const float rs = (float)spo_dot_d(sr, pr, (size_t)tk);
                for (int c = 0; c < tk; c++) sr[c] = pr[c] * (sr[c] - rs);
            }
            if (j->dq) /* dQ (nq,dh) += scale dS K */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, dh, tk, j->scale, dS, tk, j->k + ko, ld,
                            1.0f, j->dq + qo + (size_t)q0 * ld, ld);
            if (j->dk) /* dK (tk,dh) += scale dS^T Q */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, tk, dh, nq, j->scale, dS, tk,
                            j->q + qo + (size_t)q0 * ld, ld, 1.0f, j->dk + ko, ld);
        }
    }
}

int spo_cpu_attention_bwd(spo_dev *d, float *dq, float *dk, float *dv, const float *dout, const float *p,
                          const float *q, const float *k, const float *v, int b, int tq, int tk, int h, int dh)
{
    attn_job j = {.dq = dq, .dk = dk, .dv = dv, .dout = dout, .pc = p, .q = q, .k = k, .v = v, .b = b, .tq = tq,
                  .tk = tk, .h = h, .dh = dh, .qb = block_rows(tq, tk), .scale = (float)(1.0 / sqrt((double)dh))};
    if ((dq || dk) && !(j.ds = spo_cpu_scratch(d, (size_t)spo_cpu_workers(d) * j.qb * tk))) return SPO_EIO;
    spo_cpu_parallel_for(d, (size_t)b * h, 1, bwd_task, &j);
    spo_cpu_scratch_put(d, j.ds);
    return SPO_OK;
}
