/* sheet.c — a contact sheet: rows x cols RGB cells of the same size in one
 * image, separated by gap pixels of dark grey (see image_io.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/font.h"
#include "io/image_io.h"

static int init(spo_sheet *s, int rows, int cols, int h, int w, int gap, int label)
{
    memset(s, 0, sizeof *s);
    if (rows <= 0 || cols <= 0 || h <= 0 || w <= 0 || gap < 0 || gap > 1024)
        return spo_err(SPO_EINVAL, "contact sheet: bad grid %dx%d of %dx%d cells, gap %d", rows, cols, h, w, gap);
    long long W = (long long)cols * w + (long long)(cols - 1) * gap;
    if (label && W < SPO_SHEET_LABEL_MINW) W = SPO_SHEET_LABEL_MINW; /* room for the prompt */
    long long H = (long long)rows * (h + label) + (long long)(rows - 1) * gap;
    if (W > 1000000 || H > 1000000 || W * H > (1LL << 31))
        return spo_err(SPO_EINVAL, "contact sheet: %lldx%lld pixels is too large", W, H);
    s->rgb = malloc((size_t)(W * H * 3));
    if (!s->rgb) return spo_err(SPO_EIO, "contact sheet: out of memory (%lldx%lld)", W, H);
    memset(s->rgb, SPO_SHEET_GAP, (size_t)(W * H * 3));
    s->rows = rows, s->cols = cols, s->h = h, s->w = w, s->gap = gap, s->label = label;
    s->width = (int)W, s->height = (int)H;
    return SPO_OK;
}

int spo_sheet_init(spo_sheet *s, int rows, int cols, int h, int w, int gap)
{
    return init(s, rows, cols, h, w, gap, 0);
}

int spo_sheet_init_labeled(spo_sheet *s, int rows, int cols, int h, int w, int gap)
{
    return init(s, rows, cols, h, w, gap, SPO_SHEET_LABEL);
}

int spo_sheet_label(spo_sheet *s, int r, const char *text)
{
    if (!s->label || r < 0 || r >= s->rows)
        return spo_err(SPO_EINVAL, "contact sheet: no label band for row %d", r);
    static const uint8_t ink[3] = {235, 235, 235};
    int room = (s->width - 4 + 1) / SPO_FONT_ADVANCE; /* characters that fit */
    char line[512];
    snprintf(line, sizeof line, "%s", text ? text : "");
    for (char *p = line; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t') *p = ' ';
    int n = (int)strlen(line);
    if (n > room) {
        int k = room > 3 ? room - 3 : 0;
        line[k] = 0;
        if (room > 3) strcat(line, "...");
    }
    int y = r * (s->h + s->label + s->gap) + s->h + (s->label - SPO_FONT_HEIGHT) / 2;
    spo_font_draw(s->rgb, s->width, s->height, 2, y, 1, line, ink);
    return SPO_OK;
}

int spo_sheet_put(spo_sheet *s, int r, int c, const uint8_t *rgb)
{
    if (r < 0 || r >= s->rows || c < 0 || c >= s->cols)
        return spo_err(SPO_EINVAL, "contact sheet: no cell (%d, %d) in %dx%d", r, c, s->rows, s->cols);
    size_t x0 = (size_t)c * (s->w + s->gap), y0 = (size_t)r * (s->h + s->label + s->gap), row = (size_t)s->w * 3;
    for (int y = 0; y < s->h; y++) memcpy(s->rgb + ((y0 + y) * s->width + x0) * 3, rgb + y * row, row);
    return SPO_OK;
}

void spo_sheet_free(spo_sheet *s)
{
    free(s->rgb);
    memset(s, 0, sizeof *s);
}
