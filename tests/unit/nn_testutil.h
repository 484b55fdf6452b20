/* nn_testutil.h — helpers for the model parity tests (static, header only):
 * read an HDF5 dataset as floats or int32, relative L2 error, and write a
 * small safetensors file of zeros from a list of names and shapes. (static
 * inline so a test that uses only some of them stays warning-free) */
#ifndef SPO_NN_TESTUTIL_H
#define SPO_NN_TESTUTIL_H

#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* dataset name of file into a malloc'd array of type; its element count in *n */
static inline void *h5_read(const char *file, const char *name, size_t *n, hid_t type, size_t esize)
{
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return NULL;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    void *buf = NULL;
    if (d >= 0) {
        hid_t s = H5Dget_space(d);
        *n = (size_t)H5Sget_simple_extent_npoints(s);
        buf = malloc(*n * esize);
        if (buf && H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
            free(buf);
            buf = NULL;
        }
        H5Sclose(s);
        H5Dclose(d);
    }
    H5Fclose(f);
    return buf;
}

static inline double rel_l2(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

static inline float *h5_floats(const char *file, const char *name, size_t *n)
{
    return h5_read(file, name, n, H5T_NATIVE_FLOAT, sizeof(float));
}

static inline int32_t *h5_ints(const char *file, const char *name, size_t *n)
{
    return h5_read(file, name, n, H5T_NATIVE_INT32, sizeof(int32_t));
}

typedef struct {
    char name[128];
    int nd;
    int64_t shape[4];
} tdesc;

typedef struct {
    tdesc t[128];
    int n;
} tlist;

static inline void tl_add(tlist *l, int nd, int64_t d0, int64_t d1, int64_t d2, int64_t d3, const char *fmt, ...)
{
    tdesc *t = &l->t[l->n++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    t->nd = nd;
    t->shape[0] = d0, t->shape[1] = d1, t->shape[2] = d2, t->shape[3] = d3;
}

/* a safetensors file of zeros (F32) with the tensors of l */
static inline void write_st(const char *path, const tlist *l)
{
    char *hdr = malloc(65536);
    size_t k = 0, off = 0;
    k += (size_t)sprintf(hdr + k, "{");
    for (int i = 0; i < l->n; i++) {
        const tdesc *t = &l->t[i];
        size_t numel = 1;
        k += (size_t)sprintf(hdr + k, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[", i ? "," : "", t->name);
        for (int d = 0; d < t->nd; d++) {
            k += (size_t)sprintf(hdr + k, "%s%lld", d ? "," : "", (long long)t->shape[d]);
            numel *= (size_t)t->shape[d];
        }
        k += (size_t)sprintf(hdr + k, "],\"data_offsets\":[%zu,%zu]}", off, off + 4 * numel);
        off += 4 * numel;
    }
    k += (size_t)sprintf(hdr + k, "}");
    while (k % 8) hdr[k++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f) { free(hdr); return; }
    uint64_t hl = k;
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(hl >> (8 * i));
    fwrite(le, 1, 8, f);
    fwrite(hdr, 1, k, f);
    for (size_t i = 0; i < off; i++) fputc(0, f);
    fclose(f);
    free(hdr);
}

#endif
