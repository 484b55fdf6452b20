/* plot.h — line plots of a few series into an 8-bit RGB image (for
 * spo-plot's metrics.png; written to PNG with spo_png_write).
 *
 * A canvas holds panels stacked top to bottom; each panel has a frame,
 * "nice" tick values (1, 2 or 5 times a power of ten) with their numbers on
 * both axes, a title above, an x label below, and its series drawn as
 * polylines with a dot at each point. Text uses a built-in 5x7 bitmap font
 * (letters are drawn upper case; digits and . - + : / ( ) _ % =), scaled 2x.
 * Non-finite points are skipped. */
#ifndef SPO_PLOT_H
#define SPO_PLOT_H

#include <stdint.h>

#include "core/err.h"

typedef struct {
    const char *label;    /* legend text, or NULL */
    const double *x, *y;  /* n points */
    int n;
    uint8_t rgb[3];
} spo_plot_series;

typedef struct {
    int w, h;
    uint8_t *rgb; /* (h, w, 3), white background */
} spo_canvas;

/* w, h in 200..8192 x 150..8192. */
int spo_canvas_init(spo_canvas *c, int w, int h);
void spo_canvas_free(spo_canvas *c);

/* Panel i of npanels (equal heights, top to bottom). A panel with no
 * finite point shows its frame and "NO DATA". */
int spo_plot_panel(spo_canvas *c, int i, int npanels, const char *title, const char *xlabel,
                   const spo_plot_series *s, int ns);

/* Text at (x, y) (top left), scale 1..8 pixels per font pixel. */
void spo_canvas_text(spo_canvas *c, int x, int y, int scale, const char *text, const uint8_t rgb[3]);
/* Width in pixels of text at scale. */
int spo_canvas_text_width(const char *text, int scale);

#endif
