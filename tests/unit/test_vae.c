/* test_vae.c — the AutoencoderKL decoder against diffusers 0.26.1
 * (tests/fixtures/tiny_sd_parity.h5, /vae: latents -> image from tiny-sd/vae
 * and image_legacy from tiny-vae-legacy), and load errors on small
 * hand-written safetensors files. */
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "nn_testutil.h"
#include "nn/vae.h"

static char root[1024];

static void fixture(char *buf, size_t n, const char *rel) { snprintf(buf, n, "%s/tests/fixtures/%s", root, rel); }

static void parity(const char *dir, const char *dataset)
{
    char h5[1200], vdir[1200];
    fixture(h5, sizeof h5, "tiny_sd_parity.h5");
    fixture(vdir, sizeof vdir, dir);
    size_t nl = 0, ni = 0;
    float *lat = h5_floats(h5, "/vae/latents", &nl);
    float *want = h5_floats(h5, dataset, &ni);
    assert_non_null(lat);
    assert_non_null(want);
    spo_dev *dev;
    spo_vae *v;
    assert_int_equal(spo_dev_open(&dev, SPO_DEV_CPU, 0), SPO_OK);
    int rc = spo_vae_load(&v, vdir, dev);
    if (rc) fprintf(stderr, "load: %s\n", spo_errmsg());
    assert_int_equal(rc, SPO_OK);
    const spo_vae_config *c = spo_vae_cfg(v);
    int f = spo_vae_factor(v), batch = 2, h = 16, w = 16;
    assert_int_equal(f, 2);
    assert_int_equal(nl, (size_t)batch * c->latent_channels * h * w);
    assert_int_equal(ni, (size_t)batch * 3 * h * f * w * f);
    float *img = malloc(ni * sizeof *img);
    assert_non_null(img);
    assert_int_equal(spo_vae_decode(v, img, lat, batch, h, w), SPO_OK);
    double e = rel_l2(img, want, ni);
    printf("%s vs %s: rel L2 %.3g\n", dir, dataset, e);
    assert_true(e <= 1e-4);
    /* the second image alone gives the same as in the batch */
    assert_int_equal(spo_vae_decode(v, img, lat + nl / 2, 1, h, w), SPO_OK);
    assert_true(rel_l2(img, want + ni / 2, ni / 2) <= 1e-4);
    free(img);
    free(lat);
    free(want);
    spo_vae_free(v);
    spo_dev_close(dev);
}

static void test_parity(void **state) { parity("tiny-sd/vae", "/vae/image"); }
static void test_parity_legacy(void **state) { parity("tiny-vae-legacy", "/vae/image_legacy"); }

/* ---- load errors on written files -------------------------------------- */

static void resnet(tlist *l, const char *pre, int cin, int cout)
{
    tl_add(l, 1, cin, 0, 0, 0, "%s.norm1.weight", pre);
    tl_add(l, 1, cin, 0, 0, 0, "%s.norm1.bias", pre);
    tl_add(l, 4, cout, cin, 3, 3, "%s.conv1.weight", pre);
    tl_add(l, 1, cout, 0, 0, 0, "%s.conv1.bias", pre);
    tl_add(l, 1, cout, 0, 0, 0, "%s.norm2.weight", pre);
    tl_add(l, 1, cout, 0, 0, 0, "%s.norm2.bias", pre);
    tl_add(l, 4, cout, cout, 3, 3, "%s.conv2.weight", pre);
    tl_add(l, 1, cout, 0, 0, 0, "%s.conv2.bias", pre);
}

/* the tensors of a one-block decoder of 8 channels, layers_per_block 0 */
static void small_vae(tlist *l, int legacy_conv)
{
    l->n = 0;
    tl_add(l, 4, 4, 4, 1, 1, "post_quant_conv.weight");
    tl_add(l, 1, 4, 0, 0, 0, "post_quant_conv.bias");
    tl_add(l, 4, 8, 4, 3, 3, "decoder.conv_in.weight");
    tl_add(l, 1, 8, 0, 0, 0, "decoder.conv_in.bias");
    resnet(l, "decoder.mid_block.resnets.0", 8, 8);
    resnet(l, "decoder.mid_block.resnets.1", 8, 8);
    tl_add(l, 1, 8, 0, 0, 0, "decoder.mid_block.attentions.0.group_norm.weight");
    tl_add(l, 1, 8, 0, 0, 0, "decoder.mid_block.attentions.0.group_norm.bias");
    const char *nm[4] = {"to_q", "to_k", "to_v", "to_out.0"}, *old[4] = {"query", "key", "value", "proj_attn"};
    for (int i = 0; i < 4; i++) {
        const char *s = legacy_conv ? old[i] : nm[i];
        tl_add(l, legacy_conv ? 4 : 2, 8, 8, 1, 1, "decoder.mid_block.attentions.0.%s.weight", s);
        tl_add(l, 1, 8, 0, 0, 0, "decoder.mid_block.attentions.0.%s.bias", s);
    }
    resnet(l, "decoder.up_blocks.0.resnets.0", 8, 8);
    tl_add(l, 1, 8, 0, 0, 0, "decoder.conv_norm_out.weight");
    tl_add(l, 1, 8, 0, 0, 0, "decoder.conv_norm_out.bias");
    tl_add(l, 4, 3, 8, 3, 3, "decoder.conv_out.weight");
    tl_add(l, 1, 3, 0, 0, 0, "decoder.conv_out.bias");
    /* the encoder half is ignored */
    tl_add(l, 4, 8, 3, 3, 3, "encoder.conv_in.weight");
    tl_add(l, 4, 8, 8, 1, 1, "quant_conv.weight");
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

static const char *SMALL = "{\"_class_name\":\"AutoencoderKL\",\"block_out_channels\":[8],"
                           "\"up_block_types\":[\"UpDecoderBlock2D\"],\"layers_per_block\":0,"
                           "\"latent_channels\":4,\"norm_num_groups\":4,\"scaling_factor\":0.5}";

/* load tmpdir; returns rc, the message in msg */
static int try_load(const tlist *l, char *msg, size_t n)
{
    char p[400];
    snprintf(p, sizeof p, "%s/diffusion_pytorch_model.safetensors", tmpdir);
    write_st(p, l);
    spo_dev *dev;
    spo_vae *v = NULL;
    assert_int_equal(spo_dev_open(&dev, SPO_DEV_CPU, 1), SPO_OK);
    int rc = spo_vae_load(&v, tmpdir, dev);
    snprintf(msg, n, "%s", rc ? spo_errmsg() : "");
    if (rc) printf("  expected error: %s\n", msg);
    if (!rc) {
        /* a zero decoder decodes to conv_out's bias: zeros */
        float lat[4 * 2 * 2] = {1}, img[3 * 2 * 2] = {1};
        assert_int_equal(spo_vae_decode(v, img, lat, 1, 2, 2), SPO_OK);
        for (int i = 0; i < 12; i++) assert_true(img[i] == 0);
    }
    spo_vae_free(v);
    spo_dev_close(dev);
    return rc;
}

static void test_load_errors(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/spo_test_vae_XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    tlist *l = malloc(sizeof *l);
    char msg[512];
    write_config(SMALL);

    small_vae(l, 0);
    assert_int_equal(try_load(l, msg, sizeof msg), SPO_OK);
    small_vae(l, 1); /* legacy names, 1x1-conv shaped */
    assert_int_equal(try_load(l, msg, sizeof msg), SPO_OK);

    small_vae(l, 0); /* wrong shape */
    l->t[2].shape[1] = 5;
    assert_int_equal(try_load(l, msg, sizeof msg), SPO_EINVAL);
    assert_non_null(strstr(msg, "'decoder.conv_in.weight'"));

    small_vae(l, 0); /* extra unit dims are accepted only for the attention linears */
    l->t[1].nd = 2, l->t[1].shape[1] = 1;
    assert_int_equal(try_load(l, msg, sizeof msg), SPO_EINVAL);
    assert_non_null(strstr(msg, "'post_quant_conv.bias'"));

    small_vae(l, 0); /* missing */
    l->t[3] = l->t[--l->n];
    assert_int_equal(try_load(l, msg, sizeof msg), SPO_EINVAL);
    assert_non_null(strstr(msg, "'decoder.conv_in.bias'"));

    small_vae(l, 0); /* unexpected */
    tl_add(l, 1, 8, 0, 0, 0, "decoder.up_blocks.0.upsamplers.0.conv.bias");
    assert_int_equal(try_load(l, msg, sizeof msg), SPO_EINVAL);
    assert_non_null(strstr(msg, "'decoder.up_blocks.0.upsamplers.0.conv.bias'"));

    small_vae(l, 0); /* both namings at once */
    tl_add(l, 1, 8, 0, 0, 0, "decoder.mid_block.attentions.0.query.bias");
    assert_int_equal(try_load(l, msg, sizeof msg), SPO_EINVAL);
    assert_non_null(strstr(msg, "to_q.bias"));

    /* config errors name the key */
    small_vae(l, 0);
    write_config("{\"block_out_channels\":[8],\"up_block_types\":[\"UpBlock2D\"],\"norm_num_groups\":4}");
    assert_int_equal(try_load(l, msg, sizeof msg), SPO_EINVAL);
    assert_non_null(strstr(msg, "up_block_types"));
    write_config("{\"block_out_channels\":[8],\"up_block_types\":[\"UpDecoderBlock2D\"],\"norm_num_groups\":3}");
    assert_int_equal(try_load(l, msg, sizeof msg), SPO_EINVAL);
    assert_non_null(strstr(msg, "norm_num_groups"));
    write_config("{\"block_out_channels\":[8],\"up_block_types\":[\"UpDecoderBlock2D\"],\"act_fn\":\"gelu\"}");
    assert_int_equal(try_load(l, msg, sizeof msg), SPO_EINVAL);
    assert_non_null(strstr(msg, "act_fn"));

    char p[400];
    snprintf(p, sizeof p, "%s/diffusion_pytorch_model.safetensors", tmpdir);
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
        cmocka_unit_test(test_parity_legacy),
        cmocka_unit_test(test_load_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
