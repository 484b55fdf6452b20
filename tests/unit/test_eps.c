/* test_eps.c — the norm eps of the UNet, the VAE decoder and the CLIP text
 * encoder, against diffusers 0.26.1 / transformers 4.40.1 on models whose
 * norms see tiny variances (tests/fixtures/eps, written by
 * tests/reference/eps_fixtures.py: copies of tiny-sd with every residual
 * stream scaled by 1e-2 or 3e-3, saved in float16). On these a wrong eps in
 * any group of norms (UNet resnets and conv_norm_out 1e-5, Transformer2D
 * GroupNorm 1e-6, transformer-block LayerNorms 1e-5; VAE GroupNorms 1e-6;
 * CLIP LayerNorms 1e-5) moves the output by 0.0127 relative L2 or more
 * (the fixture's /sens, checked here to stay above 1e-3), while the right
 * eps matches at ~1e-6. Tolerance: relative L2 error 1e-4. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "nn/clip_text.h"
#include "nn_testutil.h"
#include "nn/unet.h"
#include "nn/vae.h"

#define TOL 1e-4

static char root[1024];
static spo_dev *dev;

/* path of rel under tests/fixtures/eps (four rotating buffers) */
static const char *fix(const char *rel)
{
    static char b[4][1200];
    static int i;
    i = (i + 1) % 4;
    snprintf(b[i], sizeof b[i], "%s/tests/fixtures/eps/%s", root, rel);
    return b[i];
}

static float *floats(const char *name, size_t *n)
{
    float *v = h5_floats(fix("parity.h5"), name, n);
    if (!v) fail_msg("eps/parity.h5 has no dataset %s", name);
    return v;
}

#define CHECK_OK(x)                                                                                               \
    do {                                                                                                          \
        int rc_ = (x);                                                                                            \
        if (rc_) fail_msg("%s: rc %d: %s", #x, rc_, spo_errmsg());                                                \
    } while (0)

/* the fixture itself must stay eps-sensitive: each /sens/<model>/<group>
 * (relative change of the output with that group's eps wrong) above 1e-3 */
static void test_fixture_sensitive(void **st)
{
    (void)st;
    static const char *sens[] = {
        "unet/resnet.norm1", "unet/resnet.norm2",  "unet/conv_norm_out",        "unet/transformer.norm",
        "unet/block.norm1",  "unet/block.norm2",   "unet/block.norm3",          "vae/resnet.norm1",
        "vae/resnet.norm2",  "vae/conv_norm_out",  "vae/attention.group_norm", "text/layer_norm1",
        "text/layer_norm2",  "text/final_layer_norm",
    };
    for (size_t i = 0; i < sizeof sens / sizeof *sens; i++) {
        char nm[128];
        size_t n = 0;
        snprintf(nm, sizeof nm, "/sens/%s", sens[i]);
        double *v = h5_read(fix("parity.h5"), nm, &n, H5T_NATIVE_DOUBLE, sizeof(double));
        if (!v) fail_msg("eps/parity.h5 has no dataset %s", nm);
        for (size_t k = 0; k < n; k++) {
            if (!(v[k] > 1e-3)) fail_msg("%s: a wrong eps moves the output by only %.3g", nm, v[k]);
        }
        free(v);
    }
}

static void test_unet(void **st)
{
    (void)st;
    spo_unet *u;
    CHECK_OK(spo_unet_load(&u, fix("unet"), dev));
    const spo_unet_config *c = spo_unet_cfg(u);
    size_t nx = 0, nt = 0, nc = 0, nr = 0;
    float *x = floats("/unet/sample", &nx), *t = floats("/unet/timestep", &nt);
    float *ctx = floats("/unet/context", &nc), *ref = floats("/unet/out", &nr);
    int n = (int)nt, hw = 16, L = (int)(nc / nt / (size_t)c->cross_dim);
    assert_int_equal(nx, (size_t)n * c->in_channels * hw * hw);
    assert_int_equal(nr, (size_t)n * c->out_channels * hw * hw);
    float *dx = spo_dev_alloc(dev, nx), *dt = spo_dev_alloc(dev, nt), *dc = spo_dev_alloc(dev, nc);
    float *dout = spo_dev_alloc(dev, nr), *out = malloc(nr * sizeof *out);
    assert_true(dx && dt && dc && dout && out);
    CHECK_OK(spo_dev_upload(dev, dx, x, nx));
    CHECK_OK(spo_dev_upload(dev, dt, t, nt));
    CHECK_OK(spo_dev_upload(dev, dc, ctx, nc));
    for (int train = 0; train < 2; train++) {
        CHECK_OK(spo_unet_forward(u, dout, dx, dt, dc, n, hw, hw, L, train));
        CHECK_OK(spo_dev_download(dev, out, dout, nr));
        double e = rel_l2(out, ref, nr);
        print_message("unet (train %d): rel L2 %.3g\n", train, e);
        assert_true(e <= TOL);
    }
    spo_dev_free(dev, dx), spo_dev_free(dev, dt), spo_dev_free(dev, dc), spo_dev_free(dev, dout);
    free(x), free(t), free(ctx), free(ref), free(out);
    spo_unet_free(u);
}

static void test_vae(void **st)
{
    (void)st;
    spo_vae *v;
    CHECK_OK(spo_vae_load(&v, fix("vae"), dev));
    size_t nl = 0, ni = 0;
    float *lat = floats("/vae/latents", &nl), *ref = floats("/vae/image", &ni);
    int f = spo_vae_factor(v), batch = 2, h = 16, w = 16;
    assert_int_equal(nl, (size_t)batch * spo_vae_cfg(v)->latent_channels * h * w);
    assert_int_equal(ni, (size_t)batch * 3 * h * f * w * f);
    float *img = malloc(ni * sizeof *img);
    assert_non_null(img);
    CHECK_OK(spo_vae_decode(v, img, lat, batch, h, w));
    double e = rel_l2(img, ref, ni);
    print_message("vae: rel L2 %.3g\n", e);
    assert_true(e <= TOL);
    free(lat), free(ref), free(img);
    spo_vae_free(v);
}

static void test_text(void **st)
{
    (void)st;
    spo_clip_text *m;
    CHECK_OK(spo_clip_text_load(&m, fix("text_encoder"), dev));
    size_t nid = 0, nh = 0, np = 0;
    int32_t *ids = h5_ints(fix("parity.h5"), "/text/ids", &nid);
    assert_non_null(ids);
    float *ref_h = floats("/text/last_hidden_state", &nh), *ref_p = floats("/text/pooled", &np);
    int C = spo_clip_text_cfg(m)->dim, len = 77, batch = (int)(nid / len);
    assert_int_equal(nh, (size_t)batch * len * C);
    assert_int_equal(np, (size_t)batch * C);
    float *hid = malloc(nh * sizeof *hid), *pool = malloc(np * sizeof *pool);
    assert_true(hid && pool);
    CHECK_OK(spo_clip_text_forward(m, hid, pool, ids, batch, len));
    double eh = rel_l2(hid, ref_h, nh), ep = rel_l2(pool, ref_p, np);
    print_message("text: last_hidden_state rel L2 %.3g, pooled %.3g\n", eh, ep);
    assert_true(eh <= TOL);
    assert_true(ep <= TOL);
    free(ids), free(ref_h), free(ref_p), free(hid), free(pool);
    spo_clip_text_free(m);
}

static int setup(void **st)
{
    (void)st;
    const char *r = getenv("SPO_ROOT");
    snprintf(root, sizeof root, "%s", r ? r : ".");
    return spo_dev_open(&dev, SPO_DEV_CPU, 2) ? -1 : 0;
}

static int teardown(void **st)
{
    (void)st;
    spo_dev_close(dev);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_sensitive),
        cmocka_unit_test(test_unet),
        cmocka_unit_test(test_vae),
        cmocka_unit_test(test_text),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
