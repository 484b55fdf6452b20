/* spo-inspect — summary and schema check of any spo HDF5 file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "io/h5io.h"

#include "spo-inspect.opts.h"

static void print_shape(const spo_dsinfo *d)
{
    printf("[");
    for (int i = 0; i < d->ndim; i++) printf("%s%lld", i ? "," : "", (long long)d->shape[i]);
    printf("]");
}

static void print_attrs(const spo_h5 *f, const spo_fileinfo *fi)
{
    printf("attributes:\n");
    for (int i = 0; i < fi->nat; i++) {
        const spo_attrinfo *a = &fi->at[i];
        char s[8192];
        int64_t iv;
        double dv;
        printf("  %s = ", a->name);
        if (a->type == SPO_A_STR && !spo_h5_get_attr_str(f, NULL, a->name, s, sizeof s)) printf("\"%s\"\n", s);
        else if (a->type == SPO_A_INT && !spo_h5_get_attr_int(f, NULL, a->name, &iv)) printf("%lld\n", (long long)iv);
        else if (a->type == SPO_A_FLOAT && !spo_h5_get_attr_float(f, NULL, a->name, &dv)) printf("%.9g\n", dv);
        else printf("(unsupported type)\n");
    }
}

static int print_dataset(const spo_h5 *f, const spo_dsinfo *d)
{
    size_t n = 1;
    for (int i = 0; i < d->ndim; i++) n *= (size_t)d->shape[i];
    printf("  %-40s %-4s ", d->name, spo_dtype_name(d->type));
    print_shape(d);
    if (d->type == SPO_T_STR) {
        char **s;
        int64_t cnt;
        if (d->ndim == 1 && !spo_h5_read_strings(f, d->name, &s, &cnt)) {
            if (cnt) printf("  first \"%.60s\"", s[0]);
            spo_strings_free(s, cnt);
        }
        printf("\n");
        return 0;
    }
    if (d->type == SPO_T_OTHER || n == 0) {
        printf("\n");
        return 0;
    }
    if (d->type == SPO_T_I32 || d->type == SPO_T_I64) {
        int64_t *v = malloc(n * sizeof *v);
        if (!v) return spo_err(SPO_EIO, "out of memory");
        int rc = spo_h5_read_i64(f, d->name, v, n);
        if (!rc) {
            int64_t lo = v[0], hi = v[0];
            for (size_t i = 1; i < n; i++) lo = v[i] < lo ? v[i] : lo, hi = v[i] > hi ? v[i] : hi;
            printf("  min %lld max %lld\n", (long long)lo, (long long)hi);
        }
        free(v);
        return rc;
    }
    float *v = malloc(n * sizeof *v);
    if (!v) return spo_err(SPO_EIO, "out of memory");
    int rc = spo_h5_read_f32(f, d->name, v, n);
    if (!rc) {
        double lo = INFINITY, hi = -INFINITY, sum = 0;
        size_t nan = 0, inf = 0, ok = 0;
        for (size_t i = 0; i < n; i++) {
            if (isnan(v[i])) nan++;
            else if (isinf(v[i])) inf++;
            else {
                lo = v[i] < lo ? v[i] : lo;
                hi = v[i] > hi ? v[i] : hi;
                sum += v[i];
                ok++;
            }
        }
        if (ok) printf("  min %.6g max %.6g mean %.6g", lo, hi, sum / (double)ok);
        printf("  nan %zu inf %zu\n", nan, inf);
    }
    free(v);
    return rc;
}

static int inspect(const char *path)
{
    spo_h5 *f;
    int rc = spo_h5_open(&f, path, NULL, NULL);
    if (rc) return rc;
    spo_fileinfo fi;
    if ((rc = spo_h5_listing(f, &fi, 1))) {
        spo_h5_close(f);
        return rc;
    }
    printf("file: %s\n", spo_h5_path(f));
    if (fi.schema[0]) {
        const spo_schema *s = spo_schema_builtin(fi.schema);
        int bad = s ? spo_schema_check(s, &fi, spo_h5_path(f), NULL) : SPO_EINVAL;
        if (!s) printf("schema: %s (unknown to this spo)\n", fi.schema);
        else if (bad) printf("schema: %s (INVALID: %s)\n", fi.schema, spo_errmsg());
        else printf("schema: %s (valid)\n", fi.schema);
    } else
        printf("schema: none (not an spo file)\n");
    print_attrs(f, &fi);
    printf("datasets:\n");
    for (int i = 0; i < fi.nds && !rc; i++) rc = print_dataset(f, &fi.ds[i]);
    spo_fileinfo_free(&fi);
    spo_h5_close(f);
    return rc;
}

static int copy_to(spo_h5 *src, const spo_schema *s, const char *out, int force)
{
    char tag[64];
    snprintf(tag, sizeof tag, "%s/%d", spo_schema_name(s), spo_schema_version(s));
    spo_h5 *dst;
    int rc = spo_h5_create(&dst, out, tag, force);
    if (rc) return rc;
    if ((rc = spo_h5_copy_all(dst, src))) {
        spo_h5_abort(dst);
        return rc;
    }
    return spo_h5_commit(dst);
}

static int check(const char *path, const char *want, const char *out, int force)
{
    spo_h5 *f;
    int rc = spo_h5_open(&f, path, NULL, NULL);
    if (rc) return rc;
    char tag[64] = "";
    if (want) snprintf(tag, sizeof tag, "%s", want);
    else if (spo_h5_exists(f, "/") && spo_h5_get_attr_str(f, NULL, "spo_schema", tag, sizeof tag)) {
        rc = spo_err(SPO_EINVAL, "%s: not an spo file (no 'spo_schema' attribute)", spo_h5_path(f));
        spo_h5_close(f);
        return rc;
    }
    const spo_schema *s = spo_schema_builtin(tag);
    if (!s && !want) { /* another version of a known schema gets the precise message from the check */
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)strcspn(tag, "/"), tag);
        s = spo_schema_builtin(name);
    }
    if (!s) rc = spo_err(SPO_EINVAL, "%s: unknown schema '%s'", spo_h5_path(f), tag);
    else {
        spo_fileinfo fi;
        rc = spo_h5_listing(f, &fi, 1);
        if (!rc) rc = spo_schema_check(s, &fi, spo_h5_path(f), NULL);
        spo_fileinfo_free(&fi);
        if (!rc && out) rc = copy_to(f, s, out, force);
        else if (!rc) printf("%s: ok (%s/%d)\n", spo_h5_path(f), spo_schema_name(s), spo_schema_version(s));
    }
    spo_h5_close(f);
    return rc;
}

static void describe(const spo_schema *s)
{
    static const char *at[] = {"string", "int", "float", "other"};
    printf("%s/%d\n%s\n\ndatasets:\n", spo_schema_name(s), spo_schema_version(s), spo_schema_description(s));
    for (int i = 0; i < spo_schema_n_datasets(s); i++) {
        spo_dtype_t t;
        int opt, fin;
        char sh[128];
        const char *name = spo_schema_ds_name(s, i, &t, &opt, &fin);
        spo_schema_ds_shape_str(s, i, sh, sizeof sh);
        printf("  %-24s %-4s %-16s%s%s\n", name, spo_dtype_name(t), sh, opt ? " optional" : "", fin ? " finite" : "");
    }
    printf("attributes:\n");
    for (int i = 0; i < spo_schema_n_attrs(s); i++) {
        spo_atype_t t;
        const char *name = spo_schema_attr(s, i, &t);
        printf("  %-24s %s%s\n", name, at[t], spo_schema_attr_optional(s, i) ? " optional" : "");
    }
}

int main(int argc, char **argv)
{
    tool_vals c;
    spo_args a;
    spo_parse(&tool, argc, argv, &a, &c, sizeof c, NULL);
    if (c.schema) c.check = 1;
    if (c.list) {
        for (int i = 0; spo_schema_builtin_at(i); i++) {
            const spo_schema *s = spo_schema_builtin_at(i);
            printf("%s/%d\t%s\n", spo_schema_name(s), spo_schema_version(s), spo_schema_description(s));
        }
        return spo_finish();
    }
    if (c.describe) {
        const spo_schema *s = spo_schema_builtin(c.describe);
        if (!s) spo_die(2, "unknown schema '%s' (see --list-schemas)", c.describe);
        describe(s);
        return spo_finish();
    }
    if (a.argc < 1) spo_die(2, "missing input file (try 'spo-inspect --help')");
    if (c.schema && !spo_schema_builtin(c.schema)) spo_die(2, "unknown schema '%s' (see --list-schemas)", c.schema);
    if (a.out && a.argc != 1) spo_die(2, "-o takes exactly one input file");
    if (a.out && !strcmp(a.out, "-") && !strcmp(a.argv[0], "-")) c.check = 1;
    int stdin_used = 0;
    for (int i = 0; i < a.argc; i++) {
        if (!strcmp(a.argv[i], "-") && stdin_used++) spo_die(2, "'-' (stdin) given more than once");
        int rc = c.check || a.out ? check(a.argv[i], c.schema, a.out, a.force) : inspect(a.argv[i]);
        if (rc) spo_die_lib(rc);
    }
    return spo_finish();
}
