/* test_unet_sdxl.c — the SDXL UNet against diffusers 0.26.1 + peft 0.10.0
 * (tests/fixtures/tiny-sdxl/unet and unet_parity.h5, written by
 * tests/reference/tiny_sdxl_unet.py): a tiny model with every SDXL
 * feature (addition_embed_type "text_time", per-level transformer depths
 * and head counts, linear projections, no attention at level 0, a 64-wide
 * context) on non-square 8x12 latents. Forward without the LoRA, then with
 * the LoRA of the official SDXL script (to_q, to_k, to_v, to_out.0 of
 * every attention) attached as spo-step-update attaches it, the backward
 * to the sample, the context and every A and B; the added-conditioning
 * refusals; the full-size (256) time-id sinusoid; and SDXL base's own config (tensor and parameter counts, the
 * arena plan at 128x128). Tolerance: relative L2 error 1e-4. Fixtures are
 * found under $SPO_ROOT (default: the current directory). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "testdev.h"
#include "nn_testutil.h"
#include "nn/lora.h"
#include "nn/lora_train.h"
#include "nn/mkmodel.h"
#include "nn/unet.h"

static float *ref(const char *name, size_t *n)
{
    float *v = h5_floats(fix("tiny-sdxl/unet_parity.h5"), name, n);
    if (!v) fail_msg("tiny-sdxl/unet_parity.h5 has no dataset %s (rerun tests/reference/tiny_sdxl_unet.py)", name);
    return v;
}

/* the strings of /lora/modules (h5py writes them variable-length): *n names,
 * a malloc'd array of malloc'd strings */
static char **ref_names(const char *name, int *n)
{
    hid_t f = H5Fopen(fix("tiny-sdxl/unet_parity.h5"), H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT), s = H5Dget_space(d);
    assert_true(d >= 0);
    *n = (int)H5Sget_simple_extent_npoints(s);
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    char **raw = calloc((size_t)*n, sizeof *raw), **v = calloc((size_t)*n, sizeof *v);
    assert_true(H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) >= 0);
    for (int i = 0; i < *n; i++) v[i] = strdup(raw[i]);
    H5Dvlen_reclaim(mt, s, H5P_DEFAULT, raw);
    free(raw);
    H5Tclose(mt), H5Sclose(s), H5Dclose(d), H5Fclose(f);
    return v;
}

static float *dput(const float *h, size_t n)
{
    float *p = spo_dev_alloc(dev, n);
    assert_non_null(p);
    CHECK_OK(spo_dev_upload(dev, p, h, n));
    return p;
}

static float *dget(const float *p, size_t n)
{
    float *h = malloc(n * sizeof *h);
    CHECK_OK(spo_dev_download(dev, h, p, n));
    return h;
}

/* the fixture's inputs on the device */
enum { X, T, CTX, TEXT, IDS, NIN };
typedef struct {
    float *h[NIN], *d[NIN];
    size_t n[NIN];
    int nb, hh, ww, L;
} inputs;

static void inputs_load(inputs *in, const spo_unet_config *c)
{
    static const char *names[NIN] = {"/sample", "/timestep", "/context", "/text_embeds", "/time_ids"};
    for (int i = 0; i < NIN; i++) in->h[i] = ref(names[i], &in->n[i]), in->d[i] = dput(in->h[i], in->n[i]);
    in->nb = (int)in->n[T], in->hh = 8, in->ww = 12;
    assert_int_equal(in->n[X], (size_t)in->nb * c->in_channels * 8 * 12); /* non-square: the fixture's 8x12 */
    in->L = (int)(in->n[CTX] / in->nb / c->cross_dim);
    assert_int_equal(in->n[TEXT], (size_t)in->nb * c->add_text_dim);
    assert_int_equal(in->n[IDS], (size_t)in->nb * c->add_ntime);
}

static void inputs_free(inputs *in)
{
    for (int i = 0; i < NIN; i++) free(in->h[i]), spo_dev_free(dev, in->d[i]);
}

/* host output of one forward */
static float *forward(spo_unet *u, const inputs *in, int train, size_t *no)
{
    *no = in->n[X];
    float *d = spo_dev_alloc(dev, *no);
    CHECK_OK(spo_unet_forward_added(u, d, in->d[X], in->d[T], in->d[CTX], in->d[TEXT], in->d[IDS], in->nb, in->hh,
                                    in->ww, in->L, train));
    float *h = dget(d, *no);
    spo_dev_free(dev, d);
    return h;
}

static void test_config_tiny(void **st)
{
    spo_unet_config c;
    CHECK_OK(spo_unet_config_load(&c, fix("tiny-sdxl/unet/config.json")));
    assert_int_equal(c.nblocks, 3);
    assert_int_equal(c.down_attn[0], 0), assert_int_equal(c.down_attn[1], 1), assert_int_equal(c.down_attn[2], 1);
    assert_int_equal(c.up_attn[0], 1), assert_int_equal(c.up_attn[2], 0);
    assert_int_equal(c.tlayers[1], 1), assert_int_equal(c.tlayers[2], 2), assert_int_equal(c.heads[2], 4);
    assert_int_equal(c.linear_proj, 1);
    assert_int_equal(c.cross_dim, 64);
    assert_int_equal(c.add_time_dim, 8), assert_int_equal(c.add_ntime, 6), assert_int_equal(c.add_text_dim, 32);
}

/* SDXL base's add_time_proj: 128 frequencies of time ids up to 1216, where
 * a float32 argument t * exp(e) is far from 0 and rounding would show */
static void test_time_proj_256(void **st)
{
    size_t ni, nw;
    float *ids = ref("/time_ids", &ni), *want = ref("/time_proj_256", &nw);
    assert_int_equal(nw, ni * 256);
    float *di = dput(ids, ni), *dy = spo_dev_alloc(dev, nw);
    CHECK_OK(spo_timestep_embed(dev, dy, di, (int)ni, 256, 1, 0.0f, 10000.0f));
    float *got = dget(dy, nw);
    double e = rel_l2(got, want, nw), m = 0;
    for (size_t i = 0; i < nw; i++) m = fmax(m, fabs((double)got[i] - want[i]));
    print_message("time ids through Timesteps(256): rel L2 %.3g, max abs %.3g\n", e, m);
    assert_true(e <= 1e-5);
    free(ids), free(want), free(got);
    spo_dev_free(dev, di), spo_dev_free(dev, dy);
}

/* without the LoRA: inference and train forwards */
static void test_forward(void **st)
{
    spo_unet *u;
    CHECK_OK(spo_unet_load(&u, fix("tiny-sdxl/unet"), dev));
    inputs in;
    inputs_load(&in, spo_unet_cfg(u));
    size_t nr, no;
    float *want = ref("/base/out", &nr);
    for (int train = 0; train < 2; train++) {
        float *got = forward(u, &in, train, &no);
        assert_int_equal(no, nr);
        double e = rel_l2(got, want, no);
        print_message("base forward, train %d: rel L2 %.3g\n", train, e);
        assert_true(e <= 1e-4);
        free(got);
    }
    /* the added conditioning matters: other time ids give another output */
    float ids2[12];
    memcpy(ids2, in.h[IDS], sizeof ids2);
    ids2[0] = 512;
    CHECK_OK(spo_dev_upload(dev, in.d[IDS], ids2, 12));
    float *got = forward(u, &in, 0, &no);
    double e = rel_l2(got, want, no);
    print_message("time id 0 = 512 instead of 1024: rel L2 %.3g from the reference\n", e);
    assert_true(e > 1e-3);
    free(got), free(want);
    inputs_free(&in);
    spo_unet_free(u);
}

/* the fixture's LoRA in spo's module order; grads too when gd, gu */
static void lora_from_fixture(spo_lora *l, spo_unet *u, const char *down, const char *up, double *scale_out)
{
    int nm;
    char **names = ref_names("/lora/modules", &nm);
    size_t nd, nu;
    float *a = ref(down, &nd), *b = ref(up, &nu);
    int rank = 8;
    CHECK_OK(spo_lora_new(l, u, rank, (float)rank, 1, "test"));
    assert_int_equal(l->n, nm); /* the same targets as peft's target_modules */
    size_t oa = 0, ob = 0;
    for (int i = 0; i < nm; i++) {
        int k = 0;
        while (k < l->n && strcmp(l->m[k].name, names[i])) k++;
        if (k == l->n) fail_msg("peft's module %s is not a spo LoRA target", names[i]);
        spo_lora_module *m = &l->m[k];
        memcpy(m->down, a + oa, (size_t)rank * m->in * sizeof *a);
        memcpy(m->up, b + ob, (size_t)rank * m->out * sizeof *b);
        oa += (size_t)rank * m->in, ob += (size_t)rank * m->out;
        free(names[i]);
    }
    assert_int_equal(oa, nd), assert_int_equal(ob, nu);
    free(names), free(a), free(b);
    if (scale_out) *scale_out = l->alpha / l->rank;
}

/* with the LoRA: forward, backward to sample, context, A and B; then off */
static void test_lora(void **st)
{
    spo_unet *u;
    CHECK_OK(spo_unet_load(&u, fix("tiny-sdxl/unet"), dev));
    const spo_unet_config *c = spo_unet_cfg(u);
    inputs in;
    inputs_load(&in, c);
    spo_lora l, g;
    lora_from_fixture(&l, u, "/lora/down", "/lora/up", NULL);
    lora_from_fixture(&g, u, "/lora/grad_down", "/lora/grad_up", NULL); /* the expected grads, spo's order */
    spo_lora_train *t;
    CHECK_OK(spo_lora_train_new(&t, u, &l));

    size_t nr, nw, no, nds, ndc;
    float *want = ref("/lora/out", &nr), *w = ref("/lora/w", &nw);
    float *wds = ref("/lora/dsample", &nds), *wdc = ref("/lora/dcontext", &ndc);
    float *got = forward(u, &in, 1, &no);
    double eo = rel_l2(got, want, no);
    free(got);
    float *dw = dput(w, nw), *gx = spo_dev_alloc(dev, nds), *gc = spo_dev_alloc(dev, ndc);
    CHECK_OK(spo_dev_zero(dev, gx, nds));
    CHECK_OK(spo_dev_zero(dev, gc, ndc));
    CHECK_OK(spo_unet_backward(u, gx, gc, dw));
    float *hx = dget(gx, nds), *hc = dget(gc, ndc);
    double ex = rel_l2(hx, wds, nds), ec = rel_l2(hc, wdc, ndc);

    size_t ng = spo_lora_train_numel(t);
    float *flat = malloc(ng * sizeof *flat), *wflat = malloc(ng * sizeof *wflat);
    CHECK_OK(spo_lora_train_grad(t, flat));
    spo_lora_pack(&g, wflat);
    /* A and B apart: dA (r,in) then dB (out,r) per module */
    double ea_num = 0, ea_den = 0, eb_num = 0, eb_den = 0, worst = 0;
    size_t off = 0;
    const char *worst_m = "";
    for (int i = 0; i < g.n; i++) {
        size_t na = (size_t)g.rank * g.m[i].in, nb = (size_t)g.rank * g.m[i].out;
        double mn = 0, md = 0;
        for (size_t k = 0; k < na + nb; k++) {
            double d = (double)flat[off + k] - wflat[off + k], r = wflat[off + k];
            if (k < na) ea_num += d * d, ea_den += r * r;
            else eb_num += d * d, eb_den += r * r;
            mn += d * d, md += r * r;
        }
        double em = sqrt(mn / (md > 0 ? md : 1));
        if (em > worst) worst = em, worst_m = g.m[i].name;
        off += na + nb;
    }
    assert_int_equal(off, ng);
    double ea = sqrt(ea_num / ea_den), eb = sqrt(eb_num / eb_den);
    print_message("LoRA r 8 on %d modules: out %.3g dsample %.3g dcontext %.3g dA %.3g dB %.3g (rel L2); "
                  "worst module %.3g (%s)\n", l.n, eo, ex, ec, ea, eb, worst, worst_m);
    assert_true(eo <= 1e-4), assert_true(ex <= 1e-4), assert_true(ec <= 1e-4);
    assert_true(ea <= 1e-4), assert_true(eb <= 1e-4), assert_true(worst <= 1e-3);

    /* the reference pass (LoRA off) is the base model */
    float *base = ref("/base/out", &nr);
    spo_unet_lora_enable(u, 0);
    got = forward(u, &in, 1, &no);
    double e0 = rel_l2(got, base, no);
    print_message("LoRA disabled: rel L2 %.3g from the base output\n", e0);
    assert_true(e0 <= 1e-4);
    spo_unet_lora_enable(u, 1);

    free(got), free(base), free(want), free(w), free(wds), free(wdc), free(hx), free(hc), free(flat), free(wflat);
    spo_dev_free(dev, dw), spo_dev_free(dev, gx), spo_dev_free(dev, gc);
    spo_lora_train_free(t);
    spo_lora_free(&l), spo_lora_free(&g);
    inputs_free(&in);
    spo_unet_free(u);
}

/* the added conditioning is required exactly when the model has it */
static void test_added_refusals(void **st)
{
    spo_unet *xl, *sd;
    CHECK_OK(spo_unet_load(&xl, fix("tiny-sdxl/unet"), dev));
    CHECK_OK(spo_unet_load(&sd, fix("tiny-sd/unet"), dev));
    float *x = spo_dev_alloc(dev, 4096), *o = spo_dev_alloc(dev, 4096);
    CHECK_OK(spo_dev_zero(dev, x, 4096));
    assert_int_equal(spo_unet_forward(xl, o, x, x, x, 1, 8, 8, 3, 0), SPO_EINVAL);
    print_message("no added conditioning: %s\n", spo_errmsg());
    assert_non_null(strstr(spo_errmsg(), "text_time"));
    assert_int_equal(spo_unet_forward_added(xl, o, x, x, x, x, NULL, 1, 8, 8, 3, 0), SPO_EINVAL);
    assert_int_equal(spo_unet_forward_added(sd, o, x, x, x, x, x, 1, 8, 8, 3, 0), SPO_EINVAL);
    print_message("SD v1.5 with added conditioning: %s\n", spo_errmsg());
    CHECK_OK(spo_unet_forward_added(sd, o, x, x, x, NULL, NULL, 1, 8, 8, 3, 0));
    CHECK_OK(spo_unet_forward_added(xl, o, x, x, x, x, x, 1, 8, 8, 3, 0));
    spo_dev_free(dev, x), spo_dev_free(dev, o);
    spo_unet_free(xl), spo_unet_free(sd);

    static const struct { const char *json, *key; } bad[] = {
        {"{\"addition_embed_type\": \"text\"}", "addition_embed_type"},
        {"{\"addition_embed_type\": \"text_time\", \"projection_class_embeddings_input_dim\": 2816}",
         "addition_time_embed_dim"},
        {"{\"addition_embed_type\": \"text_time\", \"addition_time_embed_dim\": 256}",
         "projection_class_embeddings_input_dim"},
        {"{\"addition_embed_type\": \"text_time\", \"addition_time_embed_dim\": 256,"
         " \"projection_class_embeddings_input_dim\": 1536}", "projection_class_embeddings_input_dim"},
        {"{\"addition_embed_type\": \"text_time\", \"addition_time_embed_dim\": 0,"
         " \"projection_class_embeddings_input_dim\": 1536}", "addition_time_embed_dim"},
        {"{\"addition_time_embed_dim\": 256}", "addition_time_embed_dim"},
        {"{\"addition_embed_type\": \"text_time\", \"addition_time_embed_dim\": 2147483647,"
         " \"projection_class_embeddings_input_dim\": 2816}", "'addition_time_embed_dim'=2147483647"},
        {"{\"addition_embed_type\": \"text_time\", \"addition_time_embed_dim\": 256,"
         " \"projection_class_embeddings_input_dim\": 1e300}", "projection_class_embeddings_input_dim"},
        {"{\"addition_embed_type\": \"text_time\", \"addition_time_embed_dim\": 256,"
         " \"projection_class_embeddings_input_dim\": 393217}", "projection_class_embeddings_input_dim"},
    };
    spo_unet_config c;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(spo_unet_config_parse(&c, bad[i].json), SPO_EINVAL);
        if (!strstr(spo_errmsg(), bad[i].key)) fail_msg("'%s' gave '%s'", bad[i].json, spo_errmsg());
    }
}

/* stabilityai/stable-diffusion-xl-base-1.0's UNet: its layout, from its config */
static void test_sdxl_base(void **st)
{
    const char *json = spo_mkmodel_unet_config("sdxl");
    assert_non_null(json);
    assert_null(spo_mkmodel_unet_config("sdxl-nope"));
    spo_unet_config c;
    CHECK_OK(spo_unet_config_parse(&c, json));
    assert_int_equal(c.nblocks, 3);
    assert_int_equal(c.heads[0], 5), assert_int_equal(c.heads[1], 10), assert_int_equal(c.heads[2], 20);
    assert_int_equal(c.tlayers[0], 1), assert_int_equal(c.tlayers[1], 2), assert_int_equal(c.tlayers[2], 10);
    assert_int_equal(c.cross_dim, 2048);
    assert_int_equal(c.add_time_dim, 256), assert_int_equal(c.add_text_dim, 1280);
    spo_unet *u;
    CHECK_OK(spo_unet_create(&u, &c, NULL)); /* the table only: diffusers has 1680 tensors, 2,567,463,684 parameters */
    size_t total = 0;
    for (int i = 0; i < spo_unet_params(u)->n; i++) total += spo_unet_params(u)->p[i].numel;
    print_message("SDXL base UNet: %d tensors, %zu parameters\n", spo_unet_params(u)->n, total);
    assert_int_equal(spo_unet_params(u)->n, 1680);
    assert_int_equal(total, 2567463684u);
    spo_lora l;
    CHECK_OK(spo_lora_targets(&l, u));
    print_message("  LoRA targets (to_q, to_k, to_v, to_out.0): %d\n", l.n);
    /* 8 per transformer layer: down 2x2 + 2x10, mid 10, up 3x10 + 3x2 = 70 layers */
    assert_int_equal(l.n, 8 * (2 * 2 + 2 * 10 + 10 + 3 * 10 + 3 * 2));
    spo_lora_free(&l);
    size_t fi, ft, bt;
    CHECK_OK(spo_unet_plan_bytes(u, 4, 128, 128, 77, 0, &fi, NULL));
    CHECK_OK(spo_unet_plan_bytes(u, 2, 128, 128, 77, 1, &ft, &bt));
    print_message("  128x128 latents: inference batch 4 (2 with guidance) %zu MiB; train batch 2 %zu + %zu MiB\n",
                  fi >> 20, ft >> 20, bt >> 20);
    spo_unet_set_attn_recompute(u, 1);
    CHECK_OK(spo_unet_plan_bytes(u, 2, 128, 128, 77, 1, &ft, &bt));
    print_message("  recomputing attention probabilities: train batch 2 %zu + %zu MiB\n", ft >> 20, bt >> 20);
    spo_unet_free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_tiny), cmocka_unit_test(test_time_proj_256), cmocka_unit_test(test_forward),   cmocka_unit_test(test_lora),
        cmocka_unit_test(test_added_refusals), cmocka_unit_test(test_sdxl_base),
    };
    return cmocka_run_group_tests(tests, dev_setup, dev_teardown);
}
