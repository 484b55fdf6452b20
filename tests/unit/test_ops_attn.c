/* test_ops_attn.c — multi-head attention against a double reference (o and
 * p) and finite differences (dq, dk, dv): several heads, tq != tk, causal
 * and not, inference without p, and the query-blocked path
 * (spo_cpu_attn_max lowered). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "opcheck.h"
#include "ops/ops_impl.h"

typedef struct {
    fdcase c; /* in: q (b,tq,h*dh), k (b,tk,h*dh), v (b,tk,h*dh) */
    int b, tq, tk, h, dh, causal;
    spo_dev *d;
    float *dy, *q, *k, *v, *p;
} attn;

/* o (b,tq,h*dh); also p (b,h,tq,tk) when P is not NULL */
static void attn_ref_p(const attn *t, const double *q, const double *k, const double *v, double *o, double *P)
{
    const int C = t->h * t->dh;
    const double scale = 1.0 / sqrt((double)t->dh);
    double *s = malloc(t->tk * sizeof *s);
    for (int b = 0; b < t->b; b++)
        for (int h = 0; h < t->h; h++)
            for (int i = 0; i < t->tq; i++) {
                double mx = -INFINITY, sum = 0.0;
                for (int j = 0; j < t->tk; j++) {
                    double a = 0.0;
                    for (int e = 0; e < t->dh; e++)
                        a += q[((size_t)b * t->tq + i) * C + h * t->dh + e] * k[((size_t)b * t->tk + j) * C + h * t->dh + e];
                    s[j] = t->causal && j > i ? -INFINITY : a * scale;
                    if (s[j] > mx) mx = s[j];
                }
                for (int j = 0; j < t->tk; j++) sum += s[j] = exp(s[j] - mx);
                for (int j = 0; j < t->tk; j++) s[j] /= sum;
                if (P)
                    for (int j = 0; j < t->tk; j++) P[(((size_t)b * t->h + h) * t->tq + i) * t->tk + j] = s[j];
                for (int e = 0; e < t->dh; e++) {
                    double a = 0.0;
                    for (int j = 0; j < t->tk; j++) a += s[j] * v[((size_t)b * t->tk + j) * C + h * t->dh + e];
                    o[((size_t)b * t->tq + i) * C + h * t->dh + e] = a;
                }
            }
    free(s);
}

static void attn_ref(const fdcase *c, double *o)
{
    attn_ref_p((const attn *)c, c->in[0], c->in[1], c->in[2], o, NULL);
}

static int attn_bwd(void *self, float **g)
{
    attn *t = self;
    return spo_attention_bwd(t->d, g[0], g[1], g[2], t->dy, t->p, t->q, t->k, t->v, t->b, t->tq, t->tk, t->h, t->dh);
}

static void run_attn(spo_dev *d, int b, int tq, int tk, int h, int dh, int causal, float range)
{
    attn t = {.b = b, .tq = tq, .tk = tk, .h = h, .dh = dh, .causal = causal, .d = d};
    const size_t C = (size_t)h * dh, nq = b * tq * C, nk = b * tk * C, np = (size_t)b * h * tq * tk;
    float *hq = hrand(nq), *hk = hrand(nk), *hv = hrand(nk), *hdy = hrand(nq);
    for (size_t i = 0; i < nq; i++) hq[i] *= range;
    t.c = (fdcase){.nin = 3, .in = {todouble(hq, nq), todouble(hk, nk), todouble(hv, nk)}, .nel = {nq, nk, nk},
                   .ny = nq, .dy = todouble(hdy, nq), .fwd = attn_ref};
    t.q = dput(d, hq, nq), t.k = dput(d, hk, nk), t.v = dput(d, hv, nk), t.dy = dput(d, hdy, nq);
    t.p = dput(d, NULL, np);
    float *o = dput(d, NULL, nq), *o2 = dput(d, NULL, nq);
    OK(spo_attention_fwd(d, o, t.p, t.q, t.k, t.v, b, tq, tk, h, dh, causal));
    OK(spo_attention_fwd(d, o2, NULL, t.q, t.k, t.v, b, tq, tk, h, dh, causal));
    double *ref = malloc(nq * sizeof *ref), *P = malloc(np * sizeof *P);
    attn_ref_p(&t, t.c.in[0], t.c.in[1], t.c.in[2], ref, P);
    char name[96];
    snprintf(name, sizeof name, "attention b%d tq%d tk%d h%d dh%d causal %d", b, tq, tk, h, dh, causal);
    check_dev(d, name, o, ref, nq, FWD_TOL);
    check_dev(d, "p", t.p, P, np, FWD_TOL);
    check_dev(d, "o without p", o2, ref, nq, FWD_TOL);
    int which[3] = {0, 1, 2};
    check_backward(d, name, &t.c, 3, which, attn_bwd, &t);
    free(ref), free(P), free(hq), free(hk), free(hv), free(hdy);
    spo_dev_free(d, o), spo_dev_free(d, o2), spo_dev_free(d, t.q), spo_dev_free(d, t.k), spo_dev_free(d, t.v);
    spo_dev_free(d, t.dy), spo_dev_free(d, t.p);
    fdcase_free(&t.c);
}

static void test_attention(void **state)
{
    run_attn(*state, 2, 5, 7, 3, 4, 0, 1.0f);
    run_attn(*state, 1, 6, 6, 2, 3, 0, 3.0f);
    run_attn(*state, 2, 1, 9, 1, 8, 0, 1.0f);
    run_attn(*state, 1, 8, 1, 2, 2, 0, 1.0f);
}

static void test_attention_causal(void **state)
{
    run_attn(*state, 1, 6, 6, 2, 3, 1, 2.0f);
    run_attn(*state, 2, 4, 7, 3, 4, 1, 1.0f); /* tq < tk */
    run_attn(*state, 1, 7, 4, 2, 5, 1, 1.0f); /* tq > tk: rows past tk see every key */
}

static void test_attention_blocked(void **state)
{
    size_t keep = spo_cpu_attn_max;
    spo_cpu_attn_max = 1; /* one query row per block */
    run_attn(*state, 2, 5, 7, 3, 4, 0, 1.0f);
    spo_cpu_attn_max = 2 * 6; /* two rows per block, remainder 1 */
    run_attn(*state, 1, 5, 6, 2, 3, 1, 1.0f);
    spo_cpu_attn_max = keep;
}

/* large scores: the max-subtracted softmax stays finite */
static void test_attention_large(void **state) { run_attn(*state, 1, 3, 5, 1, 4, 0, 60.0f); }

static void test_attention_args(void **state)
{
    spo_dev *d = *state;
    float *a = dput(d, NULL, 64);
    assert_int_equal(spo_attention_fwd(d, a, a, a, a, NULL, 1, 2, 2, 1, 2, 0), SPO_EINVAL);
    assert_int_equal(spo_attention_fwd(d, a, a, a, a, a, 1, 0, 2, 1, 2, 0), SPO_EINVAL);
    assert_int_equal(spo_attention_bwd(d, a, NULL, NULL, a, NULL, a, a, a, 1, 2, 2, 1, 2), SPO_EINVAL);
    OK(spo_attention_bwd(d, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1, 2, 2, 1, 2));
    spo_dev_free(d, a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attention),         cmocka_unit_test(test_attention_causal),
        cmocka_unit_test(test_attention_blocked), cmocka_unit_test(test_attention_large),
        cmocka_unit_test(test_attention_args),
    };
    OPCHECK_MAIN(tests);
}
