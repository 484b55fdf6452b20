/* test_generate.c — lib/generate against diffusers 0.26.1's
 * StableDiffusionPipeline + DDIMScheduler on the tiny model
 * (tests/fixtures/generate from tests/reference/generate_fixture.py: 10
 * steps, guidance 7.5, eta 0, fixed x_T): the float images (output_type
 * "np", relative L2 <= 1e-4) and the 8-bit pixels (a few off by one) of the
 * base model, of 2 images per prompt with a negative prompt, and with a
 * LoRA read from a lora/1 file and from a diffusers safetensors file. Also:
 * the noise keys, batch independence with eta > 0, the unguided path, and
 * refused LoRA files. */
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/err.h"
#include "spo/generate.h"
#include "io/image_io.h"
#include "spo/loop_state.h"
#include "nn/lora_load.h"
#include "nn_testutil.h"
#include "ckpt/safetensors.h"
#include "core/philox.h"

static char root[1024];
static spo_dev *dev;

static void fixture(char *buf, size_t n, const char *rel) { snprintf(buf, n, "%s/tests/fixtures/%s", root, rel); }

static const char *prompts[2] = {"a photo of a cat", "A red car on a snowy road, at night"};
static const int64_t ids[2] = {0, 1};

/* the model in dir (with the LoRA of fixture lora, or none) */
static spo_gen *load_from(const char *dir, const char *lora)
{
    char l[1200];
    spo_gen *g;
    int rc = spo_gen_load(&g, dir, dev);
    if (rc) fprintf(stderr, "%s\n", spo_errmsg());
    assert_int_equal(rc, SPO_OK);
    if (lora) {
        fixture(l, sizeof l, lora);
        rc = spo_gen_lora(g, l);
        if (rc) fprintf(stderr, "%s\n", spo_errmsg());
        assert_int_equal(rc, SPO_OK);
    }
    return g;
}

static spo_gen *load(const char *lora)
{
    char m[1200];
    fixture(m, sizeof m, "tiny-sd");
    return load_from(m, lora);
}

/* The float images img of n generated images (H x W) against case cas of
 * fixture ef: relative L2 <= 1e-4, the 8-bit pixels at most 8 values off by one. */
static void compare(const float *img, int n, int H, int W, const char *ef, const char *cas, const char *what)
{
    char name[64];
    size_t ni = 0, np = 0;
    snprintf(name, sizeof name, "/%s/images", cas);
    float *want = h5_floats(ef, name, &ni);
    snprintf(name, sizeof name, "/%s/pixels", cas);
    uint8_t *wpx = h5_read(ef, name, &np, H5T_NATIVE_UINT8, 1);
    assert_non_null(want), assert_non_null(wpx);
    assert_int_equal(ni, (size_t)n * H * W * 3);
    float *got = malloc(ni * sizeof *got);
    uint8_t *px = malloc(np);
    size_t pix = (size_t)3 * H * W, off = 0, worst = 0;
    for (int i = 0; i < n; i++) {
        spo_gen_to_unit(img + i * pix, H, W, got + i * pix);
        spo_img_to_rgb8(img + i * pix, H, W, px + i * pix);
    }
    double e = rel_l2(got, want, ni);
    for (size_t i = 0; i < np; i++) {
        int d = abs((int)px[i] - (int)wpx[i]);
        off += d != 0;
        if ((size_t)d > worst) worst = (size_t)d;
    }
    printf("case %-14s %-40s rel L2 %.3g, pixels off %zu of %zu (max %zu)\n", cas, what, e, off, np, worst);
    assert_true(e <= 1e-4);
    assert_true(worst <= 1);
    assert_true(off <= 8);
    free(want), free(wpx), free(got), free(px);
}

/* Run a case of expected.h5 and compare. */
static void check_case(const char *lora, const char *xt, const char *cas, int per_prompt, const char *neg)
{
    spo_gen *g = load(lora);
    assert_int_equal(spo_gen_prompts(g, prompts, ids, 2, neg), SPO_OK);
    char xf[1200], ef[1200];
    fixture(xf, sizeof xf, xt);
    fixture(ef, sizeof ef, "generate/expected.h5");
    size_t nx = 0;
    float *x = h5_floats(xf, "/latents", &nx);
    assert_non_null(x);
    int n = 2 * per_prompt, H = 32, W = 32;
    assert_int_equal(nx, (size_t)n * 4 * 16 * 16);
    spo_gen_opts o;
    spo_gen_defaults(&o);
    o.steps = 10, o.per_prompt = per_prompt, o.batch = 3;
    float *img = malloc((size_t)n * 3 * H * W * sizeof *img);
    assert_int_equal(spo_gen_run(g, &o, 0, n, x, img), SPO_OK);
    compare(img, n, H, W, ef, cas, lora ? lora : "-");
    free(x), free(img);
    spo_gen_free(g);
}

/* SDXL: the tiny SDXL model (tests/cmd/helpers.bash tiny_sdxl, linked in a
 * temporary folder) against generate/sdxl.h5 (StableDiffusionXLPipeline +
 * DDIM, 20 steps, guidance g, 16x16 images): the zero negative, a negative
 * prompt, no guidance, and a LoRA spo exported as kohya. */
static void check_xl(const char *cas, const char *neg, float guidance, const char *lora)
{
    char dir[1200], src[1200], dst[1400], ef[1200];
    snprintf(dir, sizeof dir, "%s/spo-test-sdxl-XXXXXX", P_tmpdir);
    assert_non_null(mkdtemp(dir));
    static const char *const parts[][2] = {{"tiny-sdxl/unet", "unet"}, {"tiny-sdxl/text_encoder", "text_encoder"},
        {"tiny-sdxl/text_encoder_2", "text_encoder_2"}, {"tiny-sdxl/tokenizer", "tokenizer"},
        {"tiny-sdxl/tokenizer_2", "tokenizer_2"}, {"tiny-sdxl/model_index.json", "model_index.json"},
        {"tiny-sdxl/vae", "vae"}, {"tiny-sd/scheduler", "scheduler"}};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        fixture(src, sizeof src, parts[i][0]);
        char *abs = realpath(src, NULL); /* root may be relative */
        assert_non_null(abs);
        snprintf(dst, sizeof dst, "%s/%s", dir, parts[i][1]);
        assert_int_equal(symlink(abs, dst), 0);
        free(abs);
    }
    spo_gen *g = load_from(dir, lora);
    assert_int_equal(spo_gen_prompts(g, prompts, ids, 2, neg), SPO_OK);
    fixture(ef, sizeof ef, "generate/sdxl.h5");
    size_t nx = 0;
    float *x = h5_floats(ef, "/latents", &nx);
    assert_non_null(x);
    assert_int_equal(nx, (size_t)2 * 4 * 8 * 8);
    spo_gen_opts o;
    spo_gen_defaults(&o);
    o.steps = 20, o.guidance = guidance, o.batch = 2;
    float *img = malloc((size_t)2 * 3 * 16 * 16 * sizeof *img);
    assert_int_equal(spo_gen_run(g, &o, 0, 2, x, img), SPO_OK);
    compare(img, 2, 16, 16, ef, cas, "SDXL");
    free(x), free(img);
    spo_gen_free(g);
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        snprintf(dst, sizeof dst, "%s/%s", dir, parts[i][1]);
        unlink(dst);
    }
    rmdir(dir);
}

static void test_sdxl(void **state)
{
    (void)state;
    check_xl("base", NULL, 5, NULL);
    check_xl("neg", "blurry, low quality", 5, NULL);
    check_xl("g1", NULL, 1, NULL);
    check_xl("lora_kohya", NULL, 5, "export/sdxl_kohya.safetensors");
}

static void test_base(void **state) { check_case(NULL, "generate/x_T.h5", "base", 1, NULL); }
static void test_negative_two_per_prompt(void **state)
{
    check_case(NULL, "generate/x_T_n2.h5", "neg", 2, "blurry, low quality");
}
static void test_lora_h5(void **state) { check_case("generate/lora.h5", "generate/x_T.h5", "lora", 1, NULL); }
static void test_lora_diffusers(void **state)
{
    check_case("generate/pytorch_lora_weights.safetensors", "generate/x_T.h5", "lora", 1, NULL);
}

/* x_T keys: image j of prompt id p is stream (seed, p, SPO_STEP_INIT_NOISE, j);
 * image 0 is spo-init's x_T. With eta > 0 a batch of 3 equals 3 batches of 1. */
static void test_noise_and_batches(void **state)
{
    spo_gen *g = load(NULL);
    const int64_t pid[2] = {7, 1234567};
    assert_int_equal(spo_gen_prompts(g, prompts, pid, 2, NULL), SPO_OK);
    spo_gen_opts o;
    spo_gen_defaults(&o);
    o.steps = 3, o.eta = 1, o.seed = 99, o.per_prompt = 2, o.batch = 4;
    size_t lat = 4 * 16 * 16, pix = 3 * 32 * 32;
    float *x = malloc(4 * lat * sizeof *x), *ref = malloc(lat * sizeof *ref);
    assert_int_equal(spo_gen_init_latents(g, &o, 0, 4, x), SPO_OK);
    spo_init_noise(ref, lat, 99, 7);
    assert_memory_equal(x, ref, lat * sizeof *x);
    spo_normal_fill(ref, lat, 99, 1234567, SPO_STEP_INIT_NOISE, 1);
    assert_memory_equal(x + 3 * lat, ref, lat * sizeof *x);
    float *img = malloc(4 * pix * sizeof *img), *one = malloc(pix * sizeof *one);
    /* images 1..3 together, then each alone */
    assert_int_equal(spo_gen_run(g, &o, 1, 3, x + lat, img), SPO_OK);
    for (int k = 1; k < 4; k++) {
        float *xk = malloc(lat * sizeof *xk);
        assert_int_equal(spo_gen_init_latents(g, &o, k, 1, xk), SPO_OK);
        o.batch = 1;
        assert_int_equal(spo_gen_run(g, &o, k, 1, xk, one), SPO_OK);
        o.batch = 4;
        double e = rel_l2(one, img + (k - 1) * pix, pix);
        printf("image %d alone vs in a batch of 3: rel L2 %.3g\n", k, e);
        assert_true(e < 1e-5); /* BLAS sums in another order for another batch */
        free(xk);
    }
    /* eta changes the result (the variance noise is used) */
    float *x0 = malloc(lat * sizeof *x0);
    o.eta = 0;
    assert_int_equal(spo_gen_init_latents(g, &o, 1, 1, x0), SPO_OK);
    assert_int_equal(spo_gen_run(g, &o, 1, 1, x0, one), SPO_OK);
    assert_true(rel_l2(one, img, pix) > 1e-3);
    /* out of range */
    assert_int_equal(spo_gen_run(g, &o, 3, 2, x, img), SPO_EINVAL);
    o.h = 15;
    assert_int_equal(spo_gen_init_latents(g, &o, 0, 1, x), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "multiples of 2"));
    free(x), free(ref), free(img), free(one), free(x0);
    spo_gen_free(g);
}

/* guidance <= 1 runs the conditional branch only, as the pipeline does;
 * guidance just above 1 (guided) gives nearly the same. */
static void test_unguided(void **state)
{
    spo_gen *g = load(NULL);
    assert_int_equal(spo_gen_prompts(g, prompts, ids, 2, NULL), SPO_OK);
    spo_gen_opts o;
    spo_gen_defaults(&o);
    o.steps = 4, o.guidance = 1.0f;
    size_t lat = 4 * 16 * 16, pix = 3 * 32 * 32;
    float x[2 * 4 * 16 * 16], a[2 * 3 * 32 * 32], b[2 * 3 * 32 * 32];
    assert_int_equal(spo_gen_init_latents(g, &o, 0, 2, x), SPO_OK);
    assert_int_equal(spo_gen_run(g, &o, 0, 2, x, a), SPO_OK);
    o.guidance = 1.0000001f;
    assert_int_equal(spo_gen_init_latents(g, &o, 0, 2, x), SPO_OK);
    assert_int_equal(spo_gen_run(g, &o, 0, 2, x, b), SPO_OK);
    double e = rel_l2(a, b, 2 * pix);
    assert_true(e < 1e-4);
    (void)lat;
    spo_gen_free(g);
}

static void expect_bad_lora(const char *rel, const char *msg)
{
    spo_gen *g = load(NULL);
    char l[1200];
    fixture(l, sizeof l, rel);
    assert_int_equal(spo_gen_lora(g, l), SPO_EINVAL);
    if (!strstr(spo_errmsg(), msg)) fprintf(stderr, "message: %s\n", spo_errmsg());
    assert_non_null(strstr(spo_errmsg(), msg));
    assert_null(spo_gen_lora_info(g));
    spo_gen_free(g);
}

static void test_bad_lora(void **state)
{
    expect_bad_lora("generate/lora_badkey.safetensors", "unet.conv_in.lora.down.weight: the UNet has no linear layer");
    expect_bad_lora("generate/lora_te.safetensors", "text_encoder.text_model.encoder.layers.0.self_attn.q_proj");
    expect_bad_lora("generate/lora_shape.h5", "attn1.to_q' is 32x33, the UNet's layer is 32x32");
    expect_bad_lora("generate/x_T.h5", "x_T.h5");
    expect_bad_lora("tiny-sd/unet/config.json", "config.json");
    expect_bad_lora("generate/no-such-file", "no-such-file");
    /* the diffusers file: 32 modules, rank 4, alpha = rank */
    spo_gen *g = load("generate/pytorch_lora_weights.safetensors");
    const spo_lora *l = spo_gen_lora_info(g);
    assert_non_null(l);
    assert_int_equal(l->n, 32);
    assert_int_equal(l->rank, 4);
    assert_true(l->alpha == 4.0f);
    assert_memory_equal(l->lora_id, "st-", 3);
    assert_int_equal(spo_gen_lora(g, "x"), SPO_EINVAL); /* one LoRA per model */
    /* peft's unconverted names (lora_A / lora_B), stored as f16, read the same to rounding */
    char src[1200], dst[1200];
    fixture(src, sizeof src, "generate/pytorch_lora_weights.safetensors");
    snprintf(dst, sizeof dst, "%s/spo_test_peft_%d.safetensors", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             (int)getpid());
    spo_st *st;
    spo_st_writer *w;
    assert_int_equal(spo_st_open(&st, src), SPO_OK);
    assert_int_equal(spo_st_writer_new(&w), SPO_OK);
    int n = spo_st_count(st);
    float **data = calloc((size_t)n, sizeof *data);
    for (int i = 0; i < n; i++) {
        const spo_st_tensor *t = spo_st_get(st, i);
        char name[600], *p;
        snprintf(name, sizeof name, "%s", t->name);
        if ((p = strstr(name, ".lora.down.weight"))) strcpy(p, ".lora_A.weight");
        else if ((p = strstr(name, ".lora.up.weight"))) strcpy(p, ".lora_B.weight");
        data[i] = malloc(t->numel * sizeof **data);
        assert_int_equal(spo_st_read_f32(st, t, data[i]), SPO_OK);
        assert_int_equal(spo_st_writer_add(w, name, SPO_ST_F16, t->ndim, t->shape, data[i]), SPO_OK);
    }
    assert_int_equal(spo_st_writer_write(w, dst), SPO_OK);
    spo_st_writer_free(w);
    spo_st_close(st);
    for (int i = 0; i < n; i++) free(data[i]);
    free(data);
    spo_gen *g2 = load(NULL);
    int rc = spo_gen_lora(g2, dst);
    if (rc) fprintf(stderr, "%s\n", spo_errmsg());
    assert_int_equal(rc, SPO_OK);
    const spo_lora *l2 = spo_gen_lora_info(g2);
    assert_int_equal(l2->n, l->n);
    for (int i = 0; i < l->n; i++) {
        assert_string_equal(l2->m[i].name, l->m[i].name);
        assert_true(rel_l2(l2->m[i].down, l->m[i].down, (size_t)4 * l->m[i].in) < 1e-3);
        assert_true(rel_l2(l2->m[i].up, l->m[i].up, (size_t)4 * l->m[i].out) < 1e-3);
    }
    spo_gen_free(g2);
    spo_gen_free(g);
    unlink(dst);
}

int main(void)
{
    const char *r = getenv("SPO_ROOT");
    snprintf(root, sizeof root, "%s", r ? r : ".");
    if (spo_dev_open(&dev, SPO_DEV_CPU, 0)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base),
        cmocka_unit_test(test_sdxl),
        cmocka_unit_test(test_negative_two_per_prompt),
        cmocka_unit_test(test_lora_h5),
        cmocka_unit_test(test_lora_diffusers),
        cmocka_unit_test(test_noise_and_batches),
        cmocka_unit_test(test_unguided),
        cmocka_unit_test(test_bad_lora),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    spo_dev_close(dev);
    return rc;
}
