/* test_plot.c — lib/io/plot.c: canvas bounds, the font, a panel's frame,
 * series colours at the right places, non-finite points skipped. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "io/plot.h"

static int count(const spo_canvas *c, int x0, int y0, int x1, int y1, const uint8_t rgb[3])
{
    int n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            if (!memcmp(c->rgb + ((size_t)y * c->w + x) * 3, rgb, 3)) n++;
    return n;
}

static void test_canvas(void **state)
{
    spo_canvas c;
    assert_int_equal(spo_canvas_init(&c, 100, 600), SPO_EINVAL);
    assert_int_equal(spo_canvas_init(&c, 400, 100), SPO_EINVAL);
    assert_int_equal(spo_canvas_init(&c, 9000, 600), SPO_EINVAL);
    assert_int_equal(spo_canvas_init(&c, 400, 300), SPO_OK);
    const uint8_t white[3] = {255, 255, 255};
    assert_int_equal(count(&c, 0, 0, 400, 300, white), 400 * 300);
    spo_canvas_free(&c);
    assert_null(c.rgb);
}

static void test_text(void **state)
{
    assert_int_equal(spo_canvas_text_width("", 2), 0);
    assert_int_equal(spo_canvas_text_width("A", 1), 5);
    assert_int_equal(spo_canvas_text_width("AB", 2), 22);
    spo_canvas c;
    assert_int_equal(spo_canvas_init(&c, 300, 200), SPO_OK);
    const uint8_t red[3] = {255, 0, 0};
    spo_canvas_text(&c, 10, 10, 1, "1", red);
    /* the glyph of 1: 0x04 0x0C 0x04 0x04 0x04 0x04 0x0E -> 1+2+1+1+1+1+3 pixels */
    assert_int_equal(count(&c, 0, 0, 300, 200, red), 10);
    assert_int_equal(count(&c, 10, 10, 15, 17, red), 10);
    /* lower case is drawn as upper case; unknown characters are blank */
    spo_canvas_text(&c, 10, 50, 2, "l", red);
    int l = count(&c, 0, 40, 300, 200, red);
    spo_canvas_text(&c, 10, 100, 2, "L", red);
    assert_true(l > 0);
    assert_int_equal(count(&c, 0, 90, 300, 140, red), l);
    spo_canvas_text(&c, 10, 150, 2, "\x01~", red);
    assert_int_equal(count(&c, 0, 140, 300, 200, red), 0);
    /* text off the canvas is clipped, not written outside */
    spo_canvas_text(&c, 295, 195, 8, "W", red);
    spo_canvas_free(&c);
}

static void test_panel(void **state)
{
    spo_canvas c;
    assert_int_equal(spo_canvas_init(&c, 600, 500), SPO_OK);
    double x[] = {1, 2, 3, 4, 5}, y[] = {0.7, NAN, 0.5, INFINITY, 0.3};
    spo_plot_series s = {"loss", x, y, 5, {10, 200, 30}};
    assert_int_equal(spo_plot_panel(&c, 0, 2, "DPO loss", "step", &s, 1), SPO_OK);
    /* the series colour lies in the top panel only */
    assert_true(count(&c, 0, 0, 600, 250, s.rgb) > 100);
    assert_int_equal(count(&c, 0, 250, 600, 500, s.rgb), 0);
    /* an empty panel: a frame, no series colour */
    const uint8_t black[3] = {0, 0, 0};
    assert_int_equal(spo_plot_panel(&c, 1, 2, "score", "step", &s, 0), SPO_OK);
    assert_true(count(&c, 0, 250, 600, 500, black) > 600);
    assert_int_equal(count(&c, 0, 250, 600, 500, s.rgb), 0);
    /* one point only, and out-of-range panels */
    double x1[] = {3}, y1[] = {2};
    spo_plot_series one = {NULL, x1, y1, 1, {200, 10, 30}};
    assert_int_equal(spo_plot_panel(&c, 1, 2, "score", NULL, &one, 1), SPO_OK);
    assert_true(count(&c, 0, 250, 600, 500, one.rgb) >= 25);
    assert_int_equal(spo_plot_panel(&c, 2, 2, "x", NULL, &s, 1), SPO_EINVAL);
    assert_int_equal(spo_plot_panel(&c, 0, 40, "x", NULL, &s, 1), SPO_EINVAL);
    spo_canvas_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canvas),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_panel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
