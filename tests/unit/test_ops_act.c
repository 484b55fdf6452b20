/* test_ops_act.c — SiLU, exact GELU, quick GELU and GEGLU against double
 * references and finite differences; in-place forward. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "opcheck.h"

static double act_ref1(spo_act a, double x)
{
    switch (a) {
    case SPO_ACT_SILU: return x / (1.0 + exp(-x));
    case SPO_ACT_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case SPO_ACT_QUICK_GELU: return x / (1.0 + exp(-1.702 * x));
    }
    return 0.0;
}

typedef struct {
    fdcase c; /* act: in x (n); geglu: in x (m, 2c) */
    spo_act a;
    int geglu, m, ch;
    spo_dev *d;
    float *dy, *x;
} act;

static void act_ref(const fdcase *c, double *y)
{
    const act *t = (const act *)c;
    const double *x = c->in[0];
    if (!t->geglu) {
        for (size_t i = 0; i < c->ny; i++) y[i] = act_ref1(t->a, x[i]);
        return;
    }
    for (int i = 0; i < t->m; i++)
        for (int j = 0; j < t->ch; j++)
            y[i * t->ch + j] = x[i * 2 * t->ch + j] * act_ref1(SPO_ACT_GELU, x[i * 2 * t->ch + t->ch + j]);
}

static int act_bwd(void *self, float **g)
{
    act *t = self;
    if (t->geglu) return spo_geglu_bwd(t->d, g[0], t->dy, t->x, t->m, t->ch);
    return spo_act_bwd(t->d, t->a, g[0], t->dy, t->x, t->c.ny);
}

static void run_act(spo_dev *d, spo_act a, int geglu, int m, int ch, float range)
{
    act t = {.a = a, .geglu = geglu, .m = m, .ch = ch, .d = d};
    size_t nx = geglu ? (size_t)m * 2 * ch : (size_t)m * ch, ny = (size_t)m * ch;
    float *hx = hrand(nx), *hdy = hrand(ny);
    for (size_t i = 0; i < nx; i++) hx[i] *= range;
    t.c = (fdcase){.nin = 1, .in = {todouble(hx, nx)}, .nel = {nx}, .ny = ny, .dy = todouble(hdy, ny), .fwd = act_ref};
    t.x = dput(d, hx, nx), t.dy = dput(d, hdy, ny);
    float *y = dput(d, NULL, ny);
    if (geglu)
        OK(spo_geglu_fwd(d, y, t.x, m, ch));
    else
        OK(spo_act_fwd(d, a, y, t.x, ny));
    char name[64];
    snprintf(name, sizeof name, "%s m%d c%d", geglu ? "geglu" : a == SPO_ACT_SILU ? "silu" : a == SPO_ACT_GELU ? "gelu" : "quick_gelu", m, ch);
    double *ref = ref_forward(&t.c);
    check_dev(d, name, y, ref, ny, FWD_TOL);
    if (!geglu) { /* in place */
        float *z = dput(d, hx, nx);
        OK(spo_act_fwd(d, a, z, z, nx));
        check_dev(d, "in place", z, ref, ny, FWD_TOL);
        spo_dev_free(d, z);
    }
    int which[1] = {0};
    check_backward(d, name, &t.c, 1, which, act_bwd, &t);
    free(ref), free(hx), free(hdy);
    spo_dev_free(d, y), spo_dev_free(d, t.x), spo_dev_free(d, t.dy);
    fdcase_free(&t.c);
}

static void test_silu(void **state)
{
    run_act(*state, SPO_ACT_SILU, 0, 1, 257, 6.0f);
    run_act(*state, SPO_ACT_SILU, 0, 3, 5, 0.5f);
}

static void test_gelu(void **state)
{
    run_act(*state, SPO_ACT_GELU, 0, 1, 257, 6.0f);
    run_act(*state, SPO_ACT_GELU, 0, 3, 5, 0.5f);
}

static void test_quick_gelu(void **state)
{
    run_act(*state, SPO_ACT_QUICK_GELU, 0, 1, 257, 6.0f);
    run_act(*state, SPO_ACT_QUICK_GELU, 0, 3, 5, 0.5f);
}

static void test_geglu(void **state)
{
    run_act(*state, SPO_ACT_GELU, 1, 3, 5, 3.0f);
    run_act(*state, SPO_ACT_GELU, 1, 1, 1, 1.0f);
    run_act(*state, SPO_ACT_GELU, 1, 4, 16, 4.0f);
}

/* large |x|: no NaN, the right limits */
static void test_act_tails(void **state)
{
    spo_dev *d = *state;
    const float hx[4] = {-100.0f, -30.0f, 30.0f, 100.0f};
    float *x = dput(d, hx, 4), *y = dput(d, NULL, 4), *g = dput(d, NULL, 4), *one = dput(d, NULL, 4), h[4];
    const float ones[4] = {1, 1, 1, 1};
    OK(spo_dev_upload(d, one, ones, 4));
    for (int a = SPO_ACT_SILU; a <= SPO_ACT_QUICK_GELU; a++) {
        OK(spo_act_fwd(d, a, y, x, 4));
        OK(spo_dev_download(d, h, y, 4));
        for (int i = 0; i < 4; i++) assert_float_equal(h[i], hx[i] > 0 ? hx[i] : 0.0f, tol(1e-5));
        OK(spo_dev_zero(d, g, 4));
        OK(spo_act_bwd(d, a, g, one, x, 4));
        OK(spo_dev_download(d, h, g, 4));
        for (int i = 0; i < 4; i++) assert_float_equal(h[i], hx[i] > 0 ? 1.0f : 0.0f, tol(1e-5));
    }
    assert_int_equal(spo_act_fwd(d, (spo_act)7, y, x, 4), SPO_EINVAL);
    OK(spo_act_fwd(d, SPO_ACT_SILU, NULL, NULL, 0));
    spo_dev_free(d, x), spo_dev_free(d, y), spo_dev_free(d, g), spo_dev_free(d, one);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_silu),  cmocka_unit_test(test_gelu),      cmocka_unit_test(test_quick_gelu),
        cmocka_unit_test(test_geglu), cmocka_unit_test(test_act_tails),
    };
    OPCHECK_MAIN(tests);
}
