/* test_clip_text.c — the CLIP text encoder against transformers 4.40.1
 * (tests/fixtures/tiny_sd_parity.h5, /text: ids -> last_hidden_state and
 * pooled from tiny-sd/text_encoder), the pooling rule for both kinds of
 * eos_token_id, and load errors on small hand-written files. */
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "nn/clip_text.h"
#include "nn_testutil.h"

static char root[1024];

static void test_parity(void **state)
{
    char h5[1200], dir[1200];
    snprintf(h5, sizeof h5, "%s/tests/fixtures/tiny_sd_parity.h5", root);
    snprintf(dir, sizeof dir, "%s/tests/fixtures/tiny-sd/text_encoder", root);
    size_t nid = 0, nh = 0, np = 0;
    int32_t *ids = h5_ints(h5, "/text/ids", &nid);
    float *want_h = h5_floats(h5, "/text/last_hidden_state", &nh);
    float *want_p = h5_floats(h5, "/text/pooled", &np);
    assert_non_null(ids);
    assert_non_null(want_h);
    assert_non_null(want_p);
    spo_dev *dev;
    spo_clip_text *m;
    assert_int_equal(spo_dev_open(&dev, SPO_DEV_CPU, 0), SPO_OK);
    int rc = spo_clip_text_load(&m, dir, dev);
    if (rc) fprintf(stderr, "load: %s\n", spo_errmsg());
    assert_int_equal(rc, SPO_OK);
    int C = spo_clip_text_cfg(m)->dim, len = 77, batch = (int)(nid / len);
    assert_int_equal(nid, (size_t)batch * len);
    assert_int_equal(nh, (size_t)batch * len * C);
    assert_int_equal(np, (size_t)batch * C);
    float *hid = malloc(nh * sizeof *hid), *pool = malloc(np * sizeof *pool);
    assert_int_equal(spo_clip_text_forward(m, hid, pool, ids, batch, len), SPO_OK);
    double eh = rel_l2(hid, want_h, nh), ep = rel_l2(pool, want_p, np);
    printf("%d prompts: last_hidden_state rel L2 %.3g, pooled %.3g\n", batch, eh, ep);
    assert_true(eh <= 1e-4);
    assert_true(ep <= 1e-4);
    /* one prompt alone gives the same as in the batch */
    assert_int_equal(spo_clip_text_forward(m, hid, NULL, ids + len, 1, len), SPO_OK);
    assert_true(rel_l2(hid, want_h + (size_t)len * C, (size_t)len * C) <= 1e-4);
    /* ids outside the vocabulary and sequences too long are refused */
    int32_t bad[77];
    memcpy(bad, ids, sizeof bad);
    bad[5] = 514;
    assert_int_equal(spo_clip_text_forward(m, hid, NULL, bad, 1, 77), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "514"));
    assert_int_equal(spo_clip_text_forward(m, hid, NULL, ids, 1, 78), SPO_EINVAL);
    free(hid);
    free(pool);
    free(ids);
    free(want_h);
    free(want_p);
    spo_clip_text_free(m);
    spo_dev_close(dev);
}

/* pooled is the row transformers picks: argmax(ids) when eos_token_id == 2,
 * else the first eos (position 0 when there is none) */
static void test_pool_rule(void **state)
{
    spo_dev *dev;
    assert_int_equal(spo_dev_open(&dev, SPO_DEV_CPU, 1), SPO_OK);
    spo_clip_text_config c = {.vocab = 50, .dim = 8, .inter = 16, .layers = 1, .heads = 2, .max_pos = 6,
                              .act = SPO_ACT_QUICK_GELU, .eps = 1e-5f, .eos = 2};
    int32_t ids[3 * 6] = {1, 40, 7, 49, 49, 3, /* argmax: 3 (first of the ties) */
                          2, 5, 2, 9, 0, 0,    /* argmax: 3 */
                          0, 0, 0, 0, 0, 1};   /* argmax: 5 */
    int want2[3] = {3, 3, 5}, want49[3] = {3, 0, 0};
    float hid[3 * 6 * 8], pool[3 * 8];
    for (int k = 0; k < 2; k++) {
        c.eos = k ? 49 : 2;
        const int *want = k ? want49 : want2;
        spo_clip_text *m;
        assert_int_equal(spo_clip_text_create(&m, &c, dev), SPO_OK);
        assert_int_equal(spo_clip_text_randn(m, 7, 0.5f), SPO_OK);
        assert_int_equal(spo_clip_text_forward(m, hid, pool, ids, 3, 6), SPO_OK);
        for (int b = 0; b < 3; b++) assert_memory_equal(pool + b * 8, hid + (b * 6 + want[b]) * 8, 8 * sizeof(float));
        spo_clip_text_free(m);
    }
    spo_dev_close(dev);
}

/* ---- load errors -------------------------------------------------------- */

static void small_clip(tlist *l)
{
    l->n = 0;
    tl_add(l, 2, 10, 8, 0, 0, "text_model.embeddings.token_embedding.weight");
    tl_add(l, 2, 6, 8, 0, 0, "text_model.embeddings.position_embedding.weight");
    tl_add(l, 2, 1, 6, 0, 0, "text_model.embeddings.position_ids"); /* ignored */
    const char *sq[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj"};
    for (int i = 0; i < 2; i++) {
        tl_add(l, 1, 8, 0, 0, 0, "text_model.encoder.layers.%d.layer_norm1.weight", i);
        tl_add(l, 1, 8, 0, 0, 0, "text_model.encoder.layers.%d.layer_norm1.bias", i);
        for (int j = 0; j < 4; j++) {
            tl_add(l, 2, 8, 8, 0, 0, "text_model.encoder.layers.%d.%s.weight", i, sq[j]);
            tl_add(l, 1, 8, 0, 0, 0, "text_model.encoder.layers.%d.%s.bias", i, sq[j]);
        }
        tl_add(l, 1, 8, 0, 0, 0, "text_model.encoder.layers.%d.layer_norm2.weight", i);
        tl_add(l, 1, 8, 0, 0, 0, "text_model.encoder.layers.%d.layer_norm2.bias", i);
        tl_add(l, 2, 12, 8, 0, 0, "text_model.encoder.layers.%d.mlp.fc1.weight", i);
        tl_add(l, 1, 12, 0, 0, 0, "text_model.encoder.layers.%d.mlp.fc1.bias", i);
        tl_add(l, 2, 8, 12, 0, 0, "text_model.encoder.layers.%d.mlp.fc2.weight", i);
        tl_add(l, 1, 8, 0, 0, 0, "text_model.encoder.layers.%d.mlp.fc2.bias", i);
    }
    tl_add(l, 1, 8, 0, 0, 0, "text_model.final_layer_norm.weight");
    tl_add(l, 1, 8, 0, 0, 0, "text_model.final_layer_norm.bias");
}

static char tmpdir[256];

static void write_config(const char *json)
{
    char p[400];
    snprintf(p, sizeof p, "%s/config.json", tmpdir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(json, f);
    fclose(f);
}

static int try_load(const tlist *l, char *msg, size_t n)
{
    char p[400];
    snprintf(p, sizeof p, "%s/model.safetensors", tmpdir);
    write_st(p, l);
    spo_dev *dev;
    spo_clip_text *m = NULL;
    assert_int_equal(spo_dev_open(&dev, SPO_DEV_CPU, 1), SPO_OK);
    int rc = spo_clip_text_load(&m, tmpdir, dev);
    snprintf(msg, n, "%s", rc ? spo_errmsg() : "");
    if (rc) printf("  expected error: %s\n", msg);
    spo_clip_text_free(m);
    spo_dev_close(dev);
    return rc;
}

static const char *SMALL = "{\"vocab_size\":10,\"hidden_size\":8,\"intermediate_size\":12,\"num_hidden_layers\":2,"
                           "\"num_attention_heads\":2,\"max_position_embeddings\":6,\"hidden_act\":\"%s\","
                           "\"layer_norm_eps\":1e-5,\"eos_token_id\":2}";

static void test_load_errors(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/spo_test_clip_XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    tlist *l = malloc(sizeof *l);
    char msg[512], cfg[512];
    snprintf(cfg, sizeof cfg, SMALL, "gelu");
    write_config(cfg);

    small_clip(l);
    assert_int_equal(try_load(l, msg, sizeof msg), SPO_OK);

    small_clip(l); /* wrong shape */
    l->t[16].shape[0] = 13;
    assert_int_equal(try_load(l, msg, sizeof msg), SPO_EINVAL);
    assert_non_null(strstr(msg, "'text_model.encoder.layers.0.mlp.fc1.bias'"));

    small_clip(l); /* missing */
    l->n--;
    assert_int_equal(try_load(l, msg, sizeof msg), SPO_EINVAL);
    assert_non_null(strstr(msg, "'text_model.final_layer_norm.bias'"));

    small_clip(l); /* unexpected */
    tl_add(l, 2, 8, 8, 0, 0, "text_projection.weight");
    assert_int_equal(try_load(l, msg, sizeof msg), SPO_EINVAL);
    assert_non_null(strstr(msg, "'text_projection.weight'"));

    small_clip(l); /* unsupported activation names the key */
    snprintf(cfg, sizeof cfg, SMALL, "relu");
    write_config(cfg);
    assert_int_equal(try_load(l, msg, sizeof msg), SPO_EINVAL);
    assert_non_null(strstr(msg, "hidden_act"));
    write_config("{\"hidden_size\":8,\"num_attention_heads\":3}");
    assert_int_equal(try_load(l, msg, sizeof msg), SPO_EINVAL);
    assert_non_null(strstr(msg, "num_attention_heads"));

    char p[400];
    snprintf(p, sizeof p, "%s/model.safetensors", tmpdir);
    unlink(p);
    snprintf(p, sizeof p, "%s/config.json", tmpdir);
    unlink(p);
    rmdir(tmpdir);
    free(l);
}

int main(void)
{
    const char *r = getenv("SPO_ROOT");
    snprintf(root, sizeof root, "%s", r ? r : ".");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parity),
        cmocka_unit_test(test_pool_rule),
        cmocka_unit_test(test_load_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
