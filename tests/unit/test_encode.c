/* test_encode.c — spo_encode_prompts (what spo-encode runs) against
 * transformers 4.40.1: the 4 prompts of tests/fixtures/tiny_sd_parity.h5
 * /text/prompts through tiny-sd's tokenizer and text encoder must give
 * /text/ids exactly and /text/last_hidden_state within 1e-4 (relative L2);
 * batching does not change the result; the preference-model tokenizer is
 * found in a CLIP directory or its tokenizer/ folder; spo_model_id is
 * stable, sensitive to the configs, and names what is missing. */
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "spo/encode.h"
#include "io/h5io.h"
#include "io/modelid.h"
#include "nn_testutil.h"

static char root[1024], model[1200], h5[1200];

static void test_parity(void **state)
{
    spo_h5 *f;
    char **prompts;
    int64_t P;
    assert_int_equal(spo_h5_open(&f, h5, NULL, NULL), SPO_OK);
    assert_int_equal(spo_h5_read_strings(f, "/text/prompts", &prompts, &P), SPO_OK);
    spo_h5_close(f);
    assert_int_equal(P, 4);
    size_t nid = 0, nh = 0;
    int32_t *want_ids = h5_ints(h5, "/text/ids", &nid);
    float *want_h = h5_floats(h5, "/text/last_hidden_state", &nh);
    assert_non_null(want_ids);
    assert_non_null(want_h);

    spo_dev *dev;
    spo_encoder *e;
    assert_int_equal(spo_dev_open(&dev, SPO_DEV_CPU, 0), SPO_OK);
    int rc = spo_encoder_load(&e, model, dev);
    if (rc) fail_msg("load: %s", spo_errmsg());
    int L = spo_encoder_len(e), D = spo_encoder_dim(e);
    assert_int_equal(L, 77);
    assert_int_equal(nid, (size_t)P * L);
    assert_int_equal(nh, (size_t)P * L * D);
    int32_t *ids = calloc(nid, sizeof *ids);
    float *hid = calloc(nh, sizeof *hid), *hid2 = calloc(nh, sizeof *hid2);
    assert_int_equal(spo_encode_prompts(e, (const char *const *)prompts, (int)P, ids, hid), SPO_OK);
    for (size_t i = 0; i < nid; i++)
        if (ids[i] != want_ids[i]) fail_msg("token %zu (prompt %zu): %d, transformers %d", i, i / L, ids[i], want_ids[i]);
    double err = rel_l2(hid, want_h, nh);
    printf("%d prompts: last_hidden_state rel L2 %.3g\n", (int)P, err);
    assert_true(err <= 1e-4);
    for (int64_t p = 0; p < P; p++) {
        double ep = rel_l2(hid + p * L * D, want_h + p * L * D, (size_t)L * D);
        assert_true(ep <= 1e-4);
    }
    /* batches of 3 and 1 give the same as one batch of 4 */
    assert_int_equal(spo_encode_prompts(e, (const char *const *)prompts, 3, ids, hid2), SPO_OK);
    assert_int_equal(spo_encode_prompts(e, (const char *const *)prompts + 3, 1, ids + 3 * L, hid2 + 3 * L * D),
                     SPO_OK);
    assert_true(rel_l2(hid2, hid, nh) <= 1e-6);
    /* prompt 2 is "": the unconditional embedding */
    const char *empty = "";
    assert_string_equal(prompts[2], "");
    assert_int_equal(spo_encode_prompts(e, &empty, 1, ids, hid2), SPO_OK);
    assert_true(rel_l2(hid2, want_h + 2 * L * D, (size_t)L * D) <= 1e-4);

    free(ids);
    free(hid);
    free(hid2);
    free(want_ids);
    free(want_h);
    spo_strings_free(prompts, P);
    spo_encoder_free(e);
    spo_dev_close(dev);
}

/* the preference-model tokenizer: a folder with vocab.json at its top, or
 * with a tokenizer/ folder */
static void test_spm_tokenizer(void **state)
{
    char tokdir[1300];
    snprintf(tokdir, sizeof tokdir, "%s/tokenizer", model);
    spo_tok *a, *b;
    assert_int_equal(spo_tok_load_clip_dir(&a, tokdir), SPO_OK);
    assert_int_equal(spo_tok_load_clip_dir(&b, model), SPO_OK);
    const char *t[] = {"a photo of a Cat, sitting on 2 mats!", "x"};
    int32_t ia[2 * 77], ib[2 * 77];
    assert_int_equal(spo_tokenize(a, t, 2, 77, ia), SPO_OK);
    assert_int_equal(spo_tokenize(b, t, 2, 77, ib), SPO_OK);
    assert_memory_equal(ia, ib, sizeof ia);
    size_t nid;
    int32_t *want = h5_ints(h5, "/text/ids", &nid);
    assert_memory_equal(ia, want, 77 * sizeof *ia);
    free(want);
    spo_tok_free(a);
    spo_tok_free(b);
    spo_tok *c;
    assert_int_equal(spo_tok_load_clip_dir(&c, "/nonexistent/spm"), SPO_EINVAL);
}

static void test_model_id(void **state)
{
    char id1[SPO_MODEL_ID_LEN], id2[SPO_MODEL_ID_LEN], tmp[] = "/tmp/spo-test-modelid-XXXXXX", cmd[4096],
                                                                 copy[600];
    assert_int_equal(spo_model_id(model, id1, sizeof id1), SPO_OK);
    assert_int_equal(strlen(id1), 16);
    assert_int_equal(strspn(id1, "0123456789abcdef"), 16);
    assert_int_equal(spo_model_id(model, id2, sizeof id2), SPO_OK);
    assert_string_equal(id1, id2);
    assert_int_equal(spo_model_id(model, id2, 8), SPO_EINVAL);

    assert_non_null(mkdtemp(tmp));
    snprintf(copy, sizeof copy, "%s/m", tmp);
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", model, copy);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(spo_model_id(copy, id2, sizeof id2), SPO_OK);
    assert_string_equal(id1, id2); /* the id is of the content, not the path */
    snprintf(cmd, sizeof cmd, "echo ' ' >> '%s/unet/config.json'", copy);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(spo_model_id(copy, id2, sizeof id2), SPO_OK);
    assert_string_not_equal(id1, id2);
    snprintf(cmd, sizeof cmd, "rm -r '%s/unet'", copy);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(spo_model_id(copy, id2, sizeof id2), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "unet/config.json"));
    snprintf(cmd, sizeof cmd, "rm -r '%s/text_encoder'", copy);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(spo_model_id(copy, id2, sizeof id2), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "text_encoder"));
    assert_int_equal(spo_model_id(tmp, id2, sizeof id2), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "model_index.json"));
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    assert_int_equal(system(cmd), 0);
}

static void test_load_errors(void **state)
{
    spo_dev *dev;
    spo_encoder *e;
    assert_int_equal(spo_dev_open(&dev, SPO_DEV_CPU, 1), SPO_OK);
    assert_int_equal(spo_encoder_load(&e, "/nonexistent/model", dev), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "/nonexistent/model"));
    char tmp[] = "/tmp/spo-test-enc-XXXXXX", cmd[2600];
    assert_non_null(mkdtemp(tmp));
    snprintf(cmd, sizeof cmd, "cp -r '%s/tokenizer' '%s/'", model, tmp);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(spo_encoder_load(&e, tmp, dev), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "text_encoder"));
    assert_null(e);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    assert_int_equal(system(cmd), 0);
    spo_dev_close(dev);
}

int main(void)
{
    const char *r = getenv("SPO_ROOT");
    snprintf(root, sizeof root, "%s", r ? r : ".");
    snprintf(model, sizeof model, "%s/tests/fixtures/tiny-sd", root);
    snprintf(h5, sizeof h5, "%s/tests/fixtures/tiny_sd_parity.h5", root);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parity),
        cmocka_unit_test(test_spm_tokenizer),
        cmocka_unit_test(test_model_id),
        cmocka_unit_test(test_load_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
