/* test_ddim.c — the DDIM scheduler against diffusers' DDIMScheduler
 * (fixture tests/fixtures/tiny_sd_parity.h5 /scheduler, written by
 * tests/reference/tiny_sd_fixtures.py). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "spo/ddim.h"
#include "core/err.h"
#include "io/h5io.h"

#define FIX "tests/fixtures/tiny_sd_parity.h5"

static double rel_l2(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

static void test_schedule(void **state)
{
    spo_ddim s, d;
    assert_int_equal(spo_ddim_load(&s, "tests/fixtures/tiny-sd/scheduler"), SPO_OK);
    spo_ddim_sd15(&d);
    spo_h5 *f;
    assert_int_equal(spo_h5_open(&f, FIX, NULL, NULL), SPO_OK);
    int64_t ts[20];
    assert_int_equal(spo_h5_read_i64(f, "/scheduler/timesteps", ts, 20), SPO_OK);
    assert_int_equal(s.num_steps, 20);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(s.timesteps[i], ts[i]);
        assert_int_equal(d.timesteps[i], ts[i]);
    }
    assert_int_equal(s.timesteps[0], 951);
    assert_int_equal(spo_ddim_prev(&s, 951), 901);
    float *ac = malloc(1000 * sizeof *ac);
    assert_int_equal(spo_h5_read_f32(f, "/scheduler/alphas_cumprod", ac, 1000), SPO_OK);
    for (int i = 0; i < 1000; i++) {
        assert_true(fabsf(s.alphas_cumprod[i] - ac[i]) <= 2e-6f * ac[i]);
        assert_true(d.alphas_cumprod[i] == s.alphas_cumprod[i]);
    }
    assert_true(s.final_alpha_cumprod == s.alphas_cumprod[0]);
    free(ac);
    spo_h5_close(f);
}

static void check_step(const char *g)
{
    spo_ddim s;
    assert_int_equal(spo_ddim_load(&s, "tests/fixtures/tiny-sd/scheduler"), SPO_OK);
    spo_h5 *f;
    assert_int_equal(spo_h5_open(&f, FIX, NULL, NULL), SPO_OK);
    size_t n = 2 * 4 * 16 * 16;
    float *x = malloc(n * 4), *eps = malloc(n * 4), *z = malloc(n * 4), *want = malloc(n * 4), *want0 = malloc(n * 4);
    float *x0 = malloc(n * 4), *mu = malloc(n * 4), *xp = malloc(n * 4);
    char name[128];
    int64_t t, prev;
    float eta, sd;
#define RD(what, dst, cnt) snprintf(name, sizeof name, "/scheduler/%s/%s", g, what), \
                           assert_int_equal(spo_h5_read_f32(f, name, dst, cnt), SPO_OK)
    RD("x_t", x, n);
    RD("eps", eps, n);
    RD("z", z, n);
    RD("prev_sample", want, n);
    RD("pred_original_sample", want0, n);
    RD("eta", &eta, 1);
    RD("std_dev_t", &sd, 1);
    snprintf(name, sizeof name, "/scheduler/%s/timestep", g);
    assert_int_equal(spo_h5_read_i64(f, name, &t, 1), SPO_OK);
    snprintf(name, sizeof name, "/scheduler/%s/prev_timestep", g);
    assert_int_equal(spo_h5_read_i64(f, name, &prev, 1), SPO_OK);
    assert_int_equal(spo_ddim_prev(&s, (int)t), (int)prev);
    float sigma;
    spo_ddim_mean(&s, (int)t, (int)prev, eta, x, eps, x0, mu, &sigma, n);
    spo_ddim_add_noise(xp, mu, sigma, z, n);
    assert_true(fabsf(sigma - sd) <= 1e-6f * sd);
    assert_true(rel_l2(x0, want0, n) <= 1e-6);
    assert_true(rel_l2(xp, want, n) <= 1e-6);
    /* log p of x_prev = mu + sigma z is mean(-z^2/2) - log sigma - log sqrt(2 pi) */
    double lp = spo_ddim_logprob(xp, mu, sigma, n), ref = 0;
    for (size_t i = 0; i < n; i++) ref += -0.5 * (double)z[i] * z[i];
    ref = ref / (double)n - log((double)sigma) - 0.5 * log(2 * M_PI);
    assert_true(fabs(lp - ref) <= 1e-4 * fabs(ref));
    free(x), free(eps), free(z), free(want), free(want0), free(x0), free(mu), free(xp);
    spo_h5_close(f);
}

static void test_step0(void **state) { check_step("step0"); }
static void test_step1_final(void **state) { check_step("step1"); }

static void test_bad_config(void **state)
{
    spo_ddim s;
    assert_int_equal(spo_ddim_load(&s, "/nonexistent/scheduler"), SPO_EINVAL);
    assert_int_equal(spo_ddim_set_steps(&s, 0), SPO_EINVAL);
}

/* schedules that would give NaN or infinite steps are refused naming the file and key */
static void test_bad_schedules(void **state)
{
    static const struct { const char *json, *key; } bad[] = {
        {"{\"beta_start\": 0.02, \"beta_end\": 0.012}", "'beta_start' 0.02 is greater than 'beta_end' 0.012"},
        {"{\"beta_start\": 0}", "'beta_start'"},
        {"{\"beta_start\": -0.1}", "'beta_start'"},
        {"{\"beta_end\": 1}", "'beta_end'"},
        {"{\"beta_end\": 1.5}", "'beta_end'"},
        {"{\"beta_start\": 0.9, \"beta_end\": 0.95}", "alphas_cumprod"},
        {"{\"num_train_timesteps\": 1099511627776}", "'num_train_timesteps'"},
        {"{\"num_train_timesteps\": 1}", "'num_train_timesteps'"},
        {"{\"num_train_timesteps\": 2.5}", "'num_train_timesteps'"},
        {"{\"beta_schedule\": \"squaredcos_cap_v2\"}", "'beta_schedule'"},
        {"{\"prediction_type\": \"v_prediction\"}", "'prediction_type'"},
        {"{\"timestep_spacing\": \"random\"}", "'timestep_spacing'"},
        {"{\"beta_end\": \"0.012\"}", "'beta_end' must be a number"},
        {"{\"clip_sample\": 1}", "'clip_sample'"},
        {"{\"thresholding\": true}", "'thresholding'"},
        {"{\"trained_betas\": [0.1, 0.2]}", "'trained_betas'"},
        {"{\"steps_offset\": -1}", "'steps_offset'"},
        {"{\"steps_offset\": 5000}", "'steps_offset'"},
        {"{\"beta_start\": ", "invalid JSON"},
    };
    char path[] = "/tmp/spo_sched_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    spo_ddim s;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(bad[i].json, f);
        fclose(f);
        assert_int_equal(spo_ddim_load(&s, path), SPO_EINVAL);
        if (strncmp(spo_errmsg(), path, strlen(path)) || !strstr(spo_errmsg(), bad[i].key))
            fail_msg("'%s' gave '%s'", bad[i].json, spo_errmsg());
    }
    FILE *f = fopen(path, "w"); /* the defaults (linear 1e-4..0.02) load */
    assert_non_null(f);
    fputs("{\"beta_start\": 0.0001, \"beta_end\": 0.0001}", f);
    fclose(f);
    assert_int_equal(spo_ddim_load(&s, path), SPO_OK);
    unlink(path);
    assert_int_equal(spo_ddim_check_betas(0.00085, 0.012), SPO_OK);
    assert_int_equal(spo_ddim_check_betas(NAN, 0.012), SPO_EINVAL);
    spo_ddim_sd15(&s);
    assert_int_equal(spo_ddim_check(&s), SPO_OK);
    s.alphas_cumprod[500] = 0;
    assert_int_equal(spo_ddim_check(&s), SPO_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_step0),
        cmocka_unit_test(test_step1_final),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_bad_schedules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
