/* spo-pnginfo — PNG checks for the command tests, through lib's reader:
 *   spo-pnginfo FILE|-            print "WIDTHxHEIGHT"
 *   spo-pnginfo FILE|- KEY        print the text chunk KEY (exit 1 when absent)
 *   spo-pnginfo --cell SHEET ROW COL GAP CELL
 *                                 exit 0 when cell (ROW, COL) of the contact sheet
 *                                 SHEET (cells of CELL's size, GAP apart) equals CELL
 *   spo-pnginfo --pixels FILE H5 DATASET INDEX MAXOFF
 *                                 compare FILE's pixels with image INDEX of the uint8
 *                                 dataset [N,h,w,3]: print how many differ; exit 0 when
 *                                 none differs by more than 1 and at most MAXOFF differ
 * Exit status: 0 equal (or printed), 1 differs (or KEY absent), 2 a file cannot
 * be read or is not what it should be (not a PNG, no such dataset), or a bad
 * call; so `run -1` in a test tells "differs" from "cannot read". */
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/image_io.h"

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
    if (!load(&s, argv[0])) return 2;
    if (!load(&c, argv[4])) {
        spo_png_free(&s);
        return 2;
    }
    int x0 = col * (c.w + gap), y0 = r * (c.h + gap);
    if (x0 + c.w > s.w || y0 + c.h > s.h) ok = 0;
    for (int y = 0; y < c.h && ok; y++)
        ok = !memcmp(s.rgb + ((size_t)(y0 + y) * s.w + x0) * 3, c.rgb + (size_t)y * c.w * 3, (size_t)c.w * 3);
    if (!ok) fprintf(stderr, "spo-pnginfo: cell (%d, %d) of %s differs from %s\n", r, col, argv[0], argv[4]);
    spo_png_free(&s);
    spo_png_free(&c);
    return !ok;
}

static int pixels(char **argv)
{
    spo_png p;
    long idx = atol(argv[3]), maxoff = atol(argv[4]);
    if (!load(&p, argv[0])) return 2;
    hid_t f = H5Fopen(argv[1], H5F_ACC_RDONLY, H5P_DEFAULT), d = f < 0 ? -1 : H5Dopen2(f, argv[2], H5P_DEFAULT);
    hsize_t shape[4] = {0};
    hid_t sp = d < 0 ? -1 : H5Dget_space(d);
    int nd = sp < 0 ? -1 : H5Sget_simple_extent_ndims(sp);
    if (nd == 4) H5Sget_simple_extent_dims(sp, shape, NULL);
    if (nd != 4 || shape[1] != (hsize_t)p.h || shape[2] != (hsize_t)p.w || shape[3] != 3 || idx < 0 ||
        (hsize_t)idx >= shape[0]) {
        fprintf(stderr, "spo-pnginfo: %s %s does not hold image %ld of %dx%d\n", argv[1], argv[2], idx, p.w, p.h);
        return 2;
    }
    size_t m = (size_t)p.h * p.w * 3, off = 0, big = 0;
    uint8_t *v = malloc(shape[0] * m);
    if (!v || H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) return 2;
    for (size_t i = 0; i < m; i++) {
        int e = abs((int)p.rgb[i] - (int)v[idx * m + i]);
        off += e != 0, big += e > 1;
    }
    printf("%zu of %zu pixel values differ, %zu by more than 1\n", off, m, big);
    free(v);
    H5Sclose(sp), H5Dclose(d), H5Fclose(f);
    spo_png_free(&p);
    return big || off > (size_t)maxoff;
}

int main(int argc, char **argv)
{
    if (argc == 7 && !strcmp(argv[1], "--pixels")) return pixels(argv + 2);
    if (argc == 7 && !strcmp(argv[1], "--cell")) return cell(argv + 2);
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: spo-pnginfo FILE|- [KEY] | --cell SHEET ROW COL GAP CELL | --pixels FILE H5 DATASET INDEX MAXOFF\n");
        return 2;
    }
    spo_png p;
    if (!load(&p, argv[1])) return 2;
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
