/* update_testutil.h — what the tests of the SPO update (test_update.c,
 * test_update_traj.c) share: the fixtures' root, the tiny UNet with the
 * LoRA of tests/fixtures/update/step.h5 over a pairs file, the loss at a
 * given LoRA, and the finite-difference check of its gradient. Static,
 * header only; setup fills `root` and `dev`; `fx` picks the fixture set. */
#ifndef SPO_UPDATE_TESTUTIL_H
#define SPO_UPDATE_TESTUTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testdev.h"
#include "nn/lora.h"
#include "nn/lora_train.h"
#include "nn_testutil.h"
#include "spo/update.h"



/* the fixture set the env reads: SD v1.5's (tiny-sd) or SDXL's (the tiny SDXL
 * UNet, whose pairs carry pooled embeddings; the time ids of their 32x32
 * images), both written by tests/reference/spo_update_fixture.py */
typedef struct {
    const char *unet, *step, *pairs;
    int sdxl;
} fixset;
static const fixset fx_sd = {"tiny-sd/unet", "update/step.h5", "update/pairs.h5", 0};
static const fixset fx_xl = {"tiny-sdxl/unet", "update/sdxl/step.h5", "update/sdxl/pairs.h5", 1};
static const fixset *fx = &fx_sd;

typedef struct {
    spo_unet *unet;
    spo_lora lora;
    spo_pairs_in *pairs;
    spo_update u;
} env;

/* the tiny UNet, the pairs of `pairs` and a LoRA from step.h5 group `grp`
 * ("lora" or "after"); zero_b: B = 0 */
static void env_open(env *e, const char *pairs, const char *grp, int zero_b)
{
    char path[2048]; /* pairs may be one of fix()'s buffers, which the calls below reuse */
    snprintf(path, sizeof path, "%s", pairs);
    const char *pp = path;
    memset(e, 0, sizeof *e);
    assert_int_equal(spo_unet_load(&e->unet, fix(fx->unet), dev), SPO_OK);
    assert_int_equal(spo_lora_new(&e->lora, e->unet, 4, 4.0f, 1, "x"), SPO_OK);
    for (int i = 0; i < e->lora.n; i++) {
        spo_lora_module *m = &e->lora.m[i];
        char p[700];
        size_t n = 0;
        snprintf(p, sizeof p, "/%s/%s/down", grp, m->name);
        float *a = h5_floats(fix(fx->step), p, &n);
        assert_non_null(a);
        assert_int_equal(n, (size_t)4 * m->in);
        memcpy(m->down, a, n * sizeof *a), free(a);
        snprintf(p, sizeof p, "/%s/%s/up", grp, m->name);
        float *b = h5_floats(fix(fx->step), p, &n);
        assert_non_null(b);
        assert_int_equal(n, (size_t)4 * m->out);
        for (size_t k = 0; k < n; k++) m->up[k] = zero_b ? 0.0f : b[k];
        free(b);
    }
    assert_int_equal(spo_pairs_in_open(&e->pairs, &pp, 1), SPO_OK);
    e->u.unet = e->unet;
    assert_int_equal(spo_lora_train_new(&e->u.lt, e->unet, &e->lora), SPO_OK);
    assert_int_equal(spo_ddim_load(&e->u.sched, fix("tiny-sd/scheduler")), SPO_OK);
    assert_int_equal(spo_ddim_set_steps(&e->u.sched, 20), SPO_OK);
    e->u.guidance = 5, e->u.eta = 1, e->u.loss.beta = 10, e->u.loss.clip = 0.1, e->u.micro = 1;
    static const float ids[SPO_UNET_TIME_IDS] = {32, 32, 0, 0, 32, 32};
    if (fx->sdxl) memcpy(e->u.time_ids, ids, sizeof ids);
}

static void env_close(env *e)
{
    spo_lora_train_free(e->u.lt);
    spo_pairs_in_close(e->pairs);
    spo_lora_free(&e->lora);
    spo_unet_free(e->unet);
}

/* loss of pairs idx with the device LoRA set to theta; its gradient into gs */
static double loss_at(env *e, const float *theta, const int64_t *idx, int n, double *gs)
{
    spo_update_stats s = {0};
    assert_int_equal(spo_lora_train_set(e->u.lt, theta), SPO_OK);
    assert_int_equal(spo_update_grad(&e->u, e->pairs, idx, n, 1.0 / n, gs, &s), SPO_OK);
    return s.loss / n;
}

/* Central differences (step 3% of the entry, at least 3e-3) of the loss of
 * pairs idx at theta, for the largest-gradient entry of A and of B in every
 * 4th module, against gs (the gradient at theta): |fd - g| <= 3e-2 |g| +
 * 1e-7. Prints the worst relative error under `what`; returns the entries
 * checked. theta is left as it was. */
static int fd_check(env *e, float *theta, const double *gs, const int64_t *idx, int n, const char *what)
{
    double *tmp = calloc(spo_lora_numel(&e->lora), sizeof *tmp);
    size_t off = 0;
    int checked = 0;
    double worst = 0;
    for (int i = 0; i < e->lora.n; i++) {
        size_t na = (size_t)4 * e->lora.m[i].in, nb = (size_t)4 * e->lora.m[i].out;
        for (int part = 0; part < 2 && i % 4 == 0; part++) {
            size_t lo = off + (part ? na : 0), hi = lo + (part ? nb : na), k = lo;
            for (size_t j = lo; j < hi; j++)
                if (fabs(gs[j]) > fabs(gs[k])) k = j;
            float keep = theta[k], h = 3e-2f * (fabsf(keep) > 0.1f ? fabsf(keep) : 0.1f);
            theta[k] = keep + h;
            double lp = loss_at(e, theta, idx, n, tmp);
            theta[k] = keep - h;
            double lm = loss_at(e, theta, idx, n, tmp);
            theta[k] = keep;
            double fd = (lp - lm) / (2.0 * h), err = fabs(fd - gs[k]) / (fabs(gs[k]) + 1e-12);
            if (err > worst) worst = err;
            assert_true(fabs(fd - gs[k]) <= 3e-2 * fabs(gs[k]) + 1e-7);
            checked++;
        }
        off += na + nb;
    }
    printf("finite differences%s: %d entries, worst relative error %.3g\n", what, checked, worst);
    free(tmp);
    return checked;
}

#endif
