/* spo-testfiles DIR — write example files for the command tests:
 * DIR/good/NAME.h5, one valid file per built-in schema (written through the
 * library, so the write-side validation passes), and DIR/bad/KIND.h5, pool
 * files each broken in one way (written without validation). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/err.h"
#include "io/h5io.h"
#include "core/prov.h"

static const spo_dimbind sizes[] = {{"B", 2}, {"K", 4}, {"C", 4}, {"h", 8}, {"w", 8}, {"P", 2}, {"L", 7},
                                    {"D", 8}, {"S", 7}, {"N", 3}, {"M", 1}, {"r", 4}, {NULL, 0}};

enum { OK, NO_SCHEMA, BAD_NAME, BAD_VERSION, MISSING_DS, WRONG_DTYPE, WRONG_RANK, WRONG_SHAPE, HAS_NAN, HAS_INF,
       MISSING_ATTR, ATTR_TYPE };

static int write_file(const char *path, const spo_schema *s, int defect)
{
    char tag[64];
    snprintf(tag, sizeof tag, "%s/%d", spo_schema_name(s), spo_schema_version(s));
    spo_h5 *f;
    int rc = spo_h5_create(&f, path, defect == OK ? tag : NULL, 1);
    if (rc) return rc;
    for (int i = 0; i < spo_schema_n_datasets(s) && !rc; i++) {
        spo_dtype_t t;
        const char *pat = spo_schema_ds_name(s, i, &t, NULL, NULL);
        char name[256];
        const char *star = strchr(pat, '*');
        if (star) snprintf(name, sizeof name, "%.*sm0%s", (int)(star - pat), pat, star + 1);
        else snprintf(name, sizeof name, "%s", pat);
        int64_t shape[SPO_MAXDIM];
        int nd = spo_schema_ds_shape(s, i, sizes, 6, shape);
        int first = !strcmp(name, "/children");
        if (first && defect == MISSING_DS) continue;
        if (first && defect == WRONG_RANK) nd--;
        if (first && defect == WRONG_SHAPE) shape[nd - 1]++;
        if (!strcmp(name, "/parent") && defect == WRONG_DTYPE) t = SPO_T_I32;
        size_t n = 1;
        for (int k = 0; k < nd; k++) n *= (size_t)shape[k];
        if (t == SPO_T_STR) {
            const char **v = calloc(n + 1, sizeof *v);
            for (size_t k = 0; k < n; k++) v[k] = k % 2 ? "a photo of a cat" : "down_blocks.0.attn1.to_q";
            rc = spo_h5_write_strings(f, name, (int64_t)n, v);
            free(v);
            continue;
        }
        void *buf = calloc(n + 1, 8);
        for (size_t k = 0; k < n; k++) {
            if (t == SPO_T_F32 || t == SPO_T_F16) ((float *)buf)[k] = (float)sin(0.37 * (double)k + i);
            else if (t == SPO_T_I32) ((int32_t *)buf)[k] = (int32_t)k;
            else ((int64_t *)buf)[k] = (int64_t)k;
        }
        if (!strcmp(name, "/parent") && defect == HAS_NAN) ((float *)buf)[n / 2] = NAN;
        if (!strcmp(name, "/x0_hat") && defect == HAS_INF) ((float *)buf)[1] = -INFINITY;
        rc = spo_h5_write(f, name, t, nd, shape, buf);
        free(buf);
    }
    for (int i = 0; i < spo_schema_n_attrs(s) && !rc; i++) {
        spo_atype_t t;
        const char *a = spo_schema_attr(s, i, &t);
        if (spo_schema_attr_optional(s, i)) continue;
        if (defect == MISSING_ATTR && !strcmp(a, "model_id")) continue;
        if (defect == ATTR_TYPE && !strcmp(a, "step")) t = SPO_A_STR;
        if (t == SPO_A_STR) rc = spo_h5_attr_str(f, NULL, a, "example");
        else if (t == SPO_A_INT) rc = spo_h5_attr_int(f, NULL, a, 3);
        else rc = spo_h5_attr_float(f, NULL, a, 5.0);
    }
    if (!rc && defect != OK && defect != NO_SCHEMA)
        rc = spo_h5_attr_str(f, NULL, "spo_schema",
                             defect == BAD_NAME ? "poool/1" : defect == BAD_VERSION ? "pool/2" : tag);
    if (rc) {
        spo_h5_abort(f);
        return rc;
    }
    return spo_h5_commit(f);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: spo-testfiles DIR\n");
        return 2;
    }
    spo_prov_set_cmdline(argc, argv);
    char p[4096];
    snprintf(p, sizeof p, "%s/good", argv[1]);
    mkdir(argv[1], 0755);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/bad", argv[1]);
    mkdir(p, 0755);
    for (int i = 0; spo_schema_builtin_at(i); i++) {
        const spo_schema *s = spo_schema_builtin_at(i);
        snprintf(p, sizeof p, "%s/good/%s.h5", argv[1], spo_schema_name(s));
        if (write_file(p, s, OK)) {
            fprintf(stderr, "spo-testfiles: %s\n", spo_errmsg());
            return 1;
        }
    }
    static const char *kinds[] = {"ok", "no_schema", "bad_name", "bad_version", "missing_dataset", "wrong_dtype",
                                  "wrong_rank", "wrong_shape", "nan", "inf", "missing_attr", "attr_type"};
    const spo_schema *pool = spo_schema_builtin("pool");
    for (int d = NO_SCHEMA; d <= ATTR_TYPE; d++) {
        snprintf(p, sizeof p, "%s/bad/%s.h5", argv[1], kinds[d]);
        if (write_file(p, pool, d)) {
            fprintf(stderr, "spo-testfiles: %s\n", spo_errmsg());
            return 1;
        }
    }
    return 0;
}
