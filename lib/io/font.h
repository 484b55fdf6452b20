/* font.h — a built-in 5x7 bitmap font for labels in spo's own images (the
 * plots of spo-plot, the prompts under the rows of a contact sheet): ASCII
 * letters (drawn upper case), digits and . , : ; - + / ( ) _ % = ' " ! ? & # *;
 * any other byte, UTF-8 included, is drawn blank. A character advances 6
 * pixels (at scale 1) and is 7 high. */
#ifndef SPO_FONT_H
#define SPO_FONT_H

#include <stdint.h>

#define SPO_FONT_ADVANCE 6
#define SPO_FONT_HEIGHT 7

/* Width in pixels of text at scale (1..8). */
int spo_font_width(const char *text, int scale);
/* Draw text with its top left at (x, y) into rgb (h, w, 3), clipped to it. */
void spo_font_draw(uint8_t *rgb, int w, int h, int x, int y, int scale, const char *text, const uint8_t color[3]);

#endif
