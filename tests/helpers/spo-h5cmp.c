/* spo-h5cmp A.h5 /dsA B.h5 /dsB RTOL — compare two float datasets: print
 * their relative L2 error ||a-b|| / ||b|| and exit 0 if it is <= RTOL, 1 if
 * not, 2 on a bad call or unreadable/mismatched data (like nccmp, for the
 * command tests).
 * spo-h5cmp A.h5 /dsA B.h5 /dsB exact — compare two integer datasets (any
 * integer type, read as int64) element by element: print how many differ
 * and exit 0 only when none does (same element count, possibly 0). A float
 * dataset there is a bad call (exit 2): read as integers its values would
 * be truncated; compare floats with RTOL 0 instead. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "io/h5io.h"

static float *load(const char *path, const char *ds, size_t *n)
{
    spo_h5 *f;
    spo_dsinfo d;
    if (spo_h5_open(&f, path, NULL, NULL)) return NULL;
    if (spo_h5_info(f, ds, &d)) {
        spo_h5_close(f);
        return NULL;
    }
    *n = 1;
    for (int i = 0; i < d.ndim; i++) *n *= (size_t)d.shape[i];
    float *v = malloc((*n + 1) * sizeof *v);
    if (v && spo_h5_read_f32(f, ds, v, *n)) {
        free(v);
        v = NULL;
    }
    spo_h5_close(f);
    return v;
}

static int64_t *load_int(const char *path, const char *ds, size_t *n)
{
    spo_h5 *f;
    spo_dsinfo d;
    if (spo_h5_open(&f, path, NULL, NULL)) return NULL;
    if (spo_h5_info(f, ds, &d)) {
        spo_h5_close(f);
        return NULL;
    }
    *n = 1;
    for (int i = 0; i < d.ndim; i++) *n *= (size_t)d.shape[i];
    int64_t *v = malloc((*n + 1) * sizeof *v);
    if (v && spo_h5_read_i64(f, ds, v, *n)) {
        free(v);
        v = NULL;
    }
    spo_h5_close(f);
    return v;
}

static int is_float(const char *path, const char *ds)
{
    spo_h5 *f;
    spo_dsinfo d;
    int fl = 0;
    if (spo_h5_open(&f, path, NULL, NULL)) return 0;
    if (!spo_h5_info(f, ds, &d)) fl = d.type == SPO_T_F32 || d.type == SPO_T_F16;
    spo_h5_close(f);
    return fl;
}

static int exact(char **argv)
{
    if (is_float(argv[1], argv[2]) || is_float(argv[3], argv[4])) {
        fprintf(stderr, "spo-h5cmp: %s or %s is a float dataset: 'exact' is for integers, give RTOL 0\n", argv[2],
                argv[4]);
        return 2;
    }
    size_t na, nb;
    int64_t *a = load_int(argv[1], argv[2], &na), *b = a ? load_int(argv[3], argv[4], &nb) : NULL;
    if (!a || !b) {
        fprintf(stderr, "spo-h5cmp: %s\n", spo_errmsg());
        free(a);
        return 2;
    }
    if (na != nb) {
        fprintf(stderr, "spo-h5cmp: %zu vs %zu elements\n", na, nb);
        free(a), free(b);
        return 2;
    }
    size_t diff = 0;
    for (size_t i = 0; i < na; i++)
        if (a[i] != b[i]) {
            if (!diff) printf("first difference at element %zu: %lld vs %lld\n", i, (long long)a[i], (long long)b[i]);
            diff++;
        }
    printf("%zu of %zu elements differ\n", diff, na);
    free(a), free(b);
    return diff ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: spo-h5cmp A.h5 /dsA B.h5 /dsB RTOL|exact\n");
        return 2;
    }
    if (!strcmp(argv[5], "exact")) return exact(argv);
    size_t na, nb;
    float *a = load(argv[1], argv[2], &na), *b = a ? load(argv[3], argv[4], &nb) : NULL;
    if (!a || !b) {
        fprintf(stderr, "spo-h5cmp: %s\n", spo_errmsg());
        free(a);
        return 2;
    }
    if (na != nb) {
        fprintf(stderr, "spo-h5cmp: %zu vs %zu elements\n", na, nb);
        free(a), free(b);
        return 2;
    }
    double num = 0, den = 0;
    for (size_t i = 0; i < na; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    double rel = sqrt(num / (den > 0 ? den : 1));
    printf("relative L2 error %.3g (%zu elements)\n", rel, na);
    free(a);
    free(b);
    return rel <= atof(argv[5]) ? 0 : 1;
}
