/* test_decode.c — decoder images to 8-bit pixels as diffusers 0.26.1 makes
 * them (tests/fixtures/decode/expected.h5 from tests/reference/
 * decode_fixture.py: the x0_hat of tests/fixtures/score/pool.h5 through
 * tiny-sd/vae and VaeImageProcessor), the rounding at exact halves, PNG
 * write/read with text chunks, contact sheets and the latents picker. */
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "io/image_io.h"
#include "spo/latset.h"
#include "nn_testutil.h"
#include "nn/vae.h"

static char root[1024];

static void fixture(char *buf, size_t n, const char *rel) { snprintf(buf, n, "%s/tests/fixtures/%s", root, rel); }

/* x -> numpy's (((x/2 + 0.5).clamp(0,1)) * 255).round().astype(uint8), computed
 * with torch 2.3.1 / numpy 1.26.4 float32 (exact halves 126.5, 127.5, 128.5,
 * 253.5, 254.5 go to the even neighbour; the values either side of 0.5 .. 3.5) */
static void test_rounding(void **state)
{
    static const struct {
        float x;
        int want;
    } t[] = {
        {-1.000000000e+00f, 0},   {1.000000000e+00f, 255},  {2.000000000e+00f, 255},  {-3.000000000e+00f, 0},
        {0.000000000e+00f, 128},  {-9.960784316e-01f, 0},   {-9.960783720e-01f, 1},   {-9.882352948e-01f, 1},
        {-9.882352352e-01f, 2},   {-9.803921580e-01f, 2},   {-9.803920984e-01f, 3},   {-9.725490212e-01f, 3},
        {-9.725489616e-01f, 4},   {-7.843136787e-03f, 126}, {-7.843135856e-03f, 126}, {1.401298464e-45f, 128},
        {7.843136787e-03f, 128},  {7.843137719e-03f, 128},  {9.882352352e-01f, 254},  {9.882352948e-01f, 254},
        {9.960783720e-01f, 254},  {9.960784316e-01f, 254},  {NAN, 0},                 {INFINITY, 255},
        {-INFINITY, 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        float img[3] = {t[i].x, t[i].x, t[i].x};
        uint8_t px[3];
        spo_img_to_rgb8(img, 1, 1, px);
        if (px[0] != t[i].want) fprintf(stderr, "x = %.9g: got %d, want %d\n", t[i].x, px[0], t[i].want);
        assert_int_equal(px[0], t[i].want);
    }
    /* planes (3,h,w) -> interleaved (h,w,3) */
    float img[3 * 2] = {-1, 1, 0, 0, 1, -1};
    uint8_t px[6];
    spo_img_to_rgb8(img, 1, 2, px);
    uint8_t want[6] = {0, 128, 255, 255, 128, 0};
    assert_memory_equal(px, want, 6);
}

static void test_parity(void **state)
{
    char pool[1200], exp[1200], vdir[1200];
    fixture(pool, sizeof pool, "score/pool.h5");
    fixture(exp, sizeof exp, "decode/expected.h5");
    fixture(vdir, sizeof vdir, "tiny-sd/vae");
    size_t ne = 0;
    uint8_t *want = h5_read(exp, "/images", &ne, H5T_NATIVE_UINT8, 1);
    assert_non_null(want);
    spo_dev *dev;
    spo_vae *v;
    spo_h5 *f;
    spo_latset s;
    assert_int_equal(spo_dev_open(&dev, SPO_DEV_CPU, 0), SPO_OK);
    assert_int_equal(spo_vae_load(&v, vdir, dev), SPO_OK);
    assert_int_equal(spo_h5_open(&f, pool, NULL, NULL), SPO_OK);
    assert_int_equal(spo_latset_read(&s, f, NULL, spo_vae_cfg(v)->latent_channels), SPO_OK);
    assert_string_equal(s.dataset, "/x0_hat");
    assert_int_equal(s.rows, 3);
    assert_int_equal(s.cols, 4);
    int n = s.rows * s.cols, fct = spo_vae_factor(v), H = s.h * fct, W = s.w * fct;
    assert_int_equal(ne, (size_t)n * H * W * 3);
    float *img = malloc((size_t)n * 3 * H * W * sizeof *img);
    uint8_t *px = malloc(ne);
    assert_non_null(img);
    assert_non_null(px);
    assert_int_equal(spo_vae_decode(v, img, s.latents, n, s.h, s.w), SPO_OK);
    for (int i = 0; i < n; i++) spo_img_to_rgb8(img + (size_t)i * 3 * H * W, H, W, px + (size_t)i * H * W * 3);
    size_t off1 = 0, worse = 0, same = 0;
    for (size_t i = 0; i < ne; i++) {
        int d = abs((int)px[i] - (int)want[i]);
        off1 += d == 1, worse += d > 1, same += d == 0;
    }
    printf("decode parity: %zu of %zu values equal, %zu off by 1, %zu off by more\n", same, ne, off1, worse);
    assert_int_equal(worse, 0);
    assert_true(off1 <= 16); /* float rounding next to .5 (the fixture has 75 values within 1e-3 of one) */
    free(img);
    free(px);
    free(want);
    spo_latset_free(&s);
    spo_h5_close(f);
    spo_vae_free(v);
    spo_dev_close(dev);
}

static void fill(uint8_t *px, int w, int h, unsigned seed)
{
    for (int i = 0; i < w * h * 3; i++) px[i] = (uint8_t)((unsigned)i * 2654435761u >> 13 ^ seed);
}

static void test_png_roundtrip(void **state)
{
    int w = 7, h = 5;
    uint8_t px[7 * 5 * 3];
    fill(px, w, h, 3);
    const char *utf8 = "caf\xc3\xa9 \xe2\x98\x95, 0.5";
    spo_png_text tx[] = {{"parameters", "a cat\nspo: pool/1"}, {"prompt", utf8}};
    uint8_t *buf;
    size_t len;
    assert_int_equal(spo_png_write_mem(&buf, &len, px, w, h, tx, 2), SPO_OK);
    assert_true(len > 8 && !memcmp(buf, "\x89PNG\r\n\x1a\n", 8));
    /* IHDR width and height, big endian at bytes 16 and 20 */
    assert_int_equal(buf[19], 7);
    assert_int_equal(buf[23], 5);
    spo_png p;
    assert_int_equal(spo_png_read_mem(&p, buf, len), SPO_OK);
    assert_int_equal(p.w, w);
    assert_int_equal(p.h, h);
    assert_memory_equal(p.rgb, px, sizeof px);
    assert_string_equal(spo_png_get_text(&p, "parameters"), "a cat\nspo: pool/1");
    assert_string_equal(spo_png_get_text(&p, "prompt"), utf8);
    assert_null(spo_png_get_text(&p, "nope"));
    spo_png_free(&p);

    /* the FILE* writer gives the same bytes; the path reader reads them */
    char path[] = "/tmp/spo_test_png_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *fp = fdopen(fd, "wb");
    assert_int_equal(spo_png_write(fp, path, px, w, h, tx, 2), SPO_OK);
    fclose(fp);
    assert_int_equal(spo_png_read(&p, path), SPO_OK);
    assert_memory_equal(p.rgb, px, sizeof px);
    spo_png_free(&p);
    fp = fopen(path, "rb");
    uint8_t *b2 = malloc(len + 1);
    assert_int_equal(fread(b2, 1, len + 1, fp), len);
    fclose(fp);
    assert_memory_equal(b2, buf, len);
    free(b2);
    unlink(path);

    /* damaged: truncated, not a PNG, a bad key; bad sizes */
    assert_int_equal(spo_png_read_mem(&p, buf, len / 2), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "not a valid PNG"));
    assert_int_equal(spo_png_read_mem(&p, "GIF89a..", 8), SPO_EINVAL);
    assert_int_equal(spo_png_read(&p, "/nonexistent/x.png"), SPO_EINVAL);
    free(buf);
    spo_png_text bad[] = {{"", "empty key"}};
    assert_int_equal(spo_png_write_mem(&buf, &len, px, w, h, bad, 1), SPO_EINVAL);
    assert_null(buf);
    assert_int_equal(spo_png_write_mem(&buf, &len, px, 0, h, NULL, 0), SPO_EINVAL);
}

static void test_sheet(void **state)
{
    int rows = 2, cols = 3, h = 4, w = 5, gap = 2;
    spo_sheet s;
    assert_int_equal(spo_sheet_init(&s, rows, cols, h, w, gap), SPO_OK);
    assert_int_equal(s.width, cols * w + (cols - 1) * gap);
    assert_int_equal(s.height, rows * h + (rows - 1) * gap);
    uint8_t cell[4 * 5 * 3];
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            fill(cell, w, h, (unsigned)(r * cols + c));
            assert_int_equal(spo_sheet_put(&s, r, c, cell), SPO_OK);
        }
    for (int y = 0; y < s.height; y++)
        for (int x = 0; x < s.width; x++) {
            int r = y / (h + gap), c = x / (w + gap), cy = y % (h + gap), cx = x % (w + gap);
            const uint8_t *got = s.rgb + ((size_t)y * s.width + x) * 3;
            if (cy >= h || cx >= w) {
                for (int k = 0; k < 3; k++) assert_int_equal(got[k], SPO_SHEET_GAP);
            } else {
                fill(cell, w, h, (unsigned)(r * cols + c));
                assert_memory_equal(got, cell + (cy * w + cx) * 3, 3);
            }
        }
    assert_int_equal(spo_sheet_put(&s, 2, 0, cell), SPO_EINVAL);
    spo_sheet_free(&s);
    assert_int_equal(spo_sheet_init(&s, 0, 1, 4, 4, 2), SPO_EINVAL);
    assert_int_equal(spo_sheet_init(&s, 100000, 100000, 64, 64, 2), SPO_EINVAL);
}

/* a labelled sheet: a band under each row, the cells where they were plus
 * the band, and text only inside its row's band, cut to the width */
static void test_sheet_labels(void **state)
{
    int rows = 2, cols = 2, h = 8, w = 30, gap = 2, L = SPO_SHEET_LABEL;
    spo_sheet s;
    assert_int_equal(spo_sheet_init_labeled(&s, rows, cols, h, w, gap), SPO_OK);
    assert_int_equal(s.width, SPO_SHEET_LABEL_MINW); /* 2 x 30 + 2 is narrower */
    assert_int_equal(s.height, rows * (h + L) + (rows - 1) * gap);
    uint8_t cell[8 * 30 * 3];
    memset(cell, 7, sizeof cell);
    assert_int_equal(spo_sheet_put(&s, 1, 1, cell), SPO_OK);
    assert_int_equal(s.rgb[((size_t)(h + L + gap) * s.width + w + gap) * 3], 7); /* top left of cell (1,1) */
    assert_int_equal(s.rgb[((size_t)(h + L + gap - 1) * s.width + w + gap) * 3], SPO_SHEET_GAP);
    /* a prompt far wider than the sheet: ink only in row 0's band, nowhere past the width */
    assert_int_equal(spo_sheet_label(&s, 0, "A RED APPLE ON A WOODEN TABLE, OIL PAINTING"), SPO_OK);
    int ink = 0;
    for (int y = 0; y < s.height; y++)
        for (int x = 0; x < s.width; x++) {
            int lit = s.rgb[((size_t)y * s.width + x) * 3] > 200;
            if (lit) assert_true(y >= h && y < h + L);
            ink += lit;
        }
    assert_true(ink > 50);
    assert_int_equal(spo_sheet_label(&s, 2, "x"), SPO_EINVAL);
    spo_sheet_free(&s);
    assert_int_equal(spo_sheet_init(&s, 1, 1, 4, 4, 0), SPO_OK);
    assert_int_equal(spo_sheet_label(&s, 0, "no band"), SPO_EINVAL);
    spo_sheet_free(&s);
}

static void test_latset(void **state)
{
    char pool[1200], emb[1200], c3[1200];
    fixture(pool, sizeof pool, "score/pool.h5");
    fixture(emb, sizeof emb, "score/embeds.h5");
    fixture(c3, sizeof c3, "decode/pool_c3.h5");
    spo_h5 *f;
    spo_latset s;
    char name[64];
    assert_int_equal(spo_h5_open(&f, pool, NULL, NULL), SPO_OK);
    assert_int_equal(spo_latset_read(&s, f, "children", 4), SPO_OK);
    assert_string_equal(s.dataset, "/children");
    spo_latset_name(&s, 6, name, sizeof name);
    assert_string_equal(name, "p11_k2.png");
    assert_int_equal(s.timestep[0], 451);
    assert_int_equal(s.step[0], 9);
    spo_latset_free(&s);
    assert_int_equal(spo_latset_read(&s, f, "parent", 4), SPO_OK);
    assert_int_equal(s.cols, 1);
    assert_int_equal(s.timestep[0], 501);
    spo_latset_name(&s, 2, name, sizeof name);
    assert_string_equal(name, "p12.png");
    spo_latset_free(&s);
    assert_int_equal(spo_latset_read(&s, f, "win", 4), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "x0, children, parent"));
    assert_int_equal(spo_latset_read(&s, f, NULL, 8), SPO_EINVAL);
    spo_h5_close(f);
    assert_int_equal(spo_h5_open(&f, c3, NULL, NULL), SPO_OK);
    assert_int_equal(spo_latset_read(&s, f, NULL, 4), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "[B,C,h,w] = [1,4,h,w]"));
    spo_h5_close(f);
    assert_int_equal(spo_h5_open(&f, emb, NULL, NULL), SPO_OK);
    assert_int_equal(spo_latset_read(&s, f, NULL, 4), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "schema embeds/1 has no latents"));
    spo_h5_close(f);
}

int main(void)
{
    const char *r = getenv("SPO_ROOT");
    snprintf(root, sizeof root, "%s", r ? r : ".");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rounding), cmocka_unit_test(test_parity), cmocka_unit_test(test_png_roundtrip),
        cmocka_unit_test(test_sheet),
        cmocka_unit_test(test_sheet_labels),
        cmocka_unit_test(test_latset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
