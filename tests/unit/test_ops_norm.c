/* test_ops_norm.c — group norm and layer norm against double references
 * (y, mean, rstd) and finite differences (dx, dgamma, dbeta); several
 * group counts, no affine (NULL gamma/beta), and a large mean offset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "opcheck.h"

/* A norm over `sets` sets of `len` elements: element e of set s is at
 * base(s) + e, with its channel (for gamma/beta) chan(s, e). */
typedef struct {
    fdcase c; /* in: x, gamma, beta */
    int group;  /* 1: groupnorm (n,c,hw) in g groups; 0: layernorm (m,c) */
    int n, ch, hw, g, affine;
    float eps;
    spo_dev *d;
    float *dy, *x, *mean, *rstd, *gamma;
} norm;

static int nsets(const norm *t) { return t->group ? t->n * t->g : t->n; }
static int setlen(const norm *t) { return t->group ? t->ch / t->g * t->hw : t->ch; }
static int chan(const norm *t, int s, int e)
{
    return t->group ? (s % t->g) * (t->ch / t->g) + e / t->hw : e;
}

/* double moments of every set: mean (sets), rstd (sets) */
static void norm_moments(const norm *t, const double *x, double *mean, double *rstd)
{
    const int L = setlen(t);
    for (int s = 0; s < nsets(t); s++) {
        const double *v = x + (size_t)s * L; /* sets are contiguous in both layouts */
        double m = 0.0, q = 0.0;
        for (int e = 0; e < L; e++) m += v[e];
        m /= L;
        for (int e = 0; e < L; e++) q += (v[e] - m) * (v[e] - m);
        mean[s] = m;
        rstd[s] = 1.0 / sqrt(q / L + t->eps);
    }
}

static void norm_ref(const fdcase *c, double *y)
{
    const norm *t = (const norm *)c;
    const int L = setlen(t), S = nsets(t);
    const double *x = c->in[0], *gm = c->in[1], *bt = c->in[2];
    double *mean = malloc(S * sizeof *mean), *rstd = malloc(S * sizeof *rstd);
    norm_moments(t, x, mean, rstd);
    for (int s = 0; s < S; s++)
        for (int e = 0; e < L; e++) {
            size_t i = (size_t)s * L + e;
            int ch = chan(t, s, e);
            double v = (x[i] - mean[s]) * rstd[s];
            y[i] = t->affine ? v * gm[ch] + bt[ch] : v;
        }
    free(mean), free(rstd);
}

static int norm_bwd(void *self, float **g)
{
    norm *t = self;
    float *dg = t->affine ? g[1] : NULL, *db = t->affine ? g[2] : NULL, *gamma = t->affine ? t->gamma : NULL;
    if (t->group)
        return spo_groupnorm_bwd(t->d, g[0], dg, db, t->dy, t->x, t->mean, t->rstd, gamma, t->n, t->ch, t->hw, t->g);
    return spo_layernorm_bwd(t->d, g[0], dg, db, t->dy, t->x, t->mean, t->rstd, gamma, t->n, t->ch);
}

static void run_norm(spo_dev *d, int group, int n, int ch, int hw, int g, int affine, float offset)
{
    norm t = {.group = group, .n = n, .ch = ch, .hw = group ? hw : 1, .g = g, .affine = affine, .eps = 1e-5f, .d = d};
    const size_t nx = (size_t)n * ch * t.hw, S = nsets(&t);
    float *hx = hrand(nx), *hg = hrand(ch), *hb = hrand(ch), *hdy = hrand(nx);
    for (size_t i = 0; i < nx; i++) hx[i] = hx[i] * 2.0f + offset;
    t.c = (fdcase){.nin = 3, .in = {todouble(hx, nx), todouble(hg, ch), todouble(hb, ch)}, .nel = {nx, ch, ch},
                   .ny = nx, .dy = todouble(hdy, nx), .fwd = norm_ref};
    t.x = dput(d, hx, nx), t.gamma = dput(d, hg, ch), t.dy = dput(d, hdy, nx);
    t.mean = dput(d, NULL, S), t.rstd = dput(d, NULL, S);
    float *beta = dput(d, hb, ch), *y = dput(d, NULL, nx);
    float *gm = affine ? t.gamma : NULL, *bt = affine ? beta : NULL;
    if (group)
        OK(spo_groupnorm_fwd(d, y, t.mean, t.rstd, t.x, gm, bt, n, ch, hw, g, t.eps));
    else
        OK(spo_layernorm_fwd(d, y, t.mean, t.rstd, t.x, gm, bt, n, ch, t.eps));
    char name[96];
    snprintf(name, sizeof name, "%s n%d c%d hw%d g%d affine %d offset %g", group ? "groupnorm" : "layernorm", n, ch,
             t.hw, g, affine, offset);
    double *ref = ref_forward(&t.c), *mean = malloc(S * sizeof *mean), *rstd = malloc(S * sizeof *rstd);
    norm_moments(&t, t.c.in[0], mean, rstd);
    check_dev(d, name, y, ref, nx, FWD_TOL);
    check_dev(d, "mean", t.mean, mean, S, FWD_TOL);
    check_dev(d, "rstd", t.rstd, rstd, S, FWD_TOL);
    if (offset == 0.0f) { /* the float x of a large offset is too coarse for the FD gradient check */
        int which[3] = {0, 1, 2};
        check_backward(d, name, &t.c, affine ? 3 : 1, which, norm_bwd, &t);
    }
    free(ref), free(mean), free(rstd), free(hx), free(hg), free(hb), free(hdy);
    spo_dev_free(d, y), spo_dev_free(d, beta), spo_dev_free(d, t.x), spo_dev_free(d, t.gamma);
    spo_dev_free(d, t.dy), spo_dev_free(d, t.mean), spo_dev_free(d, t.rstd);
    fdcase_free(&t.c);
}

static void test_groupnorm(void **state)
{
    run_norm(*state, 1, 2, 6, 5, 3, 1, 0.0f);
    run_norm(*state, 1, 1, 8, 7, 2, 1, 0.0f);
    run_norm(*state, 1, 3, 4, 3, 1, 1, 0.0f);
    run_norm(*state, 1, 2, 5, 4, 5, 1, 0.0f); /* one channel per group */
    run_norm(*state, 1, 2, 6, 5, 3, 0, 0.0f); /* no affine */
    run_norm(*state, 1, 2, 4, 64, 2, 1, 300.0f);
}

static void test_layernorm(void **state)
{
    run_norm(*state, 0, 5, 7, 1, 1, 1, 0.0f);
    run_norm(*state, 0, 3, 32, 1, 1, 1, 0.0f);
    run_norm(*state, 0, 1, 1, 1, 1, 1, 0.0f); /* constant row: xhat 0 */
    run_norm(*state, 0, 4, 9, 1, 1, 0, 0.0f);
    run_norm(*state, 0, 3, 256, 1, 1, 1, 300.0f);
}

static void test_norm_args(void **state)
{
    spo_dev *d = *state;
    float *a = dput(d, NULL, 64);
    assert_int_equal(spo_groupnorm_fwd(d, a, a, a, a, a, a, 1, 6, 4, 4, 1e-5f), SPO_EINVAL); /* 6 % 4 */
    assert_int_equal(spo_groupnorm_fwd(d, a, a, a, a, a, a, 1, 6, 4, 0, 1e-5f), SPO_EINVAL);
    assert_int_equal(spo_groupnorm_fwd(d, a, NULL, a, a, a, a, 1, 6, 4, 3, 1e-5f), SPO_EINVAL);
    assert_int_equal(spo_layernorm_fwd(d, a, a, a, a, a, a, 1, 6, -1.0f), SPO_EINVAL);
    assert_int_equal(spo_layernorm_bwd(d, a, a, a, a, a, NULL, a, a, 2, 6), SPO_EINVAL);
    spo_dev_free(d, a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_groupnorm),
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_norm_args),
    };
    OPCHECK_MAIN(tests);
}
