/* plot.c — line plots with axes, ticks and labels in an RGB canvas (plot.h). */
#include "io/plot.h"

#include "io/font.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int spo_canvas_init(spo_canvas *c, int w, int h)
{
    memset(c, 0, sizeof *c);
    if (w < 200 || h < 150 || w > 8192 || h > 8192)
        return spo_err(SPO_EINVAL, "plot size %dx%d out of range (200..8192 x 150..8192)", w, h);
    c->rgb = malloc((size_t)w * h * 3);
    if (!c->rgb) return spo_err(SPO_EIO, "out of memory for a %dx%d plot", w, h);
    memset(c->rgb, 255, (size_t)w * h * 3);
    c->w = w;
    c->h = h;
    return SPO_OK;
}

void spo_canvas_free(spo_canvas *c)
{
    free(c->rgb);
    memset(c, 0, sizeof *c);
}

static void px(spo_canvas *c, int x, int y, const uint8_t rgb[3])
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h) return;
    memcpy(c->rgb + ((size_t)y * c->w + x) * 3, rgb, 3);
}

static void rect(spo_canvas *c, int x0, int y0, int x1, int y1, const uint8_t rgb[3])
{
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) px(c, x, y, rgb);
}

/* Bresenham, 2 pixels thick */
static void line(spo_canvas *c, int x0, int y0, int x1, int y1, const uint8_t rgb[3])
{
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, e = dx + dy;
    for (;;) {
        rect(c, x0, y0, x0 + 1, y0 + 1, rgb);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * e;
        if (e2 >= dy) e += dy, x0 += sx;
        if (e2 <= dx) e += dx, y0 += sy;
    }
}

int spo_canvas_text_width(const char *text, int scale) { return spo_font_width(text, scale); }

void spo_canvas_text(spo_canvas *c, int x, int y, int scale, const char *text, const uint8_t rgb[3])
{
    spo_font_draw(c->rgb, c->w, c->h, x, y, scale, text, rgb);
}

/* a tick step of 1, 2 or 5 times a power of ten giving about 5 ticks */
static double nice_step(double span)
{
    double raw = span / 5, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

typedef struct {
    double lo, hi, step;
} axis;

static axis make_axis(double lo, double hi)
{
    if (!(hi > lo)) { /* one value or none: a unit span around it */
        double m = isfinite(lo) ? lo : 0, d = fabs(m) > 0 ? fabs(m) * 0.1 : 1;
        lo = m - d, hi = m + d;
    }
    axis a;
    a.step = nice_step(hi - lo);
    a.lo = floor(lo / a.step) * a.step;
    a.hi = ceil(hi / a.step) * a.step;
    return a;
}

static void tick_label(char *buf, size_t n, double v, double step)
{
    if (fabs(v) < step * 1e-6) v = 0;
    double m = fmax(fabs(v), step);
    if (m >= 1e5 || m < 1e-3) snprintf(buf, n, "%.2g", v);
    else {
        int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
        snprintf(buf, n, "%.*f", dec, v);
    }
}

static const uint8_t black[3] = {0, 0, 0}, grey[3] = {225, 225, 225}, dark[3] = {90, 90, 90};

int spo_plot_panel(spo_canvas *c, int i, int npanels, const char *title, const char *xlabel,
                   const spo_plot_series *s, int ns)
{
    if (npanels < 1 || i < 0 || i >= npanels) return spo_err(SPO_EINVAL, "plot panel %d of %d", i, npanels);
    const int sc = 2, ch = 7 * sc, ph = c->h / npanels, top = i * ph;
    /* the frame: room for tick numbers on the left, title above, label below */
    int x0 = 14 * 6 * sc / 2 + 16, x1 = c->w - 20, y0 = top + ch + 24, y1 = top + ph - 2 * ch - 30;
    if (y1 - y0 < 20 || x1 - x0 < 40) return spo_err(SPO_EINVAL, "plot of %dx%d is too small for %d panels", c->w, c->h, npanels);
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (int j = 0; j < s[k].n; j++) {
            double x = s[k].x[j], y = s[k].y[j];
            if (!isfinite(x) || !isfinite(y)) continue;
            xmin = fmin(xmin, x), xmax = fmax(xmax, x), ymin = fmin(ymin, y), ymax = fmax(ymax, y);
        }
    int empty = !(xmin <= xmax);
    axis ax = make_axis(empty ? 0 : xmin, empty ? 1 : xmax), ay = make_axis(empty ? 0 : ymin, empty ? 1 : ymax);
    spo_canvas_text(c, x0, top + 10, sc, title, black);
    if (xlabel) spo_canvas_text(c, (x0 + x1 - spo_canvas_text_width(xlabel, sc)) / 2, y1 + ch + 18, sc, xlabel, black);
    char buf[32];
#define XP(v) (x0 + (int)lround(((v) - ax.lo) / (ax.hi - ax.lo) * (x1 - x0)))
#define YP(v) (y1 - (int)lround(((v) - ay.lo) / (ay.hi - ay.lo) * (y1 - y0)))
    int nt = (int)lround((ax.hi - ax.lo) / ax.step);
    for (int t = 0; t <= nt && nt <= 50; t++) {
        double v = ax.lo + t * ax.step;
        int x = XP(v);
        rect(c, x, y0, x, y1, grey);
        rect(c, x, y1, x, y1 + 5, black);
        tick_label(buf, sizeof buf, v, ax.step);
        spo_canvas_text(c, x - spo_canvas_text_width(buf, sc) / 2, y1 + 9, sc, buf, dark);
    }
    nt = (int)lround((ay.hi - ay.lo) / ay.step);
    for (int t = 0; t <= nt && nt <= 50; t++) {
        double v = ay.lo + t * ay.step;
        int y = YP(v);
        rect(c, x0, y, x1, y, grey);
        rect(c, x0 - 5, y, x0, y, black);
        tick_label(buf, sizeof buf, v, ay.step);
        spo_canvas_text(c, x0 - 9 - spo_canvas_text_width(buf, sc), y - ch / 2, sc, buf, dark);
    }
    rect(c, x0, y0, x1, y0, black), rect(c, x0, y1, x1, y1, black);
    rect(c, x0, y0, x0, y1, black), rect(c, x1, y0, x1, y1, black);
    if (empty) spo_canvas_text(c, (x0 + x1) / 2 - spo_canvas_text_width("NO DATA", sc) / 2, (y0 + y1) / 2, sc, "NO DATA", dark);
    int lx = x1;
    for (int k = ns - 1; k >= 0; k--) { /* series, and their legend at the top right */
        int have = 0, px0 = 0, py0 = 0;
        for (int j = 0; j < s[k].n; j++) {
            double x = s[k].x[j], y = s[k].y[j];
            if (!isfinite(x) || !isfinite(y)) continue;
            int X = XP(x), Y = YP(y);
            if (have) line(c, px0, py0, X, Y, s[k].rgb);
            rect(c, X - 2, Y - 2, X + 2, Y + 2, s[k].rgb);
            px0 = X, py0 = Y, have = 1;
        }
        if (s[k].label) {
            lx -= spo_canvas_text_width(s[k].label, sc) + 30;
            rect(c, lx, top + 10 + ch / 2 - 1, lx + 14, top + 10 + ch / 2 + 1, s[k].rgb);
            spo_canvas_text(c, lx + 20, top + 10, sc, s[k].label, s[k].rgb);
        }
    }
#undef XP
#undef YP
    return SPO_OK;
}
