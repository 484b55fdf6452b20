/* test_mkmodel.c — a tiny model written by spo_mkmodel loads in every spo
 * loader and runs; the same seed gives the same files; errors. (That the
 * directory also loads in diffusers is checked by
 * tests/reference/check_mkmodel.py.) */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "nn/clip_text.h"
#include "core/err.h"
#include "nn/mkmodel.h"
#include "nn/spm.h"
#include "text/tokenizer.h"
#include "nn/unet.h"
#include "nn/vae.h"

static char root[256], dir[300];

static int setup(void **state)
{
    snprintf(root, sizeof root, "/tmp/spo-test-mkmodel-XXXXXX");
    if (!mkdtemp(root)) return -1;
    snprintf(dir, sizeof dir, "%s/tiny", root);
    spo_mkmodel_opts o = {.preset = "tiny", .seed = 5, .dtype = SPO_ST_F32, .spm = 1};
    return spo_mkmodel(dir, &o);
}

static int teardown(void **state)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd);
}

static int all_finite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

static void test_loads_and_runs(void **state)
{
    char p[400];
    spo_dev *d;
    assert_int_equal(spo_dev_open(&d, SPO_DEV_CPU, 1), SPO_OK);
    spo_tok *tok;
    snprintf(p, sizeof p, "%s/tokenizer", dir);
    assert_int_equal(spo_tok_load(&tok, p), SPO_OK);
    int32_t ids[77];
    int nreal;
    assert_int_equal(spo_tok_encode(tok, "a cat", ids, 77, &nreal), SPO_OK);
    assert_int_equal(ids[0], 512);
    assert_int_equal(ids[nreal - 1], 513);
    spo_tok_free(tok);

    spo_clip_text *te;
    snprintf(p, sizeof p, "%s/text_encoder", dir);
    assert_int_equal(spo_clip_text_load(&te, p, d), SPO_OK);
    float *ctx = malloc(77 * 32 * sizeof *ctx);
    assert_int_equal(spo_clip_text_forward(te, ctx, NULL, ids, 1, 77), SPO_OK);
    assert_true(all_finite(ctx, 77 * 32));
    spo_clip_text_free(te);

    spo_unet *u;
    snprintf(p, sizeof p, "%s/unet", dir);
    assert_int_equal(spo_unet_load(&u, p, d), SPO_OK);
    size_t n = 4 * 16 * 16;
    float *x = spo_dev_alloc(d, n), *out = spo_dev_alloc(d, n), *c = spo_dev_alloc(d, 77 * 32), *t = spo_dev_alloc(d, 1);
    float host_t = 500, *h = malloc(n * sizeof *h);
    for (size_t i = 0; i < n; i++) h[i] = sinf((float)i);
    spo_dev_upload(d, x, h, n);
    spo_dev_upload(d, c, ctx, 77 * 32);
    spo_dev_upload(d, t, &host_t, 1);
    assert_int_equal(spo_unet_forward(u, out, x, t, c, 1, 16, 16, 77, 0), SPO_OK);
    spo_dev_download(d, h, out, n);
    assert_true(all_finite(h, n));
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (double)h[i] * h[i];
    assert_true(ss / n > 1e-4); /* not a zero network */
    spo_unet_free(u);

    spo_vae *v;
    snprintf(p, sizeof p, "%s/vae", dir);
    assert_int_equal(spo_vae_load(&v, p, d), SPO_OK);
    float *img = malloc(3 * 32 * 32 * sizeof *img);
    for (size_t i = 0; i < n; i++) h[i] = cosf((float)i);
    assert_int_equal(spo_vae_decode(v, img, h, 1, 16, 16), SPO_OK);
    assert_true(all_finite(img, 3 * 32 * 32));
    spo_vae_free(v);

    spo_spm *m;
    char clip[400], w[400];
    snprintf(clip, sizeof clip, "%s/spm/clip", dir);
    snprintf(w, sizeof w, "%s/spm/spm.bin", dir);
    assert_int_equal(spo_spm_load(&m, clip, w, d), SPO_OK);
    float te_emb[16], im_emb[16], ts = 451, score;
    assert_int_equal(spo_spm_text(m, ids, 1, te_emb), SPO_OK);
    assert_int_equal(spo_spm_image(m, img, 1, 32, 32, &ts, im_emb), SPO_OK);
    assert_int_equal(spo_spm_score(m, im_emb, te_emb, 1, &score), SPO_OK);
    assert_true(isfinite(score) && fabsf(score) <= 100.001f);
    spo_spm_free(m);

    free(ctx), free(h), free(img);
    spo_dev_free(d, x), spo_dev_free(d, out), spo_dev_free(d, c), spo_dev_free(d, t);
    spo_dev_close(d);
}

static void test_same_seed_same_files(void **state)
{
    char d2[400], cmd[1000];
    snprintf(d2, sizeof d2, "%s/again", root);
    spo_mkmodel_opts o = {.preset = "tiny", .seed = 5, .dtype = SPO_ST_F32, .spm = 1};
    assert_int_equal(spo_mkmodel(d2, &o), SPO_OK);
    snprintf(cmd, sizeof cmd, "diff -r '%s' '%s' > /dev/null", dir, d2);
    assert_int_equal(system(cmd), 0);
    o.seed = 6;
    o.force = 1;
    assert_int_equal(spo_mkmodel(d2, &o), SPO_OK);
    snprintf(cmd, sizeof cmd, "cmp -s '%s/unet/diffusion_pytorch_model.safetensors' '%s/unet/diffusion_pytorch_model.safetensors'", dir, d2);
    assert_int_not_equal(system(cmd), 0);
}

static void test_errors(void **state)
{
    spo_mkmodel_opts o = {.preset = "tiny", .seed = 5, .dtype = SPO_ST_F32};
    assert_int_equal(spo_mkmodel(dir, &o), SPO_EINVAL); /* exists */
    assert_non_null(strstr(spo_errmsg(), "exists"));
    o.preset = "sd21"; /* not a preset */
    char p[400];
    snprintf(p, sizeof p, "%s/x", root);
    assert_int_equal(spo_mkmodel(p, &o), SPO_EINVAL);
    o.preset = "tiny";
    assert_int_equal(spo_mkmodel("/nonexistent-spo/x", &o), SPO_EINVAL);
    o.force = 1; /* a folder that is not a model is never replaced */
    assert_int_equal(spo_mkmodel(root, &o), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "not a model directory"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loads_and_runs),
        cmocka_unit_test(test_same_seed_same_files),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
