/* spo-hostile FILE.h5 KIND DATASET TARGET — turn one dataset of an existing
 * HDF5 file into one that reaches outside the file, for the command tests of
 * "files must be self-contained" (spo-files(5)):
 *   external  the dataset's bytes are stored in TARGET (e.g. /etc/passwd)
 *   virtual   a virtual dataset whose source is DATASET in the HDF5 file TARGET
 *   elink     DATASET becomes an external link to DATASET in the file TARGET
 * The dataset keeps its type and shape. And for "sizes are checked before
 * allocation" (issue 9, class 3):
 *   huge      DATASET declares the shape TARGET (e.g. 3x4x100000x100000) in
 *             chunks that are never written: a file of a few KB
 *   hollow    DATASET keeps its shape, contiguous, its bytes never written
 *             (the file stores fewer bytes than the shape declares)
 * Exit 0 done, 1 failed, 2 bad call. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "AxBxC" -> dims; the rank, 0 when malformed */
static int parse_dims(const char *s, hsize_t *dims, int max)
{
    int n = 0;
    while (*s && n < max) {
        char *end;
        unsigned long long v = strtoull(s, &end, 10);
        if (end == s || !v) return 0;
        dims[n++] = (hsize_t)v;
        if (*end == 'x') s = end + 1;
        else if (!*end) return n;
        else return 0;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: spo-hostile FILE.h5 external|virtual|elink|huge|hollow DATASET TARGET\n");
        return 2;
    }
    const char *path = argv[1], *kind = argv[2], *ds = argv[3], *target = argv[4];
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = f < 0 ? -1 : H5Dopen2(f, ds, H5P_DEFAULT);
    if (d < 0) {
        fprintf(stderr, "spo-hostile: %s: cannot open %s\n", path, ds);
        return 1;
    }
    hid_t type = H5Dget_type(d), space = H5Dget_space(d);
    H5Dclose(d);
    int bad = H5Ldelete(f, ds, H5P_DEFAULT) < 0;
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (!strcmp(kind, "external")) {
        bad |= H5Pset_external(dcpl, target, 0, H5F_UNLIMITED) < 0;
        bad |= H5Dclose(H5Dcreate2(f, ds, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT)) < 0;
    } else if (!strcmp(kind, "virtual")) {
        bad |= H5Pset_virtual(dcpl, space, target, ds, space) < 0;
        bad |= H5Dclose(H5Dcreate2(f, ds, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT)) < 0;
    } else if (!strcmp(kind, "huge")) {
        hsize_t dims[8], chunk[8];
        int nd = parse_dims(target, dims, 8);
        if (!nd) {
            fprintf(stderr, "spo-hostile: bad shape '%s' (like 3x4x100000x100000)\n", target);
            return 2;
        }
        for (int i = 0; i < nd; i++) chunk[i] = i == nd - 1 && dims[i] > 64 ? 64 : (i == nd - 1 ? dims[i] : 1);
        hid_t sp = H5Screate_simple(nd, dims, NULL);
        bad |= H5Pset_chunk(dcpl, nd, chunk) < 0;
        bad |= H5Dclose(H5Dcreate2(f, ds, type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT)) < 0;
        H5Sclose(sp);
    } else if (!strcmp(kind, "hollow")) {
        bad |= H5Pset_layout(dcpl, H5D_CONTIGUOUS) < 0;
        bad |= H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_LATE) < 0;
        bad |= H5Dclose(H5Dcreate2(f, ds, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT)) < 0;
    } else if (!strcmp(kind, "elink")) {
        bad |= H5Lcreate_external(target, ds, f, ds, H5P_DEFAULT, H5P_DEFAULT) < 0;
    } else {
        fprintf(stderr, "spo-hostile: unknown kind '%s'\n", kind);
        return 2;
    }
    H5Pclose(dcpl);
    H5Tclose(type);
    H5Sclose(space);
    bad |= H5Fclose(f) < 0;
    if (bad) fprintf(stderr, "spo-hostile: %s: cannot write the %s dataset\n", path, kind);
    return bad;
}
