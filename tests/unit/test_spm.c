/* test_spm.c — the step-aware preference model against the PyTorch
 * reference (tests/reference/spm_reference.py: tests/fixtures/tiny-spm/,
 * tests/fixtures/spm_parity.h5): preprocessing, image embeddings at every
 * timestep and with mixed timesteps in one batch, text embeddings, scores;
 * the timestep matters; batches larger than a chunk; the adaLN ops on hand
 * values; load errors naming the tensor. */
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "nn/image.h"
#include "nn_testutil.h"
#include "ops/ops_extra.h"
#include "nn/spm.h"

static char root[1024], h5[1200], clipdir[1200], spmbin[1200];

static float *need(const char *name, size_t want)
{
    size_t n = 0;
    float *p = h5_floats(h5, name, &n);
    if (!p) fprintf(stderr, "cannot read %s from %s\n", name, h5);
    assert_non_null(p);
    assert_int_equal(n, want);
    return p;
}

static spo_spm *load(spo_dev *dev)
{
    spo_spm *m = NULL;
    int rc = spo_spm_load(&m, clipdir, spmbin, dev);
    if (rc) fprintf(stderr, "load: %s\n", spo_errmsg());
    assert_int_equal(rc, SPO_OK);
    return m;
}

static void test_preprocess(void **state)
{
    float *img = need("/spm/images", 3 * 3 * 32 * 32), *want = need("/spm/pixel_values", 3 * 3 * 28 * 28);
    float *wimg = need("/spm/wide/image", 3 * 32 * 48), *wwant = need("/spm/wide/pixel_values", 3 * 28 * 28);
    float out[3 * 3 * 28 * 28];
    assert_int_equal(spo_clip_preprocess(img, 3, 32, 32, 28, out), SPO_OK);
    double e = rel_l2(out, want, 3 * 3 * 28 * 28);
    assert_int_equal(spo_clip_preprocess(wimg, 1, 32, 48, 28, out), SPO_OK);
    double ew = rel_l2(out, wwant, 3 * 28 * 28);
    printf("preprocess rel L2: square %.3g, 32x48 (center crop) %.3g\n", e, ew);
    assert_true(e <= 1e-6);
    assert_true(ew <= 1e-6);
    assert_int_equal(spo_clip_preprocess(img, 1, 32, 32, 0, out), SPO_EINVAL);
    free(img), free(want), free(wimg), free(wwant);
}

static void test_parity(void **state)
{
    const int n = 3, T = 3, P = 16;
    float *img = need("/spm/images", 3 * 3 * 32 * 32), *ts = need("/spm/timesteps", T);
    float *want_img = need("/spm/image_embeds", T * n * P), *want_mixed = need("/spm/image_embeds_mixed", n * P);
    float *want_txt = need("/spm/text_embeds", n * P), *want_sc = need("/spm/scores", T * n * n);
    float *logit = need("/spm/logit_scale", 1);
    float *wimg = need("/spm/wide/image", 3 * 32 * 48), *wts = need("/spm/wide/timesteps", 1);
    float *wwant = need("/spm/wide/image_embeds", P);
    size_t nid = 0;
    int32_t *ids = h5_ints(h5, "/spm/text_ids", &nid);
    assert_non_null(ids);
    assert_int_equal(nid, (size_t)n * 77);

    spo_dev *dev;
    assert_int_equal(spo_dev_open(&dev, SPO_DEV_CPU, 0), SPO_OK);
    spo_spm *m = load(dev);
    const spo_spm_config *c = spo_spm_cfg(m);
    assert_int_equal(c->proj, P);
    assert_int_equal(c->image_size, 28);
    assert_int_equal(c->width, 32);
    assert_int_equal(c->text.max_pos, 77);
    assert_true(c->act == SPO_ACT_GELU && c->text.act == SPO_ACT_GELU);
    assert_float_equal(spo_spm_logit_scale(m), logit[0], 0);

    float txt[3 * 16], emb[3 * 3 * 16], mixed[3 * 16], sc[3 * 3 * 3], tt[3], w1[16];
    assert_int_equal(spo_spm_text(m, ids, n, txt), SPO_OK);
    double et = rel_l2(txt, want_txt, (size_t)n * P), worst = 0;
    for (int k = 0; k < T; k++) {
        for (int i = 0; i < n; i++) tt[i] = ts[k];
        assert_int_equal(spo_spm_image(m, img, n, 32, 32, tt, emb + k * n * P), SPO_OK);
        double e = rel_l2(emb + k * n * P, want_img + k * n * P, (size_t)n * P);
        printf("t=%g: image_embeds rel L2 %.3g\n", ts[k], e);
        assert_true(e <= 1e-4);
    }
    assert_int_equal(spo_spm_image(m, img, n, 32, 32, ts, mixed), SPO_OK);
    double em = rel_l2(mixed, want_mixed, (size_t)n * P);
    assert_int_equal(spo_spm_image(m, wimg, 1, 32, 48, wts, w1), SPO_OK);
    double ew = rel_l2(w1, wwant, P);
    /* scores[k][i][j]: image i at timestep k with text j */
    for (int k = 0; k < T; k++)
        for (int i = 0; i < n; i++) {
            float rep[3 * 16];
            for (int j = 0; j < n; j++) memcpy(rep + j * P, emb + (k * n + i) * P, P * sizeof(float));
            assert_int_equal(spo_spm_score(m, rep, txt, n, sc + (k * n + i) * n), SPO_OK);
        }
    double es = rel_l2(sc, want_sc, (size_t)T * n * n);
    for (int i = 0; i < T * n * n; i++) worst = fmax(worst, fabs(sc[i] - want_sc[i]));
    printf("text_embeds %.3g, mixed timesteps %.3g, 32x48 image %.3g, scores %.3g (max abs %.3g)\n", et, em, ew, es,
           worst);
    assert_true(et <= 1e-4);
    assert_true(em <= 1e-4);
    assert_true(ew <= 1e-4);
    assert_true(es <= 1e-4);

    /* ids outside the vocabulary, bad timesteps */
    int32_t bad[77];
    memcpy(bad, ids, sizeof bad);
    bad[3] = 999;
    assert_int_equal(spo_spm_text(m, bad, 1, txt), SPO_EINVAL);
    tt[0] = tt[1] = tt[2] = NAN;
    assert_int_equal(spo_spm_image(m, img, 1, 32, 32, tt, emb), SPO_EINVAL);

    spo_spm_free(m);
    spo_dev_close(dev);
    free(img), free(ts), free(want_img), free(want_mixed), free(want_txt), free(want_sc), free(logit);
    free(wimg), free(wts), free(wwant), free(ids);
}

/* the embedding depends on the timestep; more images than a chunk give the
 * same as one at a time */
static void test_timestep_and_chunks(void **state)
{
    enum { N = 11, P = 16 };
    float *img = need("/spm/images", 3 * 3 * 32 * 32);
    float *big = malloc(sizeof(float) * N * 3 * 32 * 32), t[N], emb[N * P], one[P];
    for (int i = 0; i < N; i++) {
        memcpy(big + (size_t)i * 3 * 32 * 32, img + (size_t)(i % 3) * 3 * 32 * 32, sizeof(float) * 3 * 32 * 32);
        t[i] = (float)(i * 97 % 1000);
    }
    spo_dev *dev;
    assert_int_equal(spo_dev_open(&dev, SPO_DEV_CPU, 1), SPO_OK);
    spo_spm *m = load(dev);
    assert_int_equal(spo_spm_image(m, big, N, 32, 32, t, emb), SPO_OK);
    for (int i = 0; i < N; i++) {
        assert_int_equal(spo_spm_image(m, big + (size_t)i * 3 * 32 * 32, 1, 32, 32, t + i, one), SPO_OK);
        assert_true(rel_l2(emb + i * P, one, P) <= 1e-6);
    }
    /* image 0 at t = 0 vs the same image (i = 3) at t = 291 */
    double d = rel_l2(emb + 3 * P, emb, P);
    printf("same image, t=0 vs t=291: relative difference %.3g\n", d);
    assert_true(d > 1e-2);
    float t2[2] = {500.0f, 500.5f}, e2[2 * P];
    memcpy(big + 3 * 32 * 32, big, sizeof(float) * 3 * 32 * 32);
    assert_int_equal(spo_spm_image(m, big, 2, 32, 32, t2, e2), SPO_OK);
    assert_true(rel_l2(e2 + P, e2, P) > 0); /* fractional timesteps count */
    spo_spm_free(m);
    spo_dev_close(dev);
    free(big);
    free(img);
}

/* modulate and gated add on hand values, rows of stride ld */
static void test_adaln_ops(void **state)
{
    spo_dev *dev;
    assert_int_equal(spo_dev_open(&dev, SPO_DEV_CPU, 1), SPO_OK);
    /* b=2, t=2, c=2; mod rows [shift(2) scale(2) gate(2)], ld 6:
     * sample 0: shift (1,0), scale (0.5,-1), gate (2,3);
     * sample 1: shift (0,10), scale (1,1), gate (-1,0.5) */
    float x[8] = {1, 2, 3, 4, -1, -2, 0.5f, 0}, y[8], mod[12] = {1, 0, 0.5f, -1, 2, 3, 0, 10, 1, 1, -1, 0.5f};
    float want[8] = {2.5f, 0, 5.5f, 0, -2, 6, 1, 10};
    assert_int_equal(spo_modulate_fwd(dev, y, x, mod, mod + 2, 6, 2, 2, 2), SPO_OK);
    for (int i = 0; i < 8; i++) assert_float_equal(y[i], want[i], 1e-6);
    float acc[8] = {0, 0, 0, 0, 1, 1, 1, 1}, gwant[8] = {2, 6, 6, 12, 2, 0, 0.5f, 1};
    assert_int_equal(spo_gate_add_fwd(dev, acc, x, mod + 4, 6, 2, 2, 2), SPO_OK);
    for (int i = 0; i < 8; i++) assert_float_equal(acc[i], gwant[i], 1e-6);
    /* in place */
    assert_int_equal(spo_modulate_fwd(dev, x, x, mod, mod + 2, 6, 2, 2, 2), SPO_OK);
    assert_memory_equal(x, want, sizeof want);
    assert_int_equal(spo_modulate_fwd(dev, x, x, mod, mod + 2, 1, 2, 2, 2), SPO_EINVAL); /* ld < c */
    spo_dev_close(dev);
}

/* ---- load errors -------------------------------------------------------- */

static char tmpdir[256];

/* the tensor names and shapes of the tiny SPM (spm_reference.py), "model." prefixed */
static void tiny_spm(tlist *l)
{
    const char *sq[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj"};
    const char *tw[2] = {"text_model.encoder", "vision_model.encoder"};
    l->n = 0;
    tl_add(l, 2, 514, 32, 0, 0, "model.text_model.embeddings.token_embedding.weight");
    tl_add(l, 2, 77, 32, 0, 0, "model.text_model.embeddings.position_embedding.weight");
    tl_add(l, 2, 1, 77, 0, 0, "model.text_model.embeddings.position_ids"); /* ignored */
    tl_add(l, 2, 1, 5, 0, 0, "model.vision_model.embeddings.position_ids"); /* ignored */
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 2; i++) {
            tl_add(l, 1, 32, 0, 0, 0, "model.%s.layers.%d.layer_norm1.weight", tw[k], i);
            tl_add(l, 1, 32, 0, 0, 0, "model.%s.layers.%d.layer_norm1.bias", tw[k], i);
            for (int j = 0; j < 4; j++) {
                tl_add(l, 2, 32, 32, 0, 0, "model.%s.layers.%d.%s.weight", tw[k], i, sq[j]);
                tl_add(l, 1, 32, 0, 0, 0, "model.%s.layers.%d.%s.bias", tw[k], i, sq[j]);
            }
            tl_add(l, 1, 32, 0, 0, 0, "model.%s.layers.%d.layer_norm2.weight", tw[k], i);
            tl_add(l, 1, 32, 0, 0, 0, "model.%s.layers.%d.layer_norm2.bias", tw[k], i);
            tl_add(l, 2, 64, 32, 0, 0, "model.%s.layers.%d.mlp.fc1.weight", tw[k], i);
            tl_add(l, 1, 64, 0, 0, 0, "model.%s.layers.%d.mlp.fc1.bias", tw[k], i);
            tl_add(l, 2, 32, 64, 0, 0, "model.%s.layers.%d.mlp.fc2.weight", tw[k], i);
            tl_add(l, 1, 32, 0, 0, 0, "model.%s.layers.%d.mlp.fc2.bias", tw[k], i);
            if (k) {
                tl_add(l, 2, 192, 32, 0, 0, "model.%s.layers.%d.adaLN_modulation.1.weight", tw[k], i);
                tl_add(l, 1, 192, 0, 0, 0, "model.%s.layers.%d.adaLN_modulation.1.bias", tw[k], i);
            }
        }
    tl_add(l, 1, 32, 0, 0, 0, "model.text_model.final_layer_norm.weight");
    tl_add(l, 1, 32, 0, 0, 0, "model.text_model.final_layer_norm.bias");
    tl_add(l, 1, 32, 0, 0, 0, "model.vision_model.embeddings.class_embedding");
    tl_add(l, 4, 32, 3, 14, 14, "model.vision_model.embeddings.patch_embedding.weight");
    tl_add(l, 2, 5, 32, 0, 0, "model.vision_model.embeddings.position_embedding.weight");
    tl_add(l, 1, 32, 0, 0, 0, "model.vision_model.pre_layrnorm.weight");
    tl_add(l, 1, 32, 0, 0, 0, "model.vision_model.pre_layrnorm.bias");
    tl_add(l, 1, 32, 0, 0, 0, "model.vision_model.post_layernorm.weight");
    tl_add(l, 1, 32, 0, 0, 0, "model.vision_model.post_layernorm.bias");
    tl_add(l, 2, 64, 32, 0, 0, "model.vision_model.adaLN_modulation.1.weight");
    tl_add(l, 1, 64, 0, 0, 0, "model.vision_model.adaLN_modulation.1.bias");
    tl_add(l, 2, 16, 32, 0, 0, "model.visual_projection.weight");
    tl_add(l, 2, 16, 32, 0, 0, "model.text_projection.weight");
    tl_add(l, 0, 0, 0, 0, 0, "model.logit_scale");
    tl_add(l, 2, 32, 256, 0, 0, "model.t_embedder.mlp.0.weight");
    tl_add(l, 1, 32, 0, 0, 0, "model.t_embedder.mlp.0.bias");
    tl_add(l, 2, 32, 32, 0, 0, "model.t_embedder.mlp.2.weight");
    tl_add(l, 1, 32, 0, 0, 0, "model.t_embedder.mlp.2.bias");
}

static int find(const tlist *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->t[i].name, name)) return i;
    fail_msg("no %s", name);
    return -1;
}

static void drop(tlist *l, const char *name)
{
    int i = find(l, name);
    memmove(&l->t[i], &l->t[i + 1], (size_t)(l->n - i - 1) * sizeof l->t[0]);
    l->n--;
}

static int try_load(const tlist *l, char *msg, size_t n)
{
    char p[400];
    snprintf(p, sizeof p, "%s/spm.safetensors", tmpdir);
    write_st(p, l);
    spo_dev *dev;
    spo_spm *m = NULL;
    assert_int_equal(spo_dev_open(&dev, SPO_DEV_CPU, 1), SPO_OK);
    int rc = spo_spm_load(&m, clipdir, p, dev);
    snprintf(msg, n, "%s", rc ? spo_errmsg() : "");
    if (rc) printf("  expected error: %s\n", msg);
    spo_spm_free(m);
    spo_dev_close(dev);
    return rc;
}

static void test_load_errors(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/spo_test_spm_XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    tlist *l = malloc(sizeof *l);
    char msg[1024];

    tiny_spm(l); /* every tensor (zeros): loads */
    assert_int_equal(try_load(l, msg, sizeof msg), SPO_OK);

    tiny_spm(l);
    drop(l, "model.t_embedder.mlp.2.bias");
    assert_int_equal(try_load(l, msg, sizeof msg), SPO_EINVAL);
    assert_non_null(strstr(msg, "missing tensor 'model.t_embedder.mlp.2.bias'"));

    tiny_spm(l);
    drop(l, "model.vision_model.encoder.layers.1.adaLN_modulation.1.weight");
    assert_int_equal(try_load(l, msg, sizeof msg), SPO_EINVAL);
    assert_non_null(strstr(msg, "'model.vision_model.encoder.layers.1.adaLN_modulation.1.weight'"));

    tiny_spm(l);
    drop(l, "model.text_model.final_layer_norm.bias");
    assert_int_equal(try_load(l, msg, sizeof msg), SPO_EINVAL);
    assert_non_null(strstr(msg, "'model.text_model.final_layer_norm.bias'"));

    tiny_spm(l); /* the final modulation must be shift/scale: 2W rows */
    l->t[find(l, "model.vision_model.adaLN_modulation.1.weight")].shape[0] = 96;
    assert_int_equal(try_load(l, msg, sizeof msg), SPO_EINVAL);
    assert_non_null(strstr(msg, "'model.vision_model.adaLN_modulation.1.weight' is [96,32], expected [64,32]"));

    tiny_spm(l);
    tl_add(l, 1, 32, 0, 0, 0, "model.vision_model.extra.bias");
    assert_int_equal(try_load(l, msg, sizeof msg), SPO_EINVAL);
    assert_non_null(strstr(msg, "unexpected tensor 'model.vision_model.extra.bias'"));

    /* the CLIP directory alone (PickScore_v1) lacks the timestep modules */
    spo_dev *dev;
    spo_spm *m = NULL;
    assert_int_equal(spo_dev_open(&dev, SPO_DEV_CPU, 1), SPO_OK);
    assert_int_equal(spo_spm_load(&m, clipdir, NULL, dev), SPO_EINVAL);
    printf("  expected error: %s\n", spo_errmsg());
    assert_non_null(strstr(spo_errmsg(), "adaLN_modulation.1.weight"));
    assert_int_equal(spo_spm_load(&m, tmpdir, spmbin, dev), SPO_EINVAL); /* no config.json: an invalid input, exit 2 */
    printf("  expected error: %s\n", spo_errmsg());
    assert_null(m);
    spo_dev_close(dev);

    char p[400];
    snprintf(p, sizeof p, "%s/spm.safetensors", tmpdir);
    unlink(p);
    rmdir(tmpdir);
    free(l);
}

static void test_config(void **state)
{
    const char *good = "{\"projection_dim\":16,\"text_config\":{\"hidden_size\":32,\"hidden_act\":\"gelu\"},"
                       "\"vision_config\":{\"hidden_size\":32,\"num_attention_heads\":4,\"patch_size\":14,"
                       "\"hidden_act\":\"gelu\"}}";
    cJSON *j = cJSON_Parse(good);
    spo_spm_config c;
    assert_int_equal(spo_spm_config_parse(&c, j), SPO_OK);
    /* transformers defaults for absent keys */
    assert_int_equal(c.image_size, 224);
    assert_int_equal(c.layers, 12);
    assert_int_equal(c.inter, 3072);
    assert_int_equal(c.text.layers, 12);
    assert_int_equal(c.text.eos, 49407);
    assert_int_equal(c.freq, 256);
    cJSON_Delete(j);
    /* an old text_config_dict replaces text_config */
    j = cJSON_Parse("{\"text_config\":{\"hidden_size\":64},\"text_config_dict\":{\"hidden_size\":48,"
                    "\"num_attention_heads\":4}}");
    assert_int_equal(spo_spm_config_parse(&c, j), SPO_OK);
    assert_int_equal(c.text.dim, 48);
    assert_int_equal(c.proj, 512);
    cJSON_Delete(j);
    j = cJSON_Parse("{\"vision_config\":{\"hidden_size\":30,\"num_attention_heads\":4}}");
    assert_int_equal(spo_spm_config_parse(&c, j), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "num_attention_heads"));
    cJSON_Delete(j);
    j = cJSON_Parse("{\"vision_config\":{\"hidden_act\":\"relu\"}}");
    assert_int_equal(spo_spm_config_parse(&c, j), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "hidden_act"));
    cJSON_Delete(j);
}

int main(void)
{
    const char *r = getenv("SPO_ROOT");
    snprintf(root, sizeof root, "%s", r ? r : ".");
    snprintf(h5, sizeof h5, "%s/tests/fixtures/spm_parity.h5", root);
    snprintf(clipdir, sizeof clipdir, "%s/tests/fixtures/tiny-spm/clip", root);
    snprintf(spmbin, sizeof spmbin, "%s/tests/fixtures/tiny-spm/spm.bin", root);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_preprocess),  cmocka_unit_test(test_adaln_ops),
        cmocka_unit_test(test_config),      cmocka_unit_test(test_parity),
        cmocka_unit_test(test_timestep_and_chunks), cmocka_unit_test(test_load_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
