/* test_ops_shape.c — upsample2x, concat, transpose, add, axpy, add_nc,
 * scale and the timestep embedding against double references; the
 * backward of upsample2x, concat and add_nc against finite differences. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "opcheck.h"

typedef struct {
    fdcase c;
    int op; /* 0 upsample: x (n,c,h,w); 1 concat: a (n,ca,hw), b (n,cb,hw); 2 add_nc: b (n,c) onto y0 (n,c,hw) */
    int n, ch, h, w, cb;
    const double *y0;
    spo_dev *d;
    float *dy;
} shp;

static void shp_ref(const fdcase *c, double *y)
{
    const shp *t = (const shp *)c;
    const double *a = c->in[0], *b = c->in[1];
    if (t->op == 0) {
        for (int p = 0; p < t->n * t->ch; p++)
            for (int i = 0; i < 2 * t->h; i++)
                for (int j = 0; j < 2 * t->w; j++)
                    y[((size_t)p * 2 * t->h + i) * 2 * t->w + j] = a[((size_t)p * t->h + i / 2) * t->w + j / 2];
    } else if (t->op == 1) {
        const int hw = t->h, C = t->ch + t->cb;
        for (int i = 0; i < t->n; i++)
            for (int ch = 0; ch < C; ch++)
                for (int e = 0; e < hw; e++)
                    y[((size_t)i * C + ch) * hw + e] = ch < t->ch ? a[((size_t)i * t->ch + ch) * hw + e]
                                                                 : b[((size_t)i * t->cb + ch - t->ch) * hw + e];
    } else {
        const int hw = t->h;
        for (int i = 0; i < t->n * t->ch; i++)
            for (int e = 0; e < hw; e++) y[(size_t)i * hw + e] = t->y0[(size_t)i * hw + e] + a[i];
    }
}

static int shp_bwd(void *self, float **g)
{
    shp *t = self;
    if (t->op == 0) return spo_upsample2x_bwd(t->d, g[0], t->dy, t->n, t->ch, t->h, t->w);
    if (t->op == 1) return spo_concat_bwd(t->d, g[0], g[1], t->dy, t->n, t->ch, t->cb, t->h);
    return spo_add_nc_bwd(t->d, g[0], t->dy, t->n, t->ch, t->h);
}

static void test_upsample2x(void **state)
{
    spo_dev *d = *state;
    const int n = 2, c = 3, h = 3, w = 5;
    const size_t nx = (size_t)n * c * h * w, ny = 4 * nx;
    float *hx = hrand(nx), *hdy = hrand(ny);
    shp t = {.op = 0, .n = n, .ch = c, .h = h, .w = w, .d = d};
    t.c = (fdcase){.nin = 1, .in = {todouble(hx, nx)}, .nel = {nx}, .ny = ny, .dy = todouble(hdy, ny), .fwd = shp_ref};
    float *x = dput(d, hx, nx), *y = dput(d, NULL, ny);
    t.dy = dput(d, hdy, ny);
    OK(spo_upsample2x_fwd(d, y, x, n, c, h, w));
    double *ref = ref_forward(&t.c);
    check_dev(d, "upsample2x", y, ref, ny, 0.0);
    check_backward(d, "upsample2x", &t.c, 1, (int[]){0}, shp_bwd, &t);
    free(ref), free(hx), free(hdy), fdcase_free(&t.c);
    spo_dev_free(d, x), spo_dev_free(d, y), spo_dev_free(d, t.dy);
}

static void test_concat(void **state)
{
    spo_dev *d = *state;
    const int n = 2, ca = 3, cb = 2, hw = 7;
    const size_t na = (size_t)n * ca * hw, nb = (size_t)n * cb * hw, ny = na + nb;
    float *ha = hrand(na), *hb = hrand(nb), *hdy = hrand(ny);
    shp t = {.op = 1, .n = n, .ch = ca, .cb = cb, .h = hw, .d = d};
    t.c = (fdcase){.nin = 2, .in = {todouble(ha, na), todouble(hb, nb)}, .nel = {na, nb}, .ny = ny,
                   .dy = todouble(hdy, ny), .fwd = shp_ref};
    float *a = dput(d, ha, na), *b = dput(d, hb, nb), *y = dput(d, NULL, ny);
    t.dy = dput(d, hdy, ny);
    OK(spo_concat_fwd(d, y, a, b, n, ca, cb, hw));
    double *ref = ref_forward(&t.c);
    check_dev(d, "concat", y, ref, ny, 0.0);
    check_backward(d, "concat", &t.c, 2, (int[]){0, 1}, shp_bwd, &t);
    free(ref), free(ha), free(hb), free(hdy), fdcase_free(&t.c);
    spo_dev_free(d, a), spo_dev_free(d, b), spo_dev_free(d, y), spo_dev_free(d, t.dy);
}

static void test_add_nc(void **state)
{
    spo_dev *d = *state;
    const int n = 2, c = 5, hw = 9;
    const size_t nb = (size_t)n * c, ny = nb * hw;
    float *hb = hrand(nb), *hy0 = hrand(ny), *hdy = hrand(ny);
    double *y0 = todouble(hy0, ny);
    shp t = {.op = 2, .n = n, .ch = c, .h = hw, .y0 = y0, .d = d};
    t.c = (fdcase){.nin = 1, .in = {todouble(hb, nb)}, .nel = {nb}, .ny = ny, .dy = todouble(hdy, ny), .fwd = shp_ref};
    float *b = dput(d, hb, nb), *y = dput(d, hy0, ny);
    t.dy = dput(d, hdy, ny);
    OK(spo_add_nc_fwd(d, y, b, n, c, hw));
    double *ref = ref_forward(&t.c);
    check_dev(d, "add_nc", y, ref, ny, FWD_TOL);
    check_backward(d, "add_nc", &t.c, 1, (int[]){0}, shp_bwd, &t);
    free(ref), free(hb), free(hy0), free(hdy), free(y0), fdcase_free(&t.c);
    spo_dev_free(d, b), spo_dev_free(d, y), spo_dev_free(d, t.dy);
}

/* transpose (n,r,c) -> (n,c,r), larger than a 32 x 32 tile; twice is the identity */
static void test_transpose(void **state)
{
    spo_dev *d = *state;
    const int dims[][3] = {{2, 3, 5}, {1, 1, 7}, {3, 37, 70}, {1, 64, 33}};
    for (int k = 0; k < 4; k++) {
        const int n = dims[k][0], r = dims[k][1], c = dims[k][2];
        const size_t N = (size_t)n * r * c;
        float *hx = hrand(N);
        double *ref = malloc(N * sizeof *ref);
        for (int i = 0; i < n; i++)
            for (int a = 0; a < r; a++)
                for (int b = 0; b < c; b++) ref[((size_t)i * c + b) * r + a] = hx[((size_t)i * r + a) * c + b];
        float *x = dput(d, hx, N), *y = dput(d, NULL, N), *z = dput(d, NULL, N);
        OK(spo_transpose_fwd(d, y, x, n, r, c));
        check_dev(d, "transpose", y, ref, N, 0.0);
        OK(spo_transpose_fwd(d, z, y, n, c, r));
        double *back = todouble(hx, N);
        check_dev(d, "transpose back", z, back, N, 0.0);
        free(hx), free(ref), free(back);
        spo_dev_free(d, x), spo_dev_free(d, y), spo_dev_free(d, z);
    }
}

/* add (also in place on either side), axpy, scale (also in place) */
static void test_elementwise(void **state)
{
    spo_dev *d = *state;
    const size_t n = 1001;
    float *ha = hrand(n), *hb = hrand(n);
    double *sum = malloc(n * sizeof *sum), *ax = malloc(n * sizeof *ax), *sc = malloc(n * sizeof *sc);
    for (size_t i = 0; i < n; i++) {
        sum[i] = (double)ha[i] + hb[i];
        ax[i] = (double)hb[i] + -0.75 * ha[i];
        sc[i] = 1.5 * ha[i];
    }
    float *a = dput(d, ha, n), *b = dput(d, hb, n), *y = dput(d, NULL, n);
    OK(spo_add_fwd(d, y, a, b, n));
    check_dev(d, "add", y, sum, n, FWD_TOL);
    OK(spo_add_fwd(d, a, a, b, n));
    check_dev(d, "add into a", a, sum, n, FWD_TOL);
    OK(spo_dev_upload(d, a, ha, n));
    OK(spo_add_fwd(d, b, a, b, n));
    check_dev(d, "add into b", b, sum, n, FWD_TOL);
    OK(spo_dev_upload(d, b, hb, n));
    OK(spo_axpy(d, b, -0.75f, a, n));
    check_dev(d, "axpy", b, ax, n, FWD_TOL);
    OK(spo_scale(d, y, a, 1.5f, n));
    check_dev(d, "scale", y, sc, n, FWD_TOL);
    OK(spo_scale(d, a, a, 1.5f, n));
    check_dev(d, "scale in place", a, sc, n, FWD_TOL);
    OK(spo_add_fwd(d, NULL, NULL, NULL, 0));
    assert_int_equal(spo_add_fwd(d, y, NULL, b, n), SPO_EINVAL);
    free(ha), free(hb), free(sum), free(ax), free(sc);
    spo_dev_free(d, a), spo_dev_free(d, b), spo_dev_free(d, y);
}

/* get_timestep_embedding of diffusers 0.26.1 (torch 2.3.1, CPU, float32) for
 * t = 0, 1, 37.5, 999: dim 8 flip_sin_to_cos 1 shift 0, and dim 7 flip 0 shift 1 */
static const float emb_8_flip[4][8] = {
    {1, 1, 1, 1, 0, 0, 0, 0},
    {0.540302336f, 0.995004177f, 0.999949992f, 0.999999523f, 0.841470957f, 0.099833414f, 0.00999983307f,
     0.000999999815f},
    {0.98024267f, -0.820559502f, 0.9305076f, 0.999296963f, -0.197798803f, -0.571561098f, 0.366272539f,
     0.0374912098f},
    {0.999649823f, 0.807455063f, -0.844469786f, 0.541143537f, -0.0264607519f, -0.589929104f, -0.535603166f,
     0.840930223f},
};
static const float emb_7_shift[4][7] = {
    {0, 0, 0, 1, 1, 1, 0},
    {0.841470957f, 0.00999983307f, 9.99999902e-05f, 0.540302336f, 0.999949992f, 1, 0},
    {-0.197798803f, 0.366272539f, 0.00374999084f, 0.98024267f, 0.9305076f, 0.999992967f, 0},
    {-0.0264607519f, -0.535603166f, 0.0997339115f, 0.999649823f, -0.844469786f, 0.995014131f, 0},
};

/* against diffusers values, and against a double evaluation for many t: the
 * float argument t * freq carries a relative error of about 1e-7 */
static void test_timestep_embed(void **state)
{
    spo_dev *d = *state;
    const float ht[4] = {0.0f, 1.0f, 37.5f, 999.0f};
    float *t = dput(d, ht, 4), *y = dput(d, NULL, 4 * 8), h[4 * 8];
    OK(spo_timestep_embed(d, y, t, 4, 8, 1, 0.0f, 10000.0f));
    OK(spo_dev_download(d, h, y, 32));
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++) assert_float_equal(h[i * 8 + j], emb_8_flip[i][j], 2e-4);
    OK(spo_timestep_embed(d, y, t, 4, 7, 0, 1.0f, 10000.0f));
    OK(spo_dev_download(d, h, y, 28));
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 7; j++) assert_float_equal(h[i * 7 + j], emb_7_shift[i][j], 2e-4);
    spo_dev_free(d, t), spo_dev_free(d, y);

    /* SD: dim 320, t = 0..999 */
    const int n = 1000, dim = 320, half = dim / 2;
    float *tt = malloc(n * sizeof *tt), *out = malloc((size_t)n * dim * sizeof *out);
    for (int i = 0; i < n; i++) tt[i] = (float)i;
    t = dput(d, tt, n), y = dput(d, NULL, (size_t)n * dim);
    OK(spo_timestep_embed(d, y, t, n, dim, 1, 0.0f, 10000.0f));
    OK(spo_dev_download(d, out, y, (size_t)n * dim));
    double worst = 0.0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < half; j++) {
            double a = tt[i] * exp(-log(10000.0) * j / half), lim = tol(1e-6) + 1e-6 * a;
            double ec = fabs(out[(size_t)i * dim + j] - cos(a)), es = fabs(out[(size_t)i * dim + half + j] - sin(a));
            if (ec / lim > worst) worst = ec / lim;
            if (es / lim > worst) worst = es / lim;
        }
    if (worst > 1.0) {
        print_error("timestep embedding: error %.3g times the tolerance\n", worst);
        fail();
    }
    assert_int_equal(spo_timestep_embed(d, y, t, n, 2, 1, 1.0f, 10000.0f), SPO_EINVAL); /* half - shift = 0 */
    assert_int_equal(spo_timestep_embed(d, y, t, n, dim, 1, 0.0f, 0.0f), SPO_EINVAL);
    free(tt), free(out);
    spo_dev_free(d, t), spo_dev_free(d, y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upsample2x),  cmocka_unit_test(test_concat),
        cmocka_unit_test(test_add_nc),      cmocka_unit_test(test_transpose),
        cmocka_unit_test(test_elementwise), cmocka_unit_test(test_timestep_embed),
    };
    OPCHECK_MAIN(tests);
}
