/* spo-pnginfo — PNG checks for the command tests, through lib's reader:
 *   spo-pnginfo FILE|-            print "WIDTHxHEIGHT" (exit 1 when not a valid PNG)
 *   spo-pnginfo FILE|- KEY        print the text chunk KEY (exit 1 when absent)
 *   spo-pnginfo --cell SHEET ROW COL GAP CELL
 *                                 exit 0 when cell (ROW, COL) of the contact sheet
 *                                 SHEET (cells of CELL's size, GAP apart) equals CELL */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image_io.h"

static int load(spo_png *p, const char *path)
{
    if (spo_png_read(p, path)) {
        fprintf(stderr, "spo-pnginfo: %s\n", spo_errmsg());
        return 0;
    }
    return 1;
}

static int cell(char **argv)
{
    spo_png s, c;
    int r = atoi(argv[1]), col = atoi(argv[2]), gap = atoi(argv[3]), ok = 1;
    if (!load(&s, argv[0])) return 1;
    if (!load(&c, argv[4])) return 1;
    int x0 = col * (c.w + gap), y0 = r * (c.h + gap);
    if (x0 + c.w > s.w || y0 + c.h > s.h) ok = 0;
    for (int y = 0; y < c.h && ok; y++)
        ok = !memcmp(s.rgb + ((size_t)(y0 + y) * s.w + x0) * 3, c.rgb + (size_t)y * c.w * 3, (size_t)c.w * 3);
    if (!ok) fprintf(stderr, "spo-pnginfo: cell (%d, %d) of %s differs from %s\n", r, col, argv[0], argv[4]);
    spo_png_free(&s);
    spo_png_free(&c);
    return !ok;
}

int main(int argc, char **argv)
{
    if (argc == 7 && !strcmp(argv[1], "--cell")) return cell(argv + 2);
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: spo-pnginfo FILE|- [KEY] | --cell SHEET ROW COL GAP CELL\n");
        return 2;
    }
    spo_png p;
    if (!load(&p, argv[1])) return 1;
    int rc = 0;
    if (argc == 2) printf("%dx%d\n", p.w, p.h);
    else {
        const char *t = spo_png_get_text(&p, argv[2]);
        if (t) printf("%s\n", t);
        else rc = 1;
    }
    spo_png_free(&p);
    return rc;
}
