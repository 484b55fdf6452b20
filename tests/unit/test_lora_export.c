/* test_lora_export.c — LoRA export and import (lib/nn/lora_export.h)
 * against diffusers (tests/fixtures/export from
 * tests/reference/export_fixture.py): the official-format LoRA file read
 * into lora/1 order gives the UNet output diffusers' load_lora_weights gives
 * (1e-5, relative to the largest output); peft-named keys read the same;
 * written back as diffusers it holds the same tensors and bytes; kohya and
 * back gives the same LoRA; the merged unet/ folder gives the same output;
 * alpha != r is kept in both formats; missing, misshapen and foreign
 * modules are refused. Fixtures are found under $SPO_ROOT (default "."). */
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "ckpt/safetensors.h"
#include "core/err.h"
#include "nn/lora_export.h"
#include "nn/lora_load.h"
#include "nn_testutil.h"

static char root[2048], tmp[4096];
static spo_dev *dev;

#define CHECK_OK(x)                                                                                               \
    do {                                                                                                          \
        int rc_ = (x);                                                                                            \
        if (rc_) fail_msg("%s -> %d: %s", #x, rc_, spo_errmsg());                                                 \
    } while (0)

static void fix(char *buf, size_t n, const char *rel) { snprintf(buf, n, "%s/tests/fixtures/%s", root, rel); }

static spo_unet *load_unet(const char *dir)
{
    spo_unet *u;
    CHECK_OK(spo_unet_load(&u, dir, dev));
    return u;
}

static spo_unet *tiny(void)
{
    char p[4096];
    fix(p, sizeof p, "tiny-sd/unet");
    return load_unet(p);
}

/* max |out - want| / max |want| of u on the fixture's input vs /name */
static double unet_err(spo_unet *u, const char *name)
{
    char e[4096];
    fix(e, sizeof e, "export/expected.h5");
    size_t nx = 0, nt = 0, nc = 0, nw = 0;
    float *x = h5_floats(e, "/x", &nx), *t = h5_floats(e, "/t", &nt), *c = h5_floats(e, "/ctx", &nc),
          *want = h5_floats(e, name, &nw);
    assert_non_null(x), assert_non_null(t), assert_non_null(c), assert_non_null(want);
    assert_int_equal(nx, nw);
    float *out = malloc(nw * sizeof *out);
    assert_non_null(out);
    CHECK_OK(spo_unet_forward(u, out, x, t, c, 2, 16, 16, 77, 0));
    double d = 0, m = 0;
    for (size_t i = 0; i < nw; i++) {
        double a = fabs((double)out[i] - want[i]);
        d = a > d ? a : d;
        m = fabs(want[i]) > m ? fabs(want[i]) : m;
    }
    free(x), free(t), free(c), free(want), free(out);
    return d / m;
}

/* the fixture's diffusers file (or another one of export/) in lora/1 order */
static void import(spo_lora *l, spo_unet *u, const char *rel)
{
    char p[4096];
    spo_lora raw;
    fix(p, sizeof p, rel);
    CHECK_OK(spo_lora_load_any(&raw, p, u));
    CHECK_OK(spo_lora_adopt(l, &raw, u, p));
}

static void same_lora(const spo_lora *a, const spo_lora *b, double tol)
{
    assert_int_equal(a->n, b->n);
    assert_int_equal(a->rank, b->rank);
    assert_true(a->alpha == b->alpha);
    for (int i = 0; i < a->n; i++) {
        const spo_lora_module *x = &a->m[i], *y = &b->m[i];
        assert_string_equal(x->name, y->name);
        for (int k = 0; k < a->rank * x->in; k++) assert_true(fabs(x->down[k] - y->down[k]) <= tol);
        for (int k = 0; k < a->rank * x->out; k++) assert_true(fabs(x->up[k] - y->up[k]) <= tol);
    }
}

static void test_import_output(void **st)
{
    (void)st;
    spo_unet *u = tiny();
    spo_lora l, p;
    double e0 = unet_err(u, "/base");
    import(&l, u, "export/pytorch_lora_weights.safetensors");
    assert_int_equal(l.rank, 4);
    assert_true(l.alpha == 4.0f);
    assert_int_equal(l.n, 32);
    CHECK_OK(spo_lora_check(&l, u)); /* what training needs: every target, in order */
    import(&p, u, "export/peft_keys.safetensors");
    same_lora(&l, &p, 0);
    CHECK_OK(spo_lora_merge(&l, u, 1.0f));
    double e = unet_err(u, "/lora");
    printf("base output err %.3g, with the imported LoRA %.3g (bound 1e-5)\n", e0, e);
    assert_true(e0 < 1e-5);
    assert_true(e < 1e-5);
    spo_lora_free(&l), spo_lora_free(&p);
    spo_unet_free(u);
}

/* diffusers -> spo -> diffusers: same keys, shapes, values, metadata and bytes */
static void test_diffusers_round_trip(void **st)
{
    (void)st;
    spo_unet *u = tiny();
    spo_lora l;
    char orig[4096], out[4200];
    import(&l, u, "export/pytorch_lora_weights.safetensors");
    fix(orig, sizeof orig, "export/pytorch_lora_weights.safetensors");
    snprintf(out, sizeof out, "%s/d.safetensors", tmp);
    CHECK_OK(spo_lora_save_st(&l, SPO_LORA_DIFFUSERS, out, NULL));
    spo_st *a, *b;
    CHECK_OK(spo_st_open(&a, orig));
    CHECK_OK(spo_st_open(&b, out));
    assert_int_equal(spo_st_count(a), spo_st_count(b));
    assert_string_equal(spo_st_meta(b, "format"), "pt");
    for (int i = 0; i < spo_st_count(a); i++) {
        const spo_st_tensor *x = spo_st_get(a, i), *y = spo_st_find(b, x->name);
        assert_non_null(y);
        assert_int_equal(y->dtype, SPO_ST_F32);
        assert_int_equal(x->ndim, y->ndim);
        assert_int_equal(x->nbytes, y->nbytes);
        assert_memory_equal(x->shape, y->shape, sizeof x->shape[0] * (size_t)x->ndim);
        float *vx = malloc(x->numel * 4), *vy = malloc(y->numel * 4);
        CHECK_OK(spo_st_read_f32(a, x, vx));
        CHECK_OK(spo_st_read_f32(b, y, vy));
        assert_memory_equal(vx, vy, x->numel * 4);
        free(vx), free(vy);
    }
    spo_st_close(a), spo_st_close(b);
    FILE *fa = fopen(orig, "rb"), *fb = fopen(out, "rb");
    int same = 1, ca, cb;
    do {
        ca = fgetc(fa), cb = fgetc(fb);
        same = ca == cb;
    } while (same && ca != EOF);
    fclose(fa), fclose(fb);
    assert_true(same); /* the header layout too: safetensors sorts as we do */
    unlink(out);
    spo_lora_free(&l);
    spo_unet_free(u);
}

/* kohya -> back: same LoRA; alpha != r kept (kohya: .alpha; diffusers: in B) */
static void test_kohya_and_alpha(void **st)
{
    (void)st;
    spo_unet *u = tiny();
    spo_lora l, k, d;
    char out[4200];
    import(&l, u, "export/pytorch_lora_weights.safetensors");
    l.alpha = 8.0f; /* twice r: the delta doubles */
    snprintf(out, sizeof out, "%s/k.safetensors", tmp);
    CHECK_OK(spo_lora_save_st(&l, SPO_LORA_KOHYA, out, NULL));
    spo_st *s;
    CHECK_OK(spo_st_open(&s, out));
    const spo_st_tensor *t =
        spo_st_find(s, "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0.alpha");
    assert_non_null(t);
    assert_int_equal(t->ndim, 0);
    float a;
    CHECK_OK(spo_st_read_f32(s, t, &a));
    assert_true(a == 8.0f);
    assert_non_null(spo_st_find(s, "lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_v.lora_up.weight"));
    assert_int_equal(spo_st_count(s), 3 * 32);
    spo_st_close(s);
    CHECK_OK(spo_lora_load_any(&k, out, u));
    assert_int_equal(strncmp(k.lora_id, "kohya-", 6), 0);
    same_lora(&l, &k, 0);
    snprintf(out, sizeof out, "%s/d8.safetensors", tmp);
    CHECK_OK(spo_lora_save_st(&l, SPO_LORA_DIFFUSERS, out, NULL));
    spo_lora raw;
    CHECK_OK(spo_lora_load_any(&raw, out, u)); /* alpha = r = 4, B doubled */
    CHECK_OK(spo_lora_adopt(&d, &raw, u, out));
    assert_true(d.alpha == 4.0f);
    for (int i = 0; i < l.n; i++)
        for (int j = 0; j < l.m[i].out * l.rank; j++) assert_true(d.m[i].up[j] == 2.0f * l.m[i].up[j]);
    unlink(out);
    snprintf(out, sizeof out, "%s/k.safetensors", tmp);
    unlink(out);
    spo_lora_free(&l), spo_lora_free(&k), spo_lora_free(&d);
    spo_unet_free(u);
}

/* merged unet/ folder (f32) gives the LoRA output; f16 within 2e-2; -f rules */
static void test_merged_dir(void **st)
{
    (void)st;
    spo_unet *u = tiny();
    spo_lora l;
    char cfg[4096], w[4096], dir[4200];
    fix(cfg, sizeof cfg, "tiny-sd/unet/config.json");
    fix(w, sizeof w, "tiny-sd/unet/diffusion_pytorch_model.safetensors");
    import(&l, u, "export/pytorch_lora_weights.safetensors");
    CHECK_OK(spo_lora_merge(&l, u, 1.0f));
    snprintf(dir, sizeof dir, "%s/unet", tmp);
    CHECK_OK(spo_unet_save_dir(u, cfg, w, dir, SPO_ST_F32, 0));
    assert_int_equal(spo_unet_save_dir(u, cfg, w, dir, SPO_ST_F32, 0), SPO_EINVAL); /* exists */
    CHECK_OK(spo_unet_save_dir(u, cfg, w, dir, SPO_ST_F32, 1));
    spo_unet *m = load_unet(dir);
    double e = unet_err(m, "/lora");
    printf("merged f32 folder: err %.3g (bound 1e-5)\n", e);
    assert_true(e < 1e-5);
    spo_unet_free(m);
    CHECK_OK(spo_unet_save_dir(u, cfg, w, dir, SPO_ST_F16, 1));
    m = load_unet(dir);
    e = unet_err(m, "/lora");
    printf("merged f16 folder: err %.3g (bound 2e-2)\n", e);
    assert_true(e < 2e-2);
    spo_unet_free(m);
    char extra[4300];
    snprintf(extra, sizeof extra, "%s/README", dir);
    FILE *f = fopen(extra, "w");
    fclose(f);
    assert_int_equal(spo_unet_save_dir(u, cfg, w, dir, SPO_ST_F32, 1), SPO_EINVAL); /* not ours */
    unlink(extra);
    snprintf(extra, sizeof extra, "%s/config.json", dir);
    unlink(extra);
    snprintf(extra, sizeof extra, "%s/diffusion_pytorch_model.safetensors", dir);
    unlink(extra);
    rmdir(dir);
    spo_lora_free(&l);
    spo_unet_free(u);
}

static void expect_refused(spo_unet *u, const char *rel, const char *what)
{
    char p[4096];
    spo_lora raw, l;
    fix(p, sizeof p, rel);
    int rc = spo_lora_load_any(&raw, p, u);
    if (!rc) {
        rc = spo_lora_adopt(&l, &raw, u, p);
        spo_lora_free(&raw);
    }
    printf("%s: %s\n", rel, spo_errmsg());
    assert_int_equal(rc, SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), p));
    assert_non_null(strstr(spo_errmsg(), what));
}

static void test_bad(void **st)
{
    (void)st;
    spo_unet *u = tiny();
    expect_refused(u, "export/bad_missing_up.safetensors", "missing");
    expect_refused(u, "export/bad_missing_module.safetensors", "no LoRA for");
    expect_refused(u, "export/bad_shape.safetensors", "the layer");
    expect_refused(u, "export/not_lora.safetensors", "conv_in.bias");
    expect_refused(u, "generate/lora_te.safetensors", "text-encoder");
    spo_unet_free(u);
}

static int setup(void **st)
{
    (void)st;
    const char *r = getenv("SPO_ROOT");
    snprintf(root, sizeof root, "%s", r ? r : ".");
    snprintf(tmp, sizeof tmp, "/tmp/test_lora_export.XXXXXX");
    if (!mkdtemp(tmp)) return -1;
    return spo_dev_open(&dev, SPO_DEV_CPU, 2) ? -1 : 0;
}

static int teardown(void **st)
{
    (void)st;
    spo_dev_close(dev);
    rmdir(tmp);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_import_output), cmocka_unit_test(test_diffusers_round_trip),
        cmocka_unit_test(test_kohya_and_alpha), cmocka_unit_test(test_merged_dir),
        cmocka_unit_test(test_bad),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
