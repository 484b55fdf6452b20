/* test_unet.c — the UNet against diffusers 0.26.1 (tests/fixtures/
 * tiny_sd_parity.h5, written by tests/reference/tiny_sd_fixtures.py):
 * forward on /unet/case0..3 and the fp16-weight model, backward to the
 * sample and the context on /unet/grad (L = sum(out * w)), a finite
 * difference check of the backward, load errors naming the tensor (bad
 * safetensors files written here), config refusals and arena reuse; and
 * two small config variants (tests/fixtures/unet-variants).
 * Tolerance: relative L2 error 1e-4. Fixtures are found under $SPO_ROOT
 * (default: the current directory). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testdev.h"
#include "nn/params.h"
#include "ckpt/safetensors.h"
#include "nn/unet.h"

/* ---- HDF5 reading ---------------------------------------------------------- */
/* read dataset `name` of fixture file `file` as float (int64 converted); *n = elements */
static float *h5_read_from(const char *file, const char *name, size_t *n)
{
    hid_t f = H5Fopen(fix(file), H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0) fail_msg("fixture has no dataset %s", name);
    hid_t sp = H5Dget_space(ds);
    hssize_t cnt = H5Sget_simple_extent_npoints(sp);
    assert_true(cnt > 0);
    float *v = malloc((size_t)cnt * sizeof *v);
    hid_t ty = H5Dget_type(ds);
    if (H5Tget_class(ty) == H5T_INTEGER) {
        int64_t *iv = malloc((size_t)cnt * sizeof *iv);
        assert_true(H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, iv) >= 0);
        for (hssize_t i = 0; i < cnt; i++) v[i] = (float)iv[i];
        free(iv);
    } else {
        assert_true(H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    }
    H5Tclose(ty), H5Sclose(sp), H5Dclose(ds), H5Fclose(f);
    *n = (size_t)cnt;
    return v;
}

static float *h5_read(const char *name, size_t *n) { return h5_read_from("tiny_sd_parity.h5", name, n); }

static float *dput(const float *h, size_t n)
{
    float *p = spo_dev_alloc(dev, n);
    assert_non_null(p);
    assert_int_equal(spo_dev_upload(dev, p, h, n), SPO_OK);
    return p;
}

static float *dget(const float *p, size_t n)
{
    float *h = malloc(n * sizeof *h);
    assert_int_equal(spo_dev_download(dev, h, p, n), SPO_OK);
    return h;
}

static double rel_l2(const float *a, const float *ref, size_t n)
{
    double e = 0, r = 0;
    for (size_t i = 0; i < n; i++) e += ((double)a[i] - ref[i]) * ((double)a[i] - ref[i]), r += (double)ref[i] * ref[i];
    return sqrt(e / (r > 0 ? r : 1));
}

/* run the UNet on fixture group g (sample, timestep, context); returns host output */
static float *run_case(spo_unet *u, const char *g, int train, size_t *nout)
{
    char nm[256];
    size_t nx, nt, nc;
    snprintf(nm, sizeof nm, "%s/sample", g);
    float *x = h5_read(nm, &nx);
    snprintf(nm, sizeof nm, "%s/timestep", g);
    float *t = h5_read(nm, &nt);
    snprintf(nm, sizeof nm, "%s/context", g);
    float *c = h5_read(nm, &nc);
    int n = (int)nt, cin = spo_unet_cfg(u)->in_channels, hw = (int)sqrt((double)(nx / n / cin));
    int L = (int)(nc / n / spo_unet_cfg(u)->cross_dim);
    float *dx = dput(x, nx), *dt = dput(t, nt), *dc = dput(c, nc);
    *nout = (size_t)n * spo_unet_cfg(u)->out_channels * hw * hw;
    float *dout = spo_dev_alloc(dev, *nout);
    CHECK_OK(spo_unet_forward(u, dout, dx, dt, dc, n, hw, hw, L, train));
    float *out = dget(dout, *nout);
    spo_dev_free(dev, dx), spo_dev_free(dev, dt), spo_dev_free(dev, dc), spo_dev_free(dev, dout);
    free(x), free(t), free(c);
    return out;
}

static void test_forward_cases(void **st)
{
    spo_unet *u;
    CHECK_OK(spo_unet_load(&u, fix("tiny-sd/unet"), dev));
    for (int i = 0; i < 4; i++) {
        char g[64], nm[128];
        size_t n, nr;
        snprintf(g, sizeof g, "/unet/case%d", i);
        snprintf(nm, sizeof nm, "%s/out", g);
        float *ref = h5_read(nm, &nr);
        for (int train = 0; train < 2; train++) {
            float *out = run_case(u, g, train, &n);
            assert_int_equal(n, nr);
            double e = rel_l2(out, ref, n);
            print_message("case%d train %d: rel L2 %.3g\n", i, train, e);
            assert_true(e <= 1e-4);
            free(out);
        }
        free(ref);
    }
    spo_unet_free(u);
}

static void test_forward_fp16(void **st)
{
    spo_unet *u;
    size_t n, nr;
    CHECK_OK(spo_unet_load(&u, fix("tiny-sd-fp16/unet"), dev));
    float *out = run_case(u, "/unet/case0", 0, &n);
    float *ref = h5_read("/unet/fp16/out", &nr);
    assert_int_equal(n, nr);
    double e = rel_l2(out, ref, n);
    float *r32 = h5_read("/unet/case0/out", &nr);
    print_message("fp16 weights: rel L2 %.3g to fp16 reference, %.3g to fp32 output\n", e, rel_l2(out, r32, n));
    assert_true(e <= 1e-4);
    assert_true(rel_l2(out, r32, n) < 1e-2);
    free(out), free(ref), free(r32);
    spo_unet_free(u);
}

static void test_backward(void **st)
{
    spo_unet *u;
    CHECK_OK(spo_unet_load(&u, fix("tiny-sd/unet"), dev));
    size_t nx, nt, nc, nw, no, nds, ndc;
    float *x = h5_read("/unet/grad/sample", &nx), *t = h5_read("/unet/grad/timestep", &nt);
    float *c = h5_read("/unet/grad/context", &nc), *w = h5_read("/unet/grad/w", &nw);
    float *oref = h5_read("/unet/grad/out", &no), *dsref = h5_read("/unet/grad/dsample", &nds);
    float *dcref = h5_read("/unet/grad/dcontext", &ndc);
    int n = (int)nt, hw = 16, L = (int)(nc / n / spo_unet_cfg(u)->cross_dim);
    float *dx = dput(x, nx), *dt = dput(t, nt), *dc = dput(c, nc), *dw = dput(w, nw);
    float *dout = spo_dev_alloc(dev, no), *gx = spo_dev_alloc(dev, nx), *gc = spo_dev_alloc(dev, nc);
    CHECK_OK(spo_unet_forward(u, dout, dx, dt, dc, n, hw, hw, L, 1));
    /* the caller may overwrite its inputs after forward: the model keeps copies */
    CHECK_OK(spo_dev_zero(dev, dx, nx));
    CHECK_OK(spo_dev_zero(dev, dc, nc));
    CHECK_OK(spo_unet_backward(u, gx, gc, dw));
    float *out = dget(dout, no), *hgx = dget(gx, nx), *hgc = dget(gc, nc);
    double eo = rel_l2(out, oref, no), ex = rel_l2(hgx, dsref, nx), ec = rel_l2(hgc, dcref, nc);
    print_message("grad: out %.3g dsample %.3g dcontext %.3g (rel L2)\n", eo, ex, ec);
    assert_true(eo <= 1e-4);
    assert_true(ex <= 1e-4);
    assert_true(ec <= 1e-4);

    /* recomputing the self-attention probabilities gives the same gradient */
    size_t f0, f1;
    spo_unet_arena_bytes(u, &f0, NULL);
    spo_unet_set_attn_recompute(u, 1);
    float *gx2 = spo_dev_alloc(dev, nx);
    CHECK_OK(spo_dev_upload(dev, dx, x, nx));
    CHECK_OK(spo_dev_upload(dev, dc, c, nc));
    size_t pf, pr;
    CHECK_OK(spo_unet_plan_bytes(u, n, hw, hw, L, 1, &pr, NULL));
    spo_unet_set_attn_recompute(u, 0);
    CHECK_OK(spo_unet_plan_bytes(u, n, hw, hw, L, 1, &pf, NULL));
    spo_unet_set_attn_recompute(u, 1);
    print_message("train forward arena: %zu B keeping attention probabilities, %zu B recomputing\n", pf, pr);
    assert_true(pr < pf);
    CHECK_OK(spo_unet_forward(u, dout, dx, dt, dc, n, hw, hw, L, 1));
    CHECK_OK(spo_unet_backward(u, gx2, NULL, dw));
    float *hgr = dget(gx2, nx);
    assert_true(rel_l2(hgr, hgx, nx) < 1e-6);
    spo_unet_arena_bytes(u, &f1, NULL);
    assert_true(f1 == f0); /* arenas never shrink */
    free(hgr);
    spo_dev_free(dev, gx2);
    spo_unet_set_attn_recompute(u, 0);
    CHECK_OK(spo_unet_forward(u, dout, dx, dt, dc, n, hw, hw, L, 1));

    /* backward accumulates: a second call doubles; dctx NULL is allowed */
    CHECK_OK(spo_unet_backward(u, gx, NULL, dw));
    float *hgx2 = dget(gx, nx);
    for (size_t i = 0; i < nx; i++) hgx[i] *= 2;
    assert_true(rel_l2(hgx2, hgx, nx) < 1e-6);

    free(out), free(hgx), free(hgc), free(hgx2);
    free(x), free(t), free(c), free(w), free(oref), free(dsref), free(dcref);
    spo_dev_free(dev, dx), spo_dev_free(dev, dt), spo_dev_free(dev, dc), spo_dev_free(dev, dw);
    spo_dev_free(dev, dout), spo_dev_free(dev, gx), spo_dev_free(dev, gc);
    spo_unet_free(u);
}

/* tests/fixtures/unet-variants (tests/reference/unet_variants.py): linear
 * projections, 2 transformer layers, per-block heads, 3 blocks, a plain
 * first block, odd channel counts, flip_sin_to_cos false, freq_shift 1,
 * non-square 16x24 latents, fractional timesteps, a 7-token context */
static void test_variants(void **st)
{
    static const char *names[] = {"lin", "mix"};
    for (int v = 0; v < 2; v++) {
        char dir[64], nm[64];
        spo_unet *u;
        snprintf(dir, sizeof dir, "unet-variants/%s", names[v]);
        CHECK_OK(spo_unet_load(&u, fix(dir), dev));
        const char *ds[7] = {"sample", "timestep", "context", "out", "w", "dsample", "dcontext"};
        float *h[7], *d[7];
        size_t n[7];
        for (int i = 0; i < 7; i++) {
            snprintf(nm, sizeof nm, "/%s/%s", names[v], ds[i]);
            h[i] = h5_read_from("unet-variants/unet_variants.h5", nm, &n[i]);
            d[i] = dput(h[i], n[i]);
        }
        CHECK_OK(spo_dev_zero(dev, d[5], n[5]));
        CHECK_OK(spo_dev_zero(dev, d[6], n[6]));
        CHECK_OK(spo_unet_forward(u, d[3], d[0], d[1], d[2], 2, 16, 24, 7, 1));
        CHECK_OK(spo_unet_backward(u, d[5], d[6], d[4]));
        double e[3];
        for (int i = 0; i < 3; i++) {
            int k = i ? 4 + i : 3;
            float *got = dget(d[k], n[k]);
            e[i] = rel_l2(got, h[k], n[k]);
            free(got);
        }
        print_message("%s: out %.3g dsample %.3g dcontext %.3g (rel L2)\n", names[v], e[0], e[1], e[2]);
        for (int i = 0; i < 3; i++) assert_true(e[i] <= 1e-4);
        for (int i = 0; i < 7; i++) free(h[i]), spo_dev_free(dev, d[i]);
        spo_unet_free(u);
    }
}

/* L(x, ctx) = sum(unet(x, t, ctx) * w) in double on the host */
static double loss(spo_unet *u, const float *x, const float *c, const float *t, const float *w, int n, int hw, int L)
{
    const spo_unet_config *cf = spo_unet_cfg(u);
    size_t nx = (size_t)n * cf->in_channels * hw * hw, nc = (size_t)n * L * cf->cross_dim;
    size_t no = (size_t)n * cf->out_channels * hw * hw;
    float *dx = dput(x, nx), *dc = dput(c, nc), *dt = dput(t, n), *dout = spo_dev_alloc(dev, no);
    CHECK_OK(spo_unet_forward(u, dout, dx, dt, dc, n, hw, hw, L, 0));
    float *o = dget(dout, no);
    double s = 0;
    for (size_t i = 0; i < no; i++) s += (double)o[i] * w[i];
    free(o);
    spo_dev_free(dev, dx), spo_dev_free(dev, dc), spo_dev_free(dev, dt), spo_dev_free(dev, dout);
    return s;
}

/* central differences on a few coordinates of x and ctx, batch 2, 8x8 */
static void test_finite_difference(void **st)
{
    spo_unet *u;
    CHECK_OK(spo_unet_load(&u, fix("tiny-sd/unet"), dev));
    const int n = 2, hw = 8, L = 5, D = spo_unet_cfg(u)->cross_dim;
    size_t nx = (size_t)n * 4 * hw * hw, nc = (size_t)n * L * D, no = nx;
    float *x = malloc(nx * 4), *c = malloc(nc * 4), *w = malloc(no * 4), t[2] = {700, 30};
    srand(7);
    for (size_t i = 0; i < nx; i++) x[i] = (float)rand() / RAND_MAX * 2 - 1;
    for (size_t i = 0; i < nc; i++) c[i] = (float)rand() / RAND_MAX * 2 - 1;
    for (size_t i = 0; i < no; i++) w[i] = (float)rand() / RAND_MAX * 2 - 1;
    float *dx = dput(x, nx), *dc = dput(c, nc), *dt = dput(t, n), *dw = dput(w, no), *dout = spo_dev_alloc(dev, no);
    float *gx = spo_dev_alloc(dev, nx), *gc = spo_dev_alloc(dev, nc);
    CHECK_OK(spo_unet_forward(u, dout, dx, dt, dc, n, hw, hw, L, 1));
    CHECK_OK(spo_unet_backward(u, gx, gc, dw));
    float *hgx = dget(gx, nx), *hgc = dget(gc, nc);
    const float h = 1e-2f;
    size_t ix[3] = {5, nx / 2 + 17, nx - 3}, ic[3] = {1, nc / 2 + 9, nc - 2};
    for (int k = 0; k < 6; k++) {
        float *v = k < 3 ? x : c;
        size_t i = k < 3 ? ix[k] : ic[k - 3];
        float keep = v[i];
        v[i] = keep + h;
        double lp = loss(u, x, c, t, w, n, hw, L);
        v[i] = keep - h;
        double lm = loss(u, x, c, t, w, n, hw, L);
        v[i] = keep;
        double fd = (lp - lm) / (2 * h), an = k < 3 ? hgx[i] : hgc[i];
        print_message("fd %s[%zu]: numeric %.6f analytic %.6f\n", k < 3 ? "x" : "ctx", i, fd, an);
        assert_true(fabs(fd - an) <= 2e-2 * fmax(1.0, fabs(fd)));
    }
    free(x), free(c), free(w), free(hgx), free(hgc);
    spo_dev_free(dev, dx), spo_dev_free(dev, dc), spo_dev_free(dev, dt), spo_dev_free(dev, dw);
    spo_dev_free(dev, dout), spo_dev_free(dev, gx), spo_dev_free(dev, gc);
    spo_unet_free(u);
}

/* ---- load errors -------------------------------------------------------------- */
/* write every parameter of u as F32 safetensors (lib/ckpt/safetensors.h writer);
 * `skip` omitted, `rename` renamed to "<name>.bad", `reshape` written with its
 * first dim + 1 (an extra row of zeros) */
static void write_st(spo_unet *u, const char *path, const char *skip, const char *rename, const char *reshape)
{
    spo_params *ps = spo_unet_params(u);
    spo_st_writer *w;
    float **keep = calloc(ps->n, sizeof *keep);
    CHECK_OK(spo_st_writer_new(&w));
    for (int i = 0; i < ps->n; i++) {
        const spo_param *p = &ps->p[i];
        char name[300];
        int64_t shape[4];
        memcpy(shape, p->shape, sizeof shape);
        if (skip && !strcmp(p->name, skip)) continue;
        int grow = reshape && !strcmp(p->name, reshape);
        shape[0] += grow;
        keep[i] = calloc(p->numel + (grow ? p->numel / p->shape[0] : 0), sizeof **keep);
        CHECK_OK(spo_dev_download(dev, keep[i], ps->buf + p->offset, p->numel));
        snprintf(name, sizeof name, "%s%s", p->name, rename && !strcmp(p->name, rename) ? ".bad" : "");
        CHECK_OK(spo_st_writer_add(w, name, SPO_ST_F32, p->ndim, shape, keep[i]));
    }
    CHECK_OK(spo_st_writer_write(w, path));
    spo_st_writer_free(w);
    for (int i = 0; i < ps->n; i++) free(keep[i]);
    free(keep);
}

static void copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    assert_non_null(a), assert_non_null(b);
    char buf[4096];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, a)) > 0) fwrite(buf, 1, k, b);
    fclose(a);
    assert_int_equal(fclose(b), 0);
}

static void test_load_errors(void **st)
{
    spo_unet *u, *v;
    CHECK_OK(spo_unet_load(&u, fix("tiny-sd/unet"), dev));
    char dir[] = "/tmp/spo_unet_XXXXXX", cfg[256], st_[256];
    assert_non_null(mkdtemp(dir));
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    snprintf(st_, sizeof st_, "%s/diffusion_pytorch_model.safetensors", dir);
    copy_file(fix("tiny-sd/unet/config.json"), cfg);
    const char *name = "up_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight";

    write_st(u, st_, NULL, NULL, NULL); /* a faithful copy loads */
    CHECK_OK(spo_unet_load(&v, dir, dev));
    spo_unet_free(v);

    write_st(u, st_, name, NULL, NULL);
    assert_int_equal(spo_unet_load(&v, dir, dev), SPO_EINVAL);
    assert_null(v);
    print_message("missing: %s\n", spo_errmsg());
    assert_non_null(strstr(spo_errmsg(), name));

    write_st(u, st_, NULL, name, NULL);
    assert_int_equal(spo_unet_load(&v, dir, dev), SPO_EINVAL);
    print_message("renamed: %s\n", spo_errmsg());
    assert_non_null(strstr(spo_errmsg(), name));

    write_st(u, st_, NULL, NULL, "mid_block.resnets.1.conv1.weight");
    assert_int_equal(spo_unet_load(&v, dir, dev), SPO_EINVAL);
    print_message("reshaped: %s\n", spo_errmsg());
    assert_non_null(strstr(spo_errmsg(), "mid_block.resnets.1.conv1.weight"));

    /* the config is checked against the file's header before anything is allocated */
    spo_unet_config c;
    CHECK_OK(spo_unet_config_load(&c, cfg));
    CHECK_OK(spo_unet_check_weights(&c, fix("tiny-sd/unet/diffusion_pytorch_model.safetensors")));
    c.block_out[1] = 128;
    assert_int_equal(spo_unet_check_weights(&c, fix("tiny-sd/unet/diffusion_pytorch_model.safetensors")), SPO_EINVAL);
    print_message("wider config: %s\n", spo_errmsg());
    assert_non_null(strstr(spo_errmsg(), "diffusion_pytorch_model.safetensors: tensor '"));
    assert_non_null(strstr(spo_errmsg(), "expected"));
    FILE *f = fopen(cfg, "w");
    assert_non_null(f);
    fputs("{\"block_out_channels\": [32768, 65536], \"norm_num_groups\": 32, \"attention_head_dim\": 2,"
          " \"down_block_types\": [\"CrossAttnDownBlock2D\", \"DownBlock2D\"],"
          " \"up_block_types\": [\"UpBlock2D\", \"CrossAttnUpBlock2D\"]}", f);
    fclose(f);
    copy_file(fix("tiny-sd/unet/diffusion_pytorch_model.safetensors"), st_);
    assert_int_equal(spo_unet_load(&v, dir, dev), SPO_EINVAL); /* 2^36+ floats: refused, not allocated */
    assert_null(v);
    print_message("huge config: %s\n", spo_errmsg());
    assert_non_null(strstr(spo_errmsg(), st_));

    unlink(st_), unlink(cfg), rmdir(dir);
    spo_unet_free(u);
}

/* ---- config ------------------------------------------------------------------- */
static void test_config(void **st)
{
    spo_unet_config c;
    char path[1200];
    snprintf(path, sizeof path, "%s/tests/bench/sd15_unet_config.json", root);
    CHECK_OK(spo_unet_config_load(&c, path));
    assert_int_equal(c.nblocks, 4);
    assert_int_equal(c.block_out[3], 1280);
    assert_int_equal(c.heads[0], 8);
    assert_int_equal(c.cross_dim, 768);
    assert_int_equal(c.down_attn[2], 1), assert_int_equal(c.down_attn[3], 0);
    assert_int_equal(c.up_attn[0], 0), assert_int_equal(c.up_attn[1], 1);
    spo_unet *u;
    CHECK_OK(spo_unet_create(&u, &c, NULL)); /* table only; SD v1.5 has 686 tensors, 859,520,964 parameters */
    size_t total = 0;
    for (int i = 0; i < spo_unet_params(u)->n; i++) total += spo_unet_params(u)->p[i].numel;
    assert_int_equal(total, 859520964);
    assert_int_equal(spo_unet_params(u)->n, 686);
    size_t fb, bb, fi;
    CHECK_OK(spo_unet_plan_bytes(u, 2, 64, 64, 77, 1, &fb, &bb));
    CHECK_OK(spo_unet_plan_bytes(u, 2, 64, 64, 77, 0, &fi, NULL));
    print_message("SD v1.5 at 64x64, batch 2: train %zu + %zu MiB, inference %zu MiB\n", fb >> 20, bb >> 20, fi >> 20);
    size_t fr, br;
    spo_unet_set_attn_recompute(u, 1);
    CHECK_OK(spo_unet_plan_bytes(u, 2, 64, 64, 77, 1, &fr, &br));
    print_message("  recomputing attention probabilities: train %zu + %zu MiB\n", fr >> 20, br >> 20);
    assert_true(fi < fb);
    spo_unet_free(u);

    static const struct { const char *json, *key; } bad[] = {
        {"{\"class_embed_type\": \"timestep\"}", "class_embed_type"},
        {"{\"attention_head_dim\": [8, 8]}", "attention_head_dim"},
        {"{\"down_block_types\": [\"CrossAttnDownBlock2D\",\"CrossAttnDownBlock2D\",\"DownBlock2D\",\"AttnDownBlock2D\"]}",
         "down_block_types"},
        {"{\"mid_block_type\": \"UNetMidBlock2DSimpleCrossAttn\"}", "mid_block_type"},
        {"{\"only_cross_attention\": true}", "only_cross_attention"},
        {"{\"resnet_time_scale_shift\": \"scale_shift\"}", "resnet_time_scale_shift"},
        {"{\"cross_attention_dim\": [768, 768, 768, 768]}", "cross_attention_dim"},
        {"{\"norm_num_groups\": 48}", "norm_num_groups"},
        {"[1]", "object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(spo_unet_config_parse(&c, bad[i].json), SPO_EINVAL);
        if (!strstr(spo_errmsg(), bad[i].key)) fail_msg("'%s' gave '%s'", bad[i].json, spo_errmsg());
    }
    /* sizes: bounded before any arithmetic on them (no signed overflow, no allocation) */
    static const struct { const char *json, *key; } big[] = {
        {"{\"block_out_channels\": [2147483640, 64], \"down_block_types\": [\"DownBlock2D\", \"DownBlock2D\"],"
         " \"up_block_types\": [\"UpBlock2D\", \"UpBlock2D\"]}", "'block_out_channels'[0]=2147483640"},
        {"{\"in_channels\": 2147483647}", "'in_channels'"},
        {"{\"cross_attention_dim\": 1000000000}", "'cross_attention_dim'"},
        {"{\"sample_size\": -4}", "'sample_size'"},
        {"{\"layers_per_block\": 100000}", "'layers_per_block'"},
        {"{\"norm_num_groups\": 0}", "'norm_num_groups'"},
        {"{\"block_out_channels\": 1e300}", "block_out_channels"},
    };
    for (size_t i = 0; i < sizeof big / sizeof *big; i++) {
        assert_int_equal(spo_unet_config_parse(&c, big[i].json), SPO_EINVAL);
        if (!strstr(spo_errmsg(), big[i].key)) fail_msg("'%s' gave '%s'", big[i].json, spo_errmsg());
    }
    /* in range, but a table past SPO_PARAMS_MAX_FLOATS is refused while declaring */
    CHECK_OK(spo_unet_config_parse(&c, "{\"block_out_channels\": [65536, 65536, 65536, 65536]}"));
    assert_int_equal(spo_unet_create(&u, &c, NULL), SPO_EINVAL);
    assert_null(u);
    assert_non_null(strstr(spo_errmsg(), "parameters"));
    CHECK_OK(spo_unet_config_parse(&c, "{\"attention_head_dim\": [5, 10, 20, 20], \"use_linear_projection\": true}"));
    assert_int_equal(c.heads[1], 10);
    assert_int_equal(c.linear_proj, 1);
}

/* arenas are planned per shape and only grow; odd shapes are refused */
static void test_arena(void **st)
{
    spo_unet *u;
    CHECK_OK(spo_unet_load(&u, fix("tiny-sd/unet"), dev));
    size_t nx = 2 * 4 * 48 * 48, nc = 2 * 3 * 32;
    float *x = spo_dev_alloc(dev, nx), *o = spo_dev_alloc(dev, nx), *c = spo_dev_alloc(dev, nc);
    float *t = spo_dev_alloc(dev, 2);
    size_t f1, b1, f2, b2, f3, b3;
    CHECK_OK(spo_unet_forward(u, o, x, t, c, 2, 16, 16, 3, 1));
    spo_unet_arena_bytes(u, &f1, &b1);
    CHECK_OK(spo_unet_forward(u, o, x, t, c, 2, 48, 48, 3, 0));
    spo_unet_arena_bytes(u, &f2, &b2);
    CHECK_OK(spo_unet_forward(u, o, x, t, c, 2, 16, 16, 3, 1));
    spo_unet_arena_bytes(u, &f3, &b3);
    print_message("arena: train 16x16 %zu + %zu B, then infer 48x48 %zu B\n", f1, b1, f2);
    assert_true(f1 > 0 && b1 > 0);
    assert_true(f2 > f1 && b2 == b1); /* grown for the bigger shape */
    assert_true(f3 == f2 && b3 == b2); /* never shrunk */
    CHECK_OK(spo_unet_forward(u, o, x, t, c, 2, 16, 16, 3, 0));
    assert_int_equal(spo_unet_backward(u, x, NULL, o), SPO_EINVAL); /* last forward was not train */
    assert_int_equal(spo_unet_forward(u, o, x, t, c, 2, 15, 16, 3, 0), SPO_EINVAL);
    spo_dev_free(dev, x), spo_dev_free(dev, o), spo_dev_free(dev, c), spo_dev_free(dev, t);
    spo_unet_free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_cases), cmocka_unit_test(test_forward_fp16),
        cmocka_unit_test(test_backward),      cmocka_unit_test(test_variants),
        cmocka_unit_test(test_finite_difference),
        cmocka_unit_test(test_load_errors),   cmocka_unit_test(test_config),
        cmocka_unit_test(test_arena),
    };
    return cmocka_run_group_tests(tests, dev_setup, dev_teardown);
}
