/* test_update.c — the SPO update against the official loss with diffusers
 * 0.26.1 + peft 0.10.0 (tests/fixtures/update, written by
 * tests/reference/spo_update_fixture.py), a fresh LoRA (B = 0), finite
 * differences of the loss, AdamW against its formula and the batch
 * permutation. Fixtures are found under $SPO_ROOT (default "."). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/lora.h"
#include "nn/lora_train.h"
#include "update_testutil.h"
#include "spo/update.h"

static double attr(const char *name)
{
    hid_t f = H5Fopen(fix(fx->step), H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    double v = NAN;
    H5Aread(a, H5T_NATIVE_DOUBLE, &v);
    H5Aclose(a), H5Fclose(f);
    return v;
}

/* the flat vector of step.h5 group grp in the LoRA's layout */
static float *flat_of(const spo_lora *l, const char *grp)
{
    spo_lora t = *l;
    t.m = calloc((size_t)l->n, sizeof *t.m);
    float *out = malloc(spo_lora_numel(l) * sizeof *out);
    for (int i = 0; i < l->n; i++) {
        char p[700];
        size_t n;
        t.m[i] = l->m[i];
        snprintf(p, sizeof p, "/%s/%s/down", grp, l->m[i].name);
        t.m[i].down = h5_floats(fix(fx->step), p, &n);
        snprintf(p, sizeof p, "/%s/%s/up", grp, l->m[i].name);
        t.m[i].up = h5_floats(fix(fx->step), p, &n);
        assert_non_null(t.m[i].down), assert_non_null(t.m[i].up);
    }
    spo_lora_pack(&t, out);
    for (int i = 0; i < l->n; i++) free(t.m[i].down), free(t.m[i].up);
    free(t.m);
    return out;
}

static const int64_t all6[6] = {0, 1, 2, 3, 4, 5};

/* loss, every gradient and the LoRA after one clipped AdamW step (from
 * moments of a run in progress) equal the peft + official-loss reference
 * within 1e-4 relative, on fixture set f */
static void parity(const fixset *f)
{
    fx = f;
    env e;
    env_open(&e, fix(fx->pairs), "lora", 0);
    size_t n = spo_lora_numel(&e.lora);
    double *gs = calloc(n, sizeof *gs);
    spo_update_stats s = {0};
    assert_int_equal(spo_update_grad(&e.u, e.pairs, all6, 6, 1.0 / 6, gs, &s), SPO_OK);
    double loss = s.loss / 6, want = attr("loss");
    printf("loss %.9g, reference %.9g; clamped pairs %lld\n", loss, want, (long long)s.clamped);
    assert_true(fabs(loss - want) <= 1e-4 * fabs(want));
    assert_true(fabs(s.rw / 6 - attr("ratio_win")) <= 1e-4);
    /* pairs with a clamped ratio (spo counts pairs, the reference ratios) */
    int64_t cw = (int64_t)attr("clamped_win"), cl = (int64_t)attr("clamped_lose");
    assert_true(s.clamped >= (cw > cl ? cw : cl) && s.clamped <= cw + cl);
    float *g = malloc(n * sizeof *g), *gref = flat_of(&e.lora, "grad");
    for (size_t i = 0; i < n; i++) g[i] = (float)gs[i];
    /* every module's dA and dB */
    size_t off = 0;
    double worst = 0;
    for (int i = 0; i < e.lora.n; i++) {
        size_t na = (size_t)4 * e.lora.m[i].in, nb = (size_t)4 * e.lora.m[i].out;
        double ea = rel_l2(g + off, gref + off, na), eb = rel_l2(g + off + na, gref + off + na, nb);
        if (ea > worst) worst = ea;
        if (eb > worst) worst = eb;
        off += na + nb;
    }
    printf("gradients: worst relative L2 error over %d modules' dA and dB %.3g\n", e.lora.n, worst);
    assert_true(worst <= 1e-4);

    if (fx->sdxl) { /* the fixture has no optimizer step: the same code as SD's */
        free(gs), free(g), free(gref);
        env_close(&e);
        return;
    }
    /* one step with active clipping, AdamW from the fixture's moments */
    float *theta = malloc(n * sizeof *theta), *m = flat_of(&e.lora, "m0"), *v = flat_of(&e.lora, "v0");
    float *before = malloc(n * sizeof *before), *after = flat_of(&e.lora, "after");
    spo_lora_pack(&e.lora, theta);
    memcpy(before, theta, n * sizeof *before);
    spo_adamw_cfg opt = {.lr = 6e-5, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 1e-4,
                         .max_grad_norm = attr("max_grad_norm")};
    assert_true(attr("grad_norm") > opt.max_grad_norm);
    spo_step_result r;
    int64_t step = (int64_t)attr("adam_step") + 1;
    assert_int_equal(spo_update_step(&e.u, e.pairs, all6, 6, NULL, &opt, step, theta, m, v, &r), SPO_OK);
    printf("grad norm %.9g, reference %.9g\n", r.grad_norm, attr("grad_norm"));
    assert_true(fabs(r.grad_norm - attr("grad_norm")) <= 1e-4 * attr("grad_norm"));
    double ea = rel_l2(theta, after, n);
    /* the step itself, (after - before), is what can differ */
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d1 = (double)theta[i] - before[i], d2 = (double)after[i] - before[i];
        num += (d1 - d2) * (d1 - d2), den += d2 * d2;
    }
    printf("LoRA after the step: relative L2 error %.3g; of the step itself %.3g\n", ea, sqrt(num / den));
    assert_true(ea <= 1e-4);
    assert_true(sqrt(num / den) <= 1e-3);
    free(gs), free(g), free(gref), free(theta), free(m), free(v), free(before), free(after);
    env_close(&e);
}

static void test_parity(void **st)
{
    (void)st;
    parity(&fx_sd);
}

/* the same for SDXL: the added conditioning (pooled embeddings, time ids) in both passes */
static void test_parity_sdxl(void **st)
{
    (void)st;
    parity(&fx_xl);
}

static int sd_again(void **st)
{
    (void)st;
    fx = &fx_sd;
    return 0;
}

/* B = 0: the policy equals the reference, so both ratios are exactly 1 and
 * the loss is ln 2 */
static void test_fresh(void **st)
{
    (void)st;
    env e;
    env_open(&e, fix("update/pairs.h5"), "lora", 1);
    size_t n = spo_lora_numel(&e.lora);
    double *gs = calloc(n, sizeof *gs);
    for (int j = 0; j < 6; j++) {
        spo_update_stats s = {0};
        assert_int_equal(spo_update_grad(&e.u, e.pairs, all6 + j, 1, 1.0, gs, &s), SPO_OK);
        assert_true(s.rw == 1.0 && s.rl == 1.0);
        assert_int_equal(s.clamped, 0);
        assert_true(fabs(s.loss - log(2.0)) <= 1e-7);
    }
    free(gs);
    env_close(&e);
}


/* central differences (step 3% of the entry, at least 3e-3) of the loss
 * for the largest-gradient entry of A and of B in every 4th module:
 * |fd - g| <= 3e-2 |g| + 1e-7 (measured worst 1.1e-2). The UNet is fp32,
 * so pairs where the loss is most sensitive to rounding are left out: pair
 * 2 (its ratio sits at the clamp edge) and pair 5 (t = 1, the smallest
 * sigma, which amplifies the rounding of mu). */
static void test_fd(void **st)
{
    (void)st;
    env e;
    env_open(&e, fix("update/pairs.h5"), "lora", 0);
    static const int64_t idx[4] = {0, 1, 3, 4};
    size_t n = spo_lora_numel(&e.lora);
    double *gs = calloc(n, sizeof *gs);
    float *theta = malloc(n * sizeof *theta);
    spo_lora_pack(&e.lora, theta);
    loss_at(&e, theta, idx, 4, gs);
    fd_check(&e, theta, gs, idx, 4, "");
    free(gs), free(theta);
    env_close(&e);
}

/* AdamW against its formula in double; clipping */
static void test_adamw(void **st)
{
    (void)st;
    float p[3] = {1, -2, 0.5f}, g[3] = {0.1f, -0.3f, 0}, m[3] = {0}, v[3] = {0};
    spo_adamw_cfg c = {.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1};
    double P[3] = {1, -2, 0.5}, M[3] = {0}, V[3] = {0};
    for (int s = 1; s <= 3; s++) {
        spo_adamw_step(&c, s, p, g, m, v, 3);
        for (int i = 0; i < 3; i++) {
            P[i] *= 1 - c.lr * c.weight_decay;
            M[i] = 0.9 * M[i] + 0.1 * g[i], V[i] = 0.999 * V[i] + 0.001 * g[i] * g[i];
            double mh = M[i] / (1 - pow(0.9, s)), vh = V[i] / (1 - pow(0.999, s));
            P[i] -= c.lr * mh / (sqrt(vh) + c.eps);
            assert_true(fabs(p[i] - P[i]) <= 1e-6);
        }
    }
    float h[2] = {3, 4};
    assert_true(fabs(spo_clip_grad_norm(h, 2, 1.0) - 5.0) < 1e-9);
    assert_true(fabs(hypot(h[0], h[1]) - 1.0) < 1e-5);
    float k[2] = {0.3f, 0.4f};
    spo_clip_grad_norm(k, 2, 1.0);
    assert_true(k[0] == 0.3f && k[1] == 0.4f);
}

/* the permutation: a permutation, the same for the same key, another for
 * another step or pass */
static void test_perm(void **st)
{
    (void)st;
    int64_t a[100], b[100], c[100], d[100];
    spo_update_perm(a, 100, 7, 3, 0);
    spo_update_perm(b, 100, 7, 3, 0);
    spo_update_perm(c, 100, 7, 4, 0);
    spo_update_perm(d, 100, 7, 3, 1);
    int seen[100] = {0}, diff_c = 0, diff_d = 0;
    for (int i = 0; i < 100; i++) {
        assert_true(a[i] >= 0 && a[i] < 100);
        seen[a[i]]++;
        assert_int_equal(a[i], b[i]);
        diff_c += a[i] != c[i], diff_d += a[i] != d[i];
    }
    for (int i = 0; i < 100; i++) assert_int_equal(seen[i], 1);
    assert_true(diff_c > 50 && diff_d > 50);
}

/* more pairs per UNet call change the gradient only by rounding */
static void test_micro(void **st)
{
    (void)st;
    env e;
    env_open(&e, fix("update/pairs.h5"), "lora", 0);
    size_t n = spo_lora_numel(&e.lora);
    double *g1 = calloc(n, sizeof *g1), *g3 = calloc(n, sizeof *g3);
    spo_update_stats s1 = {0}, s3 = {0};
    assert_int_equal(spo_update_grad(&e.u, e.pairs, all6, 6, 1.0 / 6, g1, &s1), SPO_OK);
    e.u.micro = 4; /* calls of 4 and 2 pairs */
    assert_int_equal(spo_update_grad(&e.u, e.pairs, all6, 6, 1.0 / 6, g3, &s3), SPO_OK);
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) num += (g1[i] - g3[i]) * (g1[i] - g3[i]), den += g1[i] * g1[i];
    printf("micro-batch 4 vs 1: loss %.9g vs %.9g, gradient relative L2 %.3g\n", s3.loss, s1.loss, sqrt(num / den));
    assert_true(fabs(s3.loss - s1.loss) <= 1e-6 * fabs(s1.loss));
    assert_true(sqrt(num / den) <= 1e-5);
    free(g1), free(g3);
    env_close(&e);
}

/* the unmerged LoRA forward (inference and train mode) equals the merged
 * weights (W + alpha/r B A) that sampling uses, and LoRA off equals the
 * base model */
static void test_unmerged(void **st)
{
    (void)st;
    env e;
    env_open(&e, fix("update/pairs.h5"), "lora", 0);
    size_t lat = 4 * 16 * 16, ctx = 77 * 32;
    float *x = spo_dev_alloc(dev, 2 * lat), *c = spo_dev_alloc(dev, 2 * ctx), *t = spo_dev_alloc(dev, 2);
    float *o = spo_dev_alloc(dev, 2 * lat);
    float hx[2 * 4 * 16 * 16], ht[2] = {501, 51}, *hc = malloc(2 * ctx * sizeof *hc);
    float on[2 * 4 * 16 * 16], off[2 * 4 * 16 * 16], merged[2 * 4 * 16 * 16], base[2 * 4 * 16 * 16];
    for (size_t i = 0; i < 2 * lat; i++) hx[i] = sinf(0.37f * (float)i);
    for (size_t i = 0; i < 2 * ctx; i++) hc[i] = cosf(0.11f * (float)i);
    spo_dev_upload(dev, x, hx, 2 * lat), spo_dev_upload(dev, c, hc, 2 * ctx), spo_dev_upload(dev, t, ht, 2);
    for (int train = 0; train < 2; train++) {
        spo_unet_lora_enable(e.unet, 1);
        assert_int_equal(spo_unet_forward(e.unet, o, x, t, c, 2, 16, 16, 77, train), SPO_OK);
        spo_dev_download(dev, on, o, 2 * lat);
        spo_unet_lora_enable(e.unet, 0);
        assert_int_equal(spo_unet_forward(e.unet, o, x, t, c, 2, 16, 16, 77, train), SPO_OK);
        spo_dev_download(dev, off, o, 2 * lat);
        if (train) break;
        spo_lora_train_free(e.u.lt), e.u.lt = NULL; /* detached: the base model */
        assert_int_equal(spo_unet_forward(e.unet, o, x, t, c, 2, 16, 16, 77, 0), SPO_OK);
        spo_dev_download(dev, base, o, 2 * lat);
        assert_int_equal(spo_lora_merge(&e.lora, e.unet, 1.0f), SPO_OK);
        assert_int_equal(spo_unet_forward(e.unet, o, x, t, c, 2, 16, 16, 77, 0), SPO_OK);
        spo_dev_download(dev, merged, o, 2 * lat);
        assert_int_equal(spo_lora_merge(&e.lora, e.unet, -1.0f), SPO_OK);
        double em = rel_l2(on, merged, 2 * lat), eb = rel_l2(off, base, 2 * lat), d = rel_l2(on, base, 2 * lat);
        printf("unmerged vs merged %.3g; off vs base %.3g; (LoRA changes the output by %.3g)\n", em, eb, d);
        assert_true(em <= 1e-5 && eb == 0 && d > 1e-3);
        assert_int_equal(spo_lora_train_new(&e.u.lt, e.unet, &e.lora), SPO_OK);
    }
    /* the train forward (the path spo-step-update uses) agrees too */
    assert_true(rel_l2(on, merged, 2 * lat) <= 1e-5 && rel_l2(off, base, 2 * lat) <= 1e-5);
    spo_dev_free(dev, x), spo_dev_free(dev, c), spo_dev_free(dev, t), spo_dev_free(dev, o), free(hc);
    env_close(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parity),
        cmocka_unit_test_teardown(test_parity_sdxl, sd_again), cmocka_unit_test(test_fresh), cmocka_unit_test(test_fd),
        cmocka_unit_test(test_adamw),  cmocka_unit_test(test_perm),  cmocka_unit_test(test_micro),
        cmocka_unit_test(test_unmerged),
    };
    return cmocka_run_group_tests(tests, dev_setup, dev_teardown);
}
