/* test_encode_xl.c — SDXL's text conditioning against diffusers 0.26.1 /
 * transformers 4.40.1 (tests/fixtures/tiny_sdxl_text.h5, written by
 * tests/reference/tiny_sdxl_text.py from tests/fixtures/tiny-sdxl):
 * both encoders' hidden_states[-2], text_encoder_2's last_hidden_state (exact
 * gelu) and text_embeds (text_projection), the ids of both tokenizers
 * exactly (tokenizer_2 pads with "!"), encode_prompt's prompt_embeds and
 * pooled embeds, the unconditional embedding as the official SPO script
 * takes it (zeros under force_zeros_for_empty_prompt, else the empty
 * prompt), the time ids, and the load errors. Floats within 1e-4 relative
 * L2 (fp32). */
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "nn/clip_text.h"
#include "spo/embeds.h"
#include "spo/encode.h"
#include "spo/time_ids.h"
#include "io/h5io.h"
#include "nn_testutil.h"

static char model[1200], h5[1200];

enum { L = 77 };

static char **prompts(int64_t *P)
{
    spo_h5 *f;
    char **p;
    assert_int_equal(spo_h5_open(&f, h5, NULL, NULL), SPO_OK);
    assert_int_equal(spo_h5_read_strings(f, "/prompts", &p, P), SPO_OK);
    spo_h5_close(f);
    return p;
}

static void check_close(const char *what, const float *got, const char *name, size_t n)
{
    size_t nw = 0;
    float *want = h5_floats(h5, name, &nw);
    assert_non_null(want);
    assert_int_equal(nw, n);
    double err = rel_l2(got, want, n);
    printf("%-40s rel L2 %.3g\n", what, err);
    if (!(err <= 1e-4)) fail_msg("%s: rel L2 %g against %s", what, err, name);
    free(want);
}

static void check_ids(const char *what, const int32_t *got, const char *name, size_t n)
{
    size_t nw = 0;
    int32_t *want = h5_ints(h5, name, &nw);
    assert_non_null(want);
    assert_int_equal(nw, n);
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i]) fail_msg("%s: token %zu (prompt %zu) is %d, transformers %d", what, i, i / L, got[i], want[i]);
    free(want);
}

/* the two encoders alone: ids from the fixture, every output the pipeline uses */
static void test_clip_hidden_states(void **state)
{
    spo_dev *dev;
    spo_clip_text *te1, *te2;
    char dir[1300];
    assert_int_equal(spo_dev_open(&dev, SPO_DEV_CPU, 0), SPO_OK);
    snprintf(dir, sizeof dir, "%s/text_encoder", model);
    assert_int_equal(spo_clip_text_load(&te1, dir, dev), SPO_OK);
    snprintf(dir, sizeof dir, "%s/text_encoder_2", model);
    int rc = spo_clip_text_load(&te2, dir, dev);
    if (rc) fail_msg("load: %s", spo_errmsg());
    const spo_clip_text_config *c1 = spo_clip_text_cfg(te1), *c2 = spo_clip_text_cfg(te2);
    assert_int_equal(c1->with_proj, 0);
    assert_int_equal(c2->with_proj, 1);
    assert_int_equal(c2->proj_dim, 32);
    assert_int_equal(c2->act, SPO_ACT_GELU);
    assert_int_equal(c2->eos, 2); /* SDXL's config: transformers pools at the argmax of the ids */

    size_t n1 = 0, n2 = 0;
    int32_t *ids1 = h5_ints(h5, "/ids", &n1), *ids2 = h5_ints(h5, "/ids_2", &n2);
    int P = (int)(n1 / L), C1 = c1->dim, C2 = c2->dim, E = c2->proj_dim;
    float *h1 = malloc((size_t)P * L * C1 * sizeof *h1), *h2 = malloc((size_t)P * L * C2 * sizeof *h2);
    float *last = malloc((size_t)P * L * C2 * sizeof *last), *pooled = malloc((size_t)P * E * sizeof *pooled);
    assert_int_equal(spo_clip_text_forward_hs(te1, c1->layers - 1, h1, NULL, ids1, P, L), SPO_OK);
    check_close("text_encoder hidden_states[-2]", h1, "/hidden_1", (size_t)P * L * C1);
    assert_int_equal(spo_clip_text_forward_hs(te2, c2->layers - 1, h2, pooled, ids2, P, L), SPO_OK);
    check_close("text_encoder_2 hidden_states[-2]", h2, "/hidden_2", (size_t)P * L * C2);
    check_close("text_encoder_2 text_embeds", pooled, "/pooled", (size_t)P * E);
    assert_int_equal(spo_clip_text_forward(te2, last, NULL, ids2, P, L), SPO_OK);
    check_close("text_encoder_2 last_hidden_state", last, "/last_2", (size_t)P * L * C2);
    /* hidden state only (the last layer is not run), and out of range */
    memset(h2, 0, (size_t)P * L * C2 * sizeof *h2);
    assert_int_equal(spo_clip_text_forward_hs(te2, c2->layers - 1, h2, NULL, ids2, P, L), SPO_OK);
    check_close("text_encoder_2 hidden_states[-2] alone", h2, "/hidden_2", (size_t)P * L * C2);
    assert_int_equal(spo_clip_text_forward_hs(te2, c2->layers + 1, h2, NULL, ids2, P, L), SPO_EINVAL);
    /* hidden_states[layers] is last_hidden_state before the final norm: not equal to it */
    assert_int_equal(spo_clip_text_forward_hs(te2, c2->layers, h2, NULL, ids2, P, L), SPO_OK);
    assert_true(rel_l2(h2, last, (size_t)P * L * C2) > 1e-2);

    /* the same file as a CLIPTextModel has an unexpected text_projection */
    spo_clip_text *bad;
    assert_int_equal(spo_clip_text_load_as(&bad, dir, "CLIPTextModel", dev), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "text_projection.weight"));
    assert_int_equal(spo_clip_text_load_as(&bad, dir, "T5EncoderModel", dev), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "T5EncoderModel"));

    free(ids1);
    free(ids2);
    free(h1);
    free(h2);
    free(last);
    free(pooled);
    spo_clip_text_free(te1);
    spo_clip_text_free(te2);
    spo_dev_close(dev);
}

/* what spo-encode runs: encode_prompt's prompt_embeds and pooled embeds */
static void test_encode_prompt(void **state)
{
    int64_t P;
    char **text = prompts(&P);
    spo_dev *dev;
    spo_encoder *e;
    assert_int_equal(spo_dev_open(&dev, SPO_DEV_CPU, 0), SPO_OK);
    int rc = spo_encoder_load(&e, model, dev);
    if (rc) fail_msg("load: %s", spo_errmsg());
    assert_int_equal(spo_encoder_len(e), L);
    assert_int_equal(spo_encoder_dim(e), 64);
    assert_int_equal(spo_encoder_pooled_dim(e), 32);
    assert_int_equal(spo_encoder_uncond_zeros(e), 1);
    assert_non_null(spo_encoder_tok2(e));
    int D = 64, E = 32;
    int32_t *ids = malloc((size_t)P * L * sizeof *ids), *ids2 = malloc((size_t)P * L * sizeof *ids2);
    float *hid = malloc((size_t)P * L * D * sizeof *hid), *hid2 = malloc((size_t)P * L * D * sizeof *hid2);
    float *pooled = malloc((size_t)P * E * sizeof *pooled), *pooled2 = malloc((size_t)P * E * sizeof *pooled2);
    assert_int_equal(spo_encode_prompts_ex(e, (const char *const *)text, (int)P, ids, ids2, hid, pooled), SPO_OK);
    check_ids("tokenizer", ids, "/ids", (size_t)P * L);
    check_ids("tokenizer_2", ids2, "/ids_2", (size_t)P * L);
    assert_int_equal(ids2[(size_t)1 * L + 4], 0); /* "wow!!": the added token "!" */
    assert_int_equal(ids2[(size_t)2 * L + 2], 0); /* "": bos, eos, then "!" padding */
    assert_int_equal(ids[(size_t)2 * L + 2], 513);
    check_close("prompt_embeds", hid, "/prompt_embeds", (size_t)P * L * D);
    check_close("pooled_prompt_embeds", pooled, "/pooled", (size_t)P * E);
    for (int64_t p = 0; p < P; p++) { /* each prompt on its own, too */
        size_t nw;
        float *want = h5_floats(h5, "/prompt_embeds", &nw);
        assert_true(rel_l2(hid + p * L * D, want + p * L * D, (size_t)L * D) <= 1e-4);
        free(want);
    }
    /* batches of 2 and 3 give the same; the short form gives the same hidden */
    assert_int_equal(spo_encode_prompts_ex(e, (const char *const *)text, 2, ids, NULL, hid2, pooled2), SPO_OK);
    assert_int_equal(spo_encode_prompts_ex(e, (const char *const *)text + 2, (int)P - 2, ids + 2 * L, NULL,
                                           hid2 + 2 * L * D, pooled2 + 2 * E),
                     SPO_OK);
    assert_true(rel_l2(hid2, hid, (size_t)P * L * D) <= 1e-6);
    assert_true(rel_l2(pooled2, pooled, (size_t)P * E) <= 1e-6);
    assert_int_equal(spo_encode_prompts(e, (const char *const *)text, (int)P, ids, hid2), SPO_OK);
    assert_memory_equal(hid2, hid, (size_t)P * L * D * sizeof *hid);

    /* the official negative under force_zeros_for_empty_prompt: zeros */
    float *unc = malloc((size_t)L * D * sizeof *unc), unc_p[32];
    memset(unc, 0xff, (size_t)L * D * sizeof *unc);
    memset(unc_p, 0xff, sizeof unc_p);
    assert_int_equal(spo_encode_uncond(e, unc, unc_p), SPO_OK);
    size_t nw;
    float *want = h5_floats(h5, "/neg/zeros/prompt_embeds", &nw);
    assert_int_equal(nw, (size_t)L * D);
    assert_memory_equal(unc, want, nw * sizeof *unc);
    free(want);
    want = h5_floats(h5, "/neg/zeros/pooled", &nw);
    assert_memory_equal(unc_p, want, sizeof unc_p);
    free(want);

    free(ids);
    free(ids2);
    free(hid);
    free(hid2);
    free(pooled);
    free(pooled2);
    free(unc);
    spo_strings_free(text, P);
    spo_encoder_free(e);
    spo_dev_close(dev);
}

/* a copy of tiny-sdxl's text side in a temporary folder; index: the
 * model_index.json to write there (NULL: none) */
static void make_copy(char *tmp, const char *index)
{
    char cmd[4096];
    assert_non_null(mkdtemp(tmp));
    snprintf(cmd, sizeof cmd, "cd '%s' && cp -r text_encoder text_encoder_2 tokenizer tokenizer_2 '%s/'", model, tmp);
    assert_int_equal(system(cmd), 0);
    if (!index) return;
    snprintf(cmd, sizeof cmd, "%s/model_index.json", tmp);
    FILE *f = fopen(cmd, "w");
    assert_non_null(f);
    fputs(index, f);
    fclose(f);
}

static void rm_copy(const char *tmp)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    assert_int_equal(system(cmd), 0);
}

/* force_zeros_for_empty_prompt false: the empty prompt through both encoders */
static void test_uncond_empty_prompt(void **state)
{
    char tmp[] = "/tmp/spo-test-xl-XXXXXX";
    /* SDXL base's model_index.json also has "add_watermarker": null */
    make_copy(tmp, "{\"_class_name\": \"StableDiffusionXLPipeline\", \"force_zeros_for_empty_prompt\": false,\n"
                   " \"add_watermarker\": null,\n"
                   " \"text_encoder\": [\"transformers\", \"CLIPTextModel\"],\n"
                   " \"text_encoder_2\": [\"transformers\", \"CLIPTextModelWithProjection\"],\n"
                   " \"tokenizer\": [\"transformers\", \"CLIPTokenizer\"],\n"
                   " \"tokenizer_2\": [\"transformers\", \"CLIPTokenizer\"]}\n");
    spo_dev *dev;
    spo_encoder *e;
    assert_int_equal(spo_dev_open(&dev, SPO_DEV_CPU, 0), SPO_OK);
    int rc = spo_encoder_load(&e, tmp, dev);
    if (rc) fail_msg("load: %s", spo_errmsg());
    assert_int_equal(spo_encoder_uncond_zeros(e), 0);
    float *unc = malloc((size_t)L * 64 * sizeof *unc), unc_p[32];
    assert_int_equal(spo_encode_uncond(e, unc, unc_p), SPO_OK);
    check_close("negative_prompt_embeds (\"\")", unc, "/neg/empty/prompt_embeds", (size_t)L * 64);
    check_close("negative_pooled_prompt_embeds (\"\")", unc_p, "/neg/empty/pooled", 32);
    free(unc);
    spo_encoder_free(e);
    rm_copy(tmp);

    /* no model_index.json: a text_encoder_2 folder makes it SDXL, zeros by default */
    char tmp2[] = "/tmp/spo-test-xl-XXXXXX";
    make_copy(tmp2, NULL);
    assert_int_equal(spo_encoder_load(&e, tmp2, dev), SPO_OK);
    assert_int_equal(spo_encoder_pooled_dim(e), 32);
    assert_int_equal(spo_encoder_uncond_zeros(e), 1);
    spo_encoder_free(e);
    rm_copy(tmp2);
    spo_dev_close(dev);
}

static void test_load_errors(void **state)
{
    spo_dev *dev;
    spo_encoder *e;
    char cmd[600];
    assert_int_equal(spo_dev_open(&dev, SPO_DEV_CPU, 0), SPO_OK);
    /* text_encoder_2 named as a CLIPTextModel: its text_projection is unexpected */
    char a[] = "/tmp/spo-test-xl-XXXXXX";
    make_copy(a, "{\"_class_name\": \"StableDiffusionXLPipeline\",\n"
                 " \"text_encoder_2\": [\"transformers\", \"CLIPTextModel\"]}\n");
    assert_int_equal(spo_encoder_load(&e, a, dev), SPO_EINVAL);
    assert_null(e);
    assert_non_null(strstr(spo_errmsg(), "text_projection"));
    /* no tokenizer_2 */
    snprintf(cmd, sizeof cmd, "rm -r '%s/tokenizer_2' '%s/model_index.json'", a, a);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(spo_encoder_load(&e, a, dev), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "tokenizer_2"));
    rm_copy(a);
    /* tokenizer_2 of another length */
    char b[] = "/tmp/spo-test-xl-XXXXXX";
    make_copy(b, NULL);
    snprintf(cmd, sizeof cmd,
             "cd '%s/tokenizer_2' && sed 's/\"model_max_length\": 77/\"model_max_length\": 64/' tokenizer_config.json "
             "> t && mv t tokenizer_config.json",
             b);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(spo_encoder_load(&e, b, dev), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "model_max_length 64"));
    rm_copy(b);
    spo_dev_close(dev);
}

static void test_time_ids(void **state)
{
    size_t nin = 0, nout = 0, nd = 0;
    int32_t *in = h5_ints(h5, "/time_ids/in", &nin);
    float *out = h5_floats(h5, "/time_ids/out", &nout), *def = h5_floats(h5, "/time_ids/default", &nd);
    assert_int_equal(nin, nout);
    assert_int_equal(nd, 6);
    for (size_t r = 0; r < nin / 6; r++) {
        const int32_t *v = in + 6 * r;
        spo_time_size s = {{v[0], v[1]}, {v[2], v[3]}, {v[4], v[5]}};
        float ids[6];
        spo_time_ids(ids, &s);
        assert_memory_equal(ids, out + 6 * r, sizeof ids);
    }
    spo_h5 *f;
    int64_t size, tdim, add_in;
    assert_int_equal(spo_h5_open(&f, h5, NULL, NULL), SPO_OK);
    assert_int_equal(spo_h5_get_attr_int(f, NULL, "default_size", &size), SPO_OK);
    assert_int_equal(spo_h5_get_attr_int(f, NULL, "addition_time_embed_dim", &tdim), SPO_OK);
    assert_int_equal(spo_h5_get_attr_int(f, NULL, "projection_class_embeddings_input_dim", &add_in), SPO_OK);
    spo_h5_close(f);
    spo_time_size s = spo_time_size_default((int)size, (int)size);
    float ids[6];
    spo_time_ids(ids, &s);
    assert_memory_equal(ids, def, sizeof ids);
    assert_int_equal(spo_time_ids_check((int)tdim, 32, (int)add_in), SPO_OK);
    assert_int_equal(spo_time_ids_check((int)tdim, 33, (int)add_in), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "length 80"));
    assert_int_equal(spo_time_ids_check(256, 1280, 2816), SPO_OK); /* SDXL base */
    free(in);
    free(out);
    free(def);
}

/* spo_embeds_pooled_dim: 0 without the SDXL datasets, E with both, an error with one */
static void test_embeds_pooled_dim(void **state)
{
    char dir[] = "/tmp/spo-test-xl-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    float v[2 * 3] = {0};
    int64_t s[2] = {2, 3}, s1[2] = {1, 3}, E;
    spo_h5 *f;
    for (int k = 0; k < 3; k++) { /* k: 0 none, 1 /pooled only, 2 both */
        snprintf(path, sizeof path, "%s/%d.h5", dir, k);
        assert_int_equal(spo_h5_create(&f, path, NULL, 1), SPO_OK);
        assert_int_equal(spo_h5_write(f, "/x", SPO_T_F32, 2, s, v), SPO_OK);
        if (k) assert_int_equal(spo_h5_write(f, "/pooled", SPO_T_F32, 2, s, v), SPO_OK);
        if (k == 2) assert_int_equal(spo_h5_write(f, "/uncond_pooled", SPO_T_F16, 2, s1, v), SPO_OK);
        assert_int_equal(spo_h5_commit(f), SPO_OK);
        assert_int_equal(spo_h5_open(&f, path, NULL, NULL), SPO_OK);
        int rc = spo_embeds_pooled_dim(f, &E);
        spo_h5_close(f);
        assert_int_equal(rc, k == 1 ? SPO_EINVAL : SPO_OK);
        assert_int_equal(E, k == 2 ? 3 : 0);
        if (k == 1) assert_non_null(strstr(spo_errmsg(), "/pooled without /uncond_pooled"));
    }
    rm_copy(dir);
}

int main(void)
{
    const char *r = getenv("SPO_ROOT");
    snprintf(model, sizeof model, "%s/tests/fixtures/tiny-sdxl", r ? r : ".");
    snprintf(h5, sizeof h5, "%s/tests/fixtures/tiny_sdxl_text.h5", r ? r : ".");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clip_hidden_states),
        cmocka_unit_test(test_encode_prompt),
        cmocka_unit_test(test_uncond_empty_prompt),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_time_ids),
        cmocka_unit_test(test_embeds_pooled_dim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
