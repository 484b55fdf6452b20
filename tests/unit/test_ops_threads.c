/* test_ops_threads.c — the CPU thread pool (lib/ops/cpu/cpu_pool.c) and the
 * threaded ops: every index is run once, nested and one-chunk jobs, and
 * each op gives bit for bit the same output on devices of 1, 2 and 3
 * threads (shapes large enough to be cut into several chunks).
 * Convolution's and the linear layer's sgemm run on OpenBLAS's threads or
 * in row blocks: where the BLAS gives a row of the product the same bits
 * whatever the other rows of the call (OpenBLAS 0.3.21's AVX-512 kernels on
 * Intel), the two are compared bit for bit; where it does not (its generic
 * "Prescott" kernels, its Zen/Haswell kernels on AMD EPYC), to 1e-6. A
 * probe below tells which. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cblas.h>

#include "opcheck.h"
#include "ops/ops_impl.h"

#define NDEV 3
static spo_dev *devs[NDEV]; /* 1, 2, 3 threads */

static int setup(void **state)
{
    (void)state;
    for (int i = 0; i < NDEV; i++)
        if (spo_dev_open(&devs[i], SPO_DEV_CPU, i + 1)) return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < NDEV; i++) spo_dev_close(devs[i]);
    return 0;
}

/* ---- the pool ---- */

typedef struct {
    spo_dev *d;
    int *hits, nested;
    int bad_worker;
} count_job;

static void count_task(void *ctx, size_t lo, size_t hi, int worker)
{
    count_job *j = ctx;
    if (worker < 0 || worker >= spo_cpu_workers(j->d)) j->bad_worker = 1;
    for (size_t i = lo; i < hi; i++) {
        if (j->nested) { /* a job inside a job runs on this thread */
            count_job in = {.d = j->d, .hits = j->hits + i * 3};
            spo_cpu_parallel_for(j->d, 3, 1, count_task, &in);
            if (in.bad_worker) j->bad_worker = 1;
        } else
            __atomic_fetch_add(&j->hits[i], 1, __ATOMIC_RELAXED);
    }
}

static void test_pool(void **state)
{
    (void)state;
    const size_t ns[] = {1, 2, 7, 64, 1000};
    const size_t grains[] = {1, 3, 64, 5000};
    for (int di = 0; di < NDEV; di++) {
        spo_dev *d = devs[di];
        assert_int_equal(spo_cpu_workers(d), di + 1);
        for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
            for (size_t b = 0; b < sizeof grains / sizeof *grains; b++)
                for (int nested = 0; nested < 2; nested++) {
                    const size_t n = ns[a], tot = nested ? 3 * n : n;
                    int *hits = calloc(tot, sizeof *hits);
                    assert_non_null(hits);
                    count_job j = {.d = d, .hits = hits, .nested = nested};
                    spo_cpu_parallel_for(d, n, grains[b], count_task, &j);
                    for (size_t i = 0; i < tot; i++) assert_int_equal(hits[i], 1);
                    assert_false(j.bad_worker);
                    free(hits);
                }
        /* many small jobs back to back: workers that wake late must not join a later job */
        int *hits = calloc(64, sizeof *hits);
        for (int r = 0; r < 2000; r++) {
            count_job j = {.d = d, .hits = hits};
            spo_cpu_parallel_for(d, 64, 1 + r % 8, count_task, &j);
        }
        for (int i = 0; i < 64; i++) assert_int_equal(hits[i], 2000);
        free(hits);
        spo_cpu_parallel_for(d, 0, 1, count_task, NULL); /* nothing to do */
    }
}

/* ---- the ops, same bits for every thread count ---- */

/* fills the inputs from a fixed seed, runs the op on d and returns its
 * outputs, concatenated, as a host buffer of *n floats */
typedef float *(*op_case)(spo_dev *d, size_t *n);

static float *rnd(spo_dev *d, size_t n, float range)
{
    float *h = hrand(n);
    for (size_t i = 0; i < n; i++) h[i] *= range;
    float *p = dput(d, h, n);
    free(h);
    return p;
}

/* appends n floats of device p to the host buffer *out (*len floats) and frees p */
static void take(spo_dev *d, float **out, size_t *len, float *p, size_t n)
{
    *out = realloc(*out, (*len + n) * sizeof **out);
    assert_non_null(*out);
    OK(spo_dev_download(d, *out + *len, p, n));
    *len += n;
    spo_dev_free(d, p);
}

static float *case_act(spo_dev *d, size_t *n)
{
    const size_t N = 70001;
    float *out = NULL, *x = rnd(d, N, 6.0f), *dy = rnd(d, N, 1.0f);
    *n = 0;
    for (int a = SPO_ACT_SILU; a <= SPO_ACT_QUICK_GELU; a++) {
        float *y = dput(d, NULL, N), *dx = rnd(d, N, 1.0f);
        OK(spo_act_fwd(d, (spo_act)a, y, x, N));
        OK(spo_act_bwd(d, (spo_act)a, dx, dy, x, N));
        take(d, &out, n, y, N), take(d, &out, n, dx, N);
    }
    const int m = 97, c = 300; /* geglu */
    float *gx = rnd(d, (size_t)m * 2 * c, 4.0f), *gy = dput(d, NULL, (size_t)m * c), *gdx = rnd(d, (size_t)m * 2 * c, 1.0f);
    OK(spo_geglu_fwd(d, gy, gx, m, c));
    OK(spo_geglu_bwd(d, gdx, dy, gx, m, c));
    take(d, &out, n, gy, (size_t)m * c), take(d, &out, n, gdx, (size_t)m * 2 * c);
    spo_dev_free(d, x), spo_dev_free(d, dy), spo_dev_free(d, gx);
    return out;
}

static float *case_norm(spo_dev *d, size_t *n)
{
    const int b = 3, c = 64, hw = 700, g = 8, m = 333, lc = 200;
    const size_t nx = (size_t)b * c * hw, nl = (size_t)m * lc;
    float *out = NULL, *x = rnd(d, nx, 2.0f), *dy = rnd(d, nx, 1.0f), *gm = rnd(d, c, 1.0f), *bt = rnd(d, c, 1.0f);
    float *y = dput(d, NULL, nx), *mean = dput(d, NULL, (size_t)b * g), *rstd = dput(d, NULL, (size_t)b * g);
    float *dx = rnd(d, nx, 1.0f), *dg = rnd(d, c, 1.0f), *db = rnd(d, c, 1.0f);
    *n = 0;
    OK(spo_groupnorm_fwd(d, y, mean, rstd, x, gm, bt, b, c, hw, g, 1e-5f));
    OK(spo_groupnorm_bwd(d, dx, dg, db, dy, x, mean, rstd, gm, b, c, hw, g));
    take(d, &out, n, y, nx), take(d, &out, n, dx, nx), take(d, &out, n, dg, c), take(d, &out, n, db, c);
    take(d, &out, n, mean, (size_t)b * g), take(d, &out, n, rstd, (size_t)b * g);
    float *lx = rnd(d, nl, 3.0f), *ldy = rnd(d, nl, 1.0f), *lg = rnd(d, lc, 1.0f), *lb = rnd(d, lc, 1.0f);
    float *ly = dput(d, NULL, nl), *lm = dput(d, NULL, m), *lr = dput(d, NULL, m), *ldx = rnd(d, nl, 1.0f);
    float *ldg = rnd(d, lc, 1.0f), *ldb = rnd(d, lc, 1.0f);
    OK(spo_layernorm_fwd(d, ly, lm, lr, lx, lg, lb, m, lc, 1e-5f));
    OK(spo_layernorm_bwd(d, ldx, ldg, ldb, ldy, lx, lm, lr, lg, m, lc));
    take(d, &out, n, ly, nl), take(d, &out, n, ldx, nl), take(d, &out, n, ldg, lc), take(d, &out, n, ldb, lc);
    take(d, &out, n, lm, m), take(d, &out, n, lr, m);
    spo_dev_free(d, x), spo_dev_free(d, dy), spo_dev_free(d, gm), spo_dev_free(d, bt);
    spo_dev_free(d, lx), spo_dev_free(d, ldy), spo_dev_free(d, lg), spo_dev_free(d, lb);
    return out;
}

static float *case_attn(spo_dev *d, size_t *n)
{
    const int b = 2, tq = 150, tk = 130, h = 3, dh = 8, C = h * dh;
    const size_t nq = (size_t)b * tq * C, nk = (size_t)b * tk * C, np = (size_t)b * h * tq * tk;
    size_t keep = spo_cpu_attn_max;
    spo_cpu_attn_max = 16 * tk; /* 16 query rows a block: several blocks a head */
    float *out = NULL, *q = rnd(d, nq, 2.0f), *k = rnd(d, nk, 1.0f), *v = rnd(d, nk, 1.0f), *dout = rnd(d, nq, 1.0f);
    *n = 0;
    for (int causal = 0; causal < 2; causal++) {
        float *o = dput(d, NULL, nq), *o2 = dput(d, NULL, nq), *p = dput(d, NULL, np);
        float *dq = rnd(d, nq, 1.0f), *dk = rnd(d, nk, 1.0f), *dv = rnd(d, nk, 1.0f);
        OK(spo_attention_fwd(d, o, p, q, k, v, b, tq, tk, h, dh, causal));
        OK(spo_attention_fwd(d, o2, NULL, q, k, v, b, tq, tk, h, dh, causal));
        OK(spo_attention_bwd(d, dq, dk, dv, dout, p, q, k, v, b, tq, tk, h, dh));
        take(d, &out, n, o, nq), take(d, &out, n, o2, nq), take(d, &out, n, p, np);
        take(d, &out, n, dq, nq), take(d, &out, n, dk, nk), take(d, &out, n, dv, nk);
    }
    spo_cpu_attn_max = keep;
    spo_dev_free(d, q), spo_dev_free(d, k), spo_dev_free(d, v), spo_dev_free(d, dout);
    return out;
}

static float *case_conv(spo_dev *d, size_t *n)
{
    const spo_conv cs[2] = {{.n = 2, .cin = 24, .h = 30, .w = 26, .cout = 16, .k = 3, .stride = 1, .pad = 1},
                            {.n = 1, .cin = 20, .h = 33, .w = 31, .cout = 12, .k = 3, .stride = 2, .pad = 1}};
    float *out = NULL;
    *n = 0;
    for (int i = 0; i < 2; i++) {
        const spo_conv *c = &cs[i];
        const size_t nx = (size_t)c->n * c->cin * c->h * c->w, nw = (size_t)c->cout * c->cin * c->k * c->k;
        const size_t ny = (size_t)c->n * c->cout * spo_conv_ho(c) * spo_conv_wo(c);
        float *x = rnd(d, nx, 1.0f), *w = rnd(d, nw, 0.3f), *b = rnd(d, c->cout, 1.0f), *dy = rnd(d, ny, 1.0f);
        float *y = dput(d, NULL, ny), *dx = rnd(d, nx, 1.0f), *dw = rnd(d, nw, 1.0f), *db = rnd(d, c->cout, 1.0f);
        float *dx1 = rnd(d, nx, 1.0f); /* dx alone: lib/ops/cpu/cpu_convs.c for stride 1 */
        OK(spo_conv2d_fwd(d, y, x, w, b, c));
        OK(spo_conv2d_bwd(d, dx, dw, db, dy, x, w, c));
        OK(spo_conv2d_bwd(d, dx1, NULL, NULL, dy, x, w, c));
        take(d, &out, n, y, ny), take(d, &out, n, dx, nx), take(d, &out, n, dw, nw), take(d, &out, n, db, c->cout);
        take(d, &out, n, dx1, nx);
        spo_dev_free(d, x), spo_dev_free(d, w), spo_dev_free(d, b), spo_dev_free(d, dy);
    }
    return out;
}

static float *case_linear(spo_dev *d, size_t *n)
{
    const int M = 700, K = 48, N = 40;
    float *out = NULL, *x = rnd(d, (size_t)M * K, 1.0f), *w = rnd(d, (size_t)N * K, 1.0f), *b = rnd(d, N, 1.0f);
    float *y = dput(d, NULL, (size_t)M * N), *dx = rnd(d, (size_t)M * K, 1.0f), *dw = rnd(d, (size_t)N * K, 1.0f);
    *n = 0;
    OK(spo_linear_fwd(d, y, x, w, b, M, K, N));
    OK(spo_linear_bwd(d, dx, dw, NULL, y, x, w, M, K, N));
    take(d, &out, n, y, (size_t)M * N), take(d, &out, n, dx, (size_t)M * K), take(d, &out, n, dw, (size_t)N * K);
    spo_dev_free(d, x), spo_dev_free(d, w), spo_dev_free(d, b);
    return out;
}

static float *case_shape(spo_dev *d, size_t *n)
{
    const int b = 2, c = 40, h = 23, w = 29, hw = h * w;
    const size_t nx = (size_t)b * c * hw, nu = 4 * nx;
    float *out = NULL, *x = rnd(d, nx, 1.0f), *x2 = rnd(d, nx, 1.0f), *du = rnd(d, nu, 1.0f), *bc = rnd(d, b * c, 1.0f);
    float *u = dput(d, NULL, nu), *dx = rnd(d, nx, 1.0f), *t = dput(d, NULL, nx), *s = dput(d, NULL, nx);
    float *a = dput(d, NULL, nx), *ax = rnd(d, nx, 1.0f), *an = rnd(d, nx, 1.0f), *dbc = rnd(d, b * c, 1.0f);
    *n = 0;
    OK(spo_upsample2x_fwd(d, u, x, b, c, h, w));
    OK(spo_upsample2x_bwd(d, dx, du, b, c, h, w));
    OK(spo_transpose_fwd(d, t, x, b * 2, c / 2, hw));
    OK(spo_scale(d, s, x, 0.3f, nx));
    OK(spo_add_fwd(d, a, x, x2, nx));
    OK(spo_axpy(d, ax, -1.7f, x2, nx));
    OK(spo_add_nc_fwd(d, an, bc, b, c, hw));
    OK(spo_add_nc_bwd(d, dbc, x, b, c, hw));
    take(d, &out, n, u, nu), take(d, &out, n, dx, nx), take(d, &out, n, t, nx), take(d, &out, n, s, nx);
    take(d, &out, n, a, nx), take(d, &out, n, ax, nx), take(d, &out, n, an, nx), take(d, &out, n, dbc, b * c);
    spo_dev_free(d, x), spo_dev_free(d, x2), spo_dev_free(d, du), spo_dev_free(d, bc);
    return out;
}

/* 1 when sgemm's rows do not depend on the rows beside them in the call:
 * C = A B^T for 300 rows at once and by blocks of 7 rows, 1 and all threads */
static int blas_rows_exact(void)
{
    enum { M = 300, K = 320, N = 96 };
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * N * K);
    float *c1 = malloc(sizeof(float) * M * N), *c2 = malloc(sizeof(float) * M * N);
    uint64_t x = 0x2545f4914f6cdd1dULL;
    for (int i = 0; i < M * K; i++) x ^= x << 13, x ^= x >> 7, x ^= x << 17, a[i] = (float)(x >> 40) / (1 << 23) - 1;
    for (int i = 0; i < N * K; i++) x ^= x << 13, x ^= x >> 7, x ^= x << 17, b[i] = (float)(x >> 40) / (1 << 23) - 1;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a, K, b, K, 0.0f, c1, N);
    for (int m0 = 0; m0 < M; m0 += 7) {
        int m = M - m0 < 7 ? M - m0 : 7;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, N, K, 1.0f, a + (size_t)m0 * K, K, b, K, 0.0f,
                    c2 + (size_t)m0 * N, N);
    }
    int same = !memcmp(c1, c2, sizeof(float) * M * N);
    free(a), free(b), free(c1), free(c2);
    return same;
}

static void same_bits(const char *what, op_case f, int blas)
{
    static int probed = -1;
    if (blas && probed < 0) {
        probed = blas_rows_exact();
        if (!probed)
            print_message("note: this BLAS (%s) gives rows that depend on their neighbours in the call: "
                          "sgemm ops compared to 1e-6\n", openblas_get_corename());
    }
    const int exact = !blas || probed;
    float *ref = NULL;
    size_t nref = 0;
    for (int i = 0; i < NDEV; i++) {
        rng_state = 0x9e3779b97f4a7c15ULL; /* the same inputs on every device */
        size_t n = 0;
        float *got = f(devs[i], &n);
        if (!i) {
            ref = got, nref = n;
            continue;
        }
        assert_int_equal(n, nref);
        if (!exact) {
            double *r = todouble(ref, n);
            check_close(what, got, r, n, 1e-6);
            free(r);
        } else if (memcmp(got, ref, n * sizeof *got)) {
            size_t k = 0;
            while (!memcmp(&got[k], &ref[k], sizeof *got)) k++;
            fail_msg("%s: %d threads differ from 1 at output float %zu: %a vs %a", what, i + 1, k, got[k], ref[k]);
        }
        free(got);
    }
    free(ref);
}

static void test_act_bits(void **state) { (void)state, same_bits("activations", case_act, 0); }
static void test_norm_bits(void **state) { (void)state, same_bits("norms", case_norm, 0); }
static void test_attn_bits(void **state) { (void)state, same_bits("attention", case_attn, 0); }
static void test_conv_bits(void **state) { (void)state, same_bits("conv", case_conv, 1); }
static void test_shape_bits(void **state) { (void)state, same_bits("shape ops", case_shape, 0); }
static void test_linear_bits(void **state) { (void)state, same_bits("linear", case_linear, 1); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool),      cmocka_unit_test(test_act_bits),  cmocka_unit_test(test_norm_bits),
        cmocka_unit_test(test_attn_bits), cmocka_unit_test(test_conv_bits), cmocka_unit_test(test_shape_bits),
        cmocka_unit_test(test_linear_bits),
    };
    OPCHECK_MAIN_CPU(tests, setup, teardown);
}
