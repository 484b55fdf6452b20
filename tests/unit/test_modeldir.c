/* test_modeldir.c — diffusers model directories and typed config reads:
 * a temporary directory with model_index.json, per-part configs and a
 * safetensors file; defaults, type errors and their messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "io/modeldir.h"
#include "ckpt/safetensors.h"

static char dir[64];

static void put(const char *rel, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void sub(const char *rel)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    mkdir(p, 0755);
}

static int setup(void **s)
{
    (void)s;
    strcpy(dir, "/tmp/spo_md_XXXXXX");
    if (!mkdtemp(dir)) return -1;
    sub("unet"), sub("vae"), sub("scheduler"), sub("tokenizer"), sub("text_encoder");
    put("model_index.json", "{\"_class_name\": \"StableDiffusionPipeline\", \"_diffusers_version\": \"0.26.1\",\n"
                            " \"feature_extractor\": [null, null], \"requires_safety_checker\": false,\n"
                            " \"scheduler\": [\"diffusers\", \"DDIMScheduler\"],\n"
                            " \"text_encoder\": [\"transformers\", \"CLIPTextModel\"],\n"
                            " \"tokenizer\": [\"transformers\", \"CLIPTokenizer\"],\n"
                            " \"unet\": [\"diffusers\", \"UNet2DConditionModel\"],\n"
                            " \"vae\": [\"diffusers\", \"AutoencoderKL\"]}\n");
    put("unet/config.json", "{\"_class_name\": \"UNet2DConditionModel\", \"in_channels\": 4,\n"
                            " \"block_out_channels\": [320, 640, 1280, 1280], \"norm_eps\": 1e-05,\n"
                            " \"act_fn\": \"silu\", \"center_input_sample\": false, \"attention_head_dim\": 8,\n"
                            " \"down_block_types\": [\"CrossAttnDownBlock2D\", \"DownBlock2D\"],\n"
                            " \"bad_list\": [1, \"x\"], \"frac\": 2.5, \"nothing\": null}\n");
    put("vae/config.json", "{\"latent_channels\": 4}");
    put("vae/diffusion_pytorch_model.bin", "not really");
    put("scheduler/scheduler_config.json", "{\"beta_start\": 0.00085, \"beta_end\": 0.012}");
    put("tokenizer/tokenizer_config.json", "{\"model_max_length\": 77}");
    put("tokenizer/vocab.json", "{}");
    put("text_encoder/config.json", "{\"hidden_size\": 768,\n \"oops\": [1,}");
    /* unet: only the fp16 variant; text_encoder: both, the plain one wins */
    float x[4] = {1, 2, 3, 4};
    int64_t sh[1] = {4};
    const char *files[] = {"unet/diffusion_pytorch_model.fp16.safetensors", "text_encoder/model.safetensors",
                           "text_encoder/model.fp16.safetensors"};
    for (int i = 0; i < 3; i++) {
        spo_st_writer *w;
        char p[256];
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        if (spo_st_writer_new(&w) || spo_st_writer_add(w, "w", SPO_ST_F16, 1, sh, x) || spo_st_writer_write(w, p))
            return -1;
        spo_st_writer_free(w);
    }
    return 0;
}

static int teardown(void **s)
{
    (void)s;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

static void test_index(void **s)
{
    (void)s;
    spo_modeldir *md;
    assert_int_equal(spo_md_open(&md, dir), SPO_OK);
    assert_string_equal(spo_md_dir(md), dir);
    assert_int_equal(spo_md_count(md), 5); /* feature_extractor [null,null] is absent */
    assert_string_equal(spo_md_component(md, 0), "scheduler");
    assert_string_equal(spo_md_component(md, 4), "vae");
    assert_null(spo_md_component(md, 5));
    assert_string_equal(spo_md_class(md, "unet"), "UNet2DConditionModel");
    assert_null(spo_md_class(md, "feature_extractor"));
    assert_null(spo_md_class(md, "safety_checker"));
    assert_true(cJSON_IsObject(spo_md_index(md)));
    spo_md_close(md);
}

static void test_config_values(void **s)
{
    (void)s;
    spo_modeldir *md;
    cJSON *c;
    int i, n, ch[8];
    float f;
    double d;
    const char *str, *types[4];
    char exp[256];
    assert_int_equal(spo_md_open(&md, dir), SPO_OK);
    assert_int_equal(spo_md_config(md, "unet", &c), SPO_OK);
    snprintf(exp, sizeof exp, "%s/unet/config.json", dir);
    assert_string_equal(spo_cfg_name(c), exp);
    assert_int_equal(spo_cfg_int(c, "in_channels", 0, &i), SPO_OK);
    assert_int_equal(i, 4);
    assert_int_equal(spo_cfg_int(c, "out_channels", 4, &i), SPO_OK); /* default */
    assert_int_equal(i, 4);
    assert_int_equal(spo_cfg_int(c, "nothing", 7, &i), SPO_OK); /* null: default */
    assert_int_equal(i, 7);
    assert_int_equal(spo_cfg_float(c, "norm_eps", 0, &f), SPO_OK);
    assert_true(f == 1e-5f);
    assert_int_equal(spo_cfg_double(c, "in_channels", 0, &d), SPO_OK);
    assert_true(d == 4);
    assert_int_equal(spo_cfg_bool(c, "center_input_sample", 1, &i), SPO_OK);
    assert_int_equal(i, 0);
    assert_int_equal(spo_cfg_str(c, "act_fn", NULL, &str), SPO_OK);
    assert_string_equal(str, "silu");
    assert_int_equal(spo_cfg_str(c, "missing", "def", &str), SPO_OK);
    assert_string_equal(str, "def");
    assert_int_equal(spo_cfg_int_array(c, "block_out_channels", ch, 8, &n), SPO_OK);
    assert_int_equal(n, 4);
    assert_int_equal(ch[0], 320);
    assert_int_equal(ch[3], 1280);
    assert_int_equal(spo_cfg_int_array(c, "missing", ch, 8, &n), SPO_OK);
    assert_int_equal(n, 0);
    assert_int_equal(spo_cfg_str_array(c, "down_block_types", types, 4, &n), SPO_OK);
    assert_int_equal(n, 2);
    assert_string_equal(types[1], "DownBlock2D");
    assert_int_equal(spo_cfg_require(c, "in_channels"), SPO_OK);

    /* errors name the file and the key */
    assert_int_equal(spo_cfg_int_array(c, "bad_list", ch, 8, &n), SPO_EINVAL);
    snprintf(exp, sizeof exp, "%s/unet/config.json: 'bad_list' must be a list of integers", dir);
    assert_string_equal(spo_errmsg(), exp);
    assert_int_equal(spo_cfg_int_array(c, "act_fn", ch, 8, &n), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "unet/config.json: 'act_fn' must be a list of integers"));
    assert_int_equal(spo_cfg_int_array(c, "block_out_channels", ch, 3, &n), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "'block_out_channels' has 4 entries, at most 3 allowed"));
    assert_int_equal(spo_cfg_str_array(c, "block_out_channels", types, 4, &n), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "'block_out_channels' must be a list of strings"));
    assert_int_equal(spo_cfg_int(c, "frac", 0, &i), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "unet/config.json: 'frac' must be an integer, not 2.5"));
    assert_int_equal(spo_cfg_int(c, "act_fn", 0, &i), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "'act_fn' must be an integer, not a string"));
    assert_int_equal(spo_cfg_float(c, "act_fn", 0, &f), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "'act_fn' must be a number"));
    assert_int_equal(spo_cfg_bool(c, "in_channels", 0, &i), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "'in_channels' must be true or false, not a number"));
    assert_int_equal(spo_cfg_str(c, "block_out_channels", NULL, &str), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "'block_out_channels' must be a string, not a list"));
    assert_int_equal(spo_cfg_require(c, "nothing"), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "unet/config.json: missing 'nothing'"));
    cJSON_Delete(c);

    assert_int_equal(spo_md_config(md, "scheduler", &c), SPO_OK); /* scheduler_config.json */
    assert_int_equal(spo_cfg_float(c, "beta_start", 0, &f), SPO_OK);
    assert_true(f == 0.00085f);
    cJSON_Delete(c);
    assert_int_equal(spo_md_config(md, "tokenizer", &c), SPO_OK); /* tokenizer_config.json */
    assert_int_equal(spo_cfg_int(c, "model_max_length", 0, &i), SPO_OK);
    assert_int_equal(i, 77);
    cJSON_Delete(c);
    assert_int_equal(spo_md_config(md, "text_encoder", &c), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "text_encoder/config.json: invalid JSON at line 2, column"));
    assert_null(c);
    assert_int_equal(spo_md_config(md, "safety_checker", &c), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "model_index.json: no component 'safety_checker'"));
    assert_int_equal(spo_md_config(md, "../unet", &c), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "invalid component name '../unet'"));
    spo_md_close(md);
}

static void test_weights(void **s)
{
    (void)s;
    spo_modeldir *md;
    char p[512], exp[512];
    assert_int_equal(spo_md_open(&md, dir), SPO_OK);
    assert_int_equal(spo_md_weights(md, "unet", p, sizeof p), SPO_OK);
    snprintf(exp, sizeof exp, "%s/unet/diffusion_pytorch_model.fp16.safetensors", dir);
    assert_string_equal(p, exp);
    assert_int_equal(spo_md_weights(md, "text_encoder", p, sizeof p), SPO_OK);
    snprintf(exp, sizeof exp, "%s/text_encoder/model.safetensors", dir);
    assert_string_equal(p, exp);
    spo_st *st;
    assert_int_equal(spo_st_open(&st, p), SPO_OK);
    assert_int_equal(spo_st_count(st), 1);
    spo_st_close(st);
    assert_int_equal(spo_md_weights(md, "vae", p, sizeof p), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "vae: only PyTorch .bin weights (diffusion_pytorch_model.bin)"));
    assert_int_equal(spo_md_weights(md, "scheduler", p, sizeof p), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "scheduler: no weights file"));
    assert_int_equal(spo_md_weights(md, "unet", p, 20), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "path too long"));
    assert_int_equal(spo_md_file(md, "tokenizer", "vocab.json", p, sizeof p), SPO_OK);
    assert_int_equal(spo_md_file(md, "tokenizer", "merges.txt", p, sizeof p), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "tokenizer/merges.txt: no such file"));
    spo_md_close(md);
}

static void test_bad_index(void **s)
{
    (void)s;
    spo_modeldir *md;
    char sub_dir[128];
    assert_int_equal(spo_md_open(&md, "/nonexistent/model"), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "/nonexistent/model: not a diffusers model directory"));
    snprintf(sub_dir, sizeof sub_dir, "%s/unet", dir);
    put("unet/model_index.json", "[1, 2]");
    assert_int_equal(spo_md_open(&md, sub_dir), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "unet/model_index.json: not a JSON object"));
    put("unet/model_index.json", "{\"a\": 1,,}");
    assert_int_equal(spo_md_open(&md, sub_dir), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "unet/model_index.json: invalid JSON at line 1, column 10"));
    put("unet/model_index.json", "{\"unet\": [\"diffusers\"]}");
    assert_int_equal(spo_md_open(&md, sub_dir), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "'unet' must be [library, class]"));
    put("unet/model_index.json", "{}\n\n  ");
    assert_int_equal(spo_md_open(&md, sub_dir), SPO_OK);
    assert_int_equal(spo_md_count(md), 0);
    spo_md_close(md);
    cJSON *c;
    assert_int_equal(spo_cfg_load(&c, "/nonexistent.json"), SPO_EINVAL);
    assert_int_equal(spo_cfg_parse(&c, "{\"a\":1}\0", 8, "mem.json"), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "mem.json: contains a NUL byte"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index),
        cmocka_unit_test(test_config_values),
        cmocka_unit_test(test_weights),
        cmocka_unit_test(test_bad_index),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
