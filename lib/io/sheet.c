/* sheet.c — a contact sheet: rows x cols RGB cells of the same size in one
 * image, separated by gap pixels of dark grey (see image_io.h). */
#include <stdlib.h>
#include <string.h>

#include "io/image_io.h"

int spo_sheet_init(spo_sheet *s, int rows, int cols, int h, int w, int gap)
{
    memset(s, 0, sizeof *s);
    if (rows <= 0 || cols <= 0 || h <= 0 || w <= 0 || gap < 0 || gap > 1024)
        return spo_err(SPO_EINVAL, "contact sheet: bad grid %dx%d of %dx%d cells, gap %d", rows, cols, h, w, gap);
    long long W = (long long)cols * w + (long long)(cols - 1) * gap;
    long long H = (long long)rows * h + (long long)(rows - 1) * gap;
    if (W > 1000000 || H > 1000000 || W * H > (1LL << 31))
        return spo_err(SPO_EINVAL, "contact sheet: %lldx%lld pixels is too large", W, H);
    s->rgb = malloc((size_t)(W * H * 3));
    if (!s->rgb) return spo_err(SPO_EIO, "contact sheet: out of memory (%lldx%lld)", W, H);
    memset(s->rgb, SPO_SHEET_GAP, (size_t)(W * H * 3));
    s->rows = rows, s->cols = cols, s->h = h, s->w = w, s->gap = gap;
    s->width = (int)W, s->height = (int)H;
    return SPO_OK;
}

int spo_sheet_put(spo_sheet *s, int r, int c, const uint8_t *rgb)
{
    if (r < 0 || r >= s->rows || c < 0 || c >= s->cols)
        return spo_err(SPO_EINVAL, "contact sheet: no cell (%d, %d) in %dx%d", r, c, s->rows, s->cols);
    size_t x0 = (size_t)c * (s->w + s->gap), y0 = (size_t)r * (s->h + s->gap), row = (size_t)s->w * 3;
    for (int y = 0; y < s->h; y++) memcpy(s->rgb + ((y0 + y) * s->width + x0) * 3, rgb + y * row, row);
    return SPO_OK;
}

void spo_sheet_free(spo_sheet *s)
{
    free(s->rgb);
    memset(s, 0, sizeof *s);
}
