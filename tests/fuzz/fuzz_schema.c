/* fuzz_schema.c — libFuzzer target for the schema parser and validator.
 * Input: schema JSON, a NUL byte, then a file listing, one entry a line:
 *   "/name TYPE d0,d1,... NONFINITE"  (TYPE 0..5)  or  "@attr TYPE" (0..3)
 *   or "!tag" for the root spo_schema. The listing is checked against the
 * parsed schema and against every built-in schema. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/schema.h"

static void parse_listing(const char *txt, spo_fileinfo *fi)
{
    memset(fi, 0, sizeof *fi);
    const char *p = txt;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char line[512];
        if (n >= sizeof line) n = sizeof line - 1;
        memcpy(line, p, n);
        line[n] = 0;
        p += n + (e ? 1 : 0);
        if (line[0] == '!') {
            snprintf(fi->schema, sizeof fi->schema, "%s", line + 1);
        } else if (line[0] == '@' && fi->nat < 64) {
            spo_attrinfo *na = realloc(fi->at, (size_t)(fi->nat + 1) * sizeof *na);
            if (!na) return;
            fi->at = na;
            spo_attrinfo *a = &fi->at[fi->nat++];
            int t = 0;
            char name[64] = "";
            sscanf(line + 1, "%63s %d", name, &t);
            snprintf(a->name, sizeof a->name, "%s", name);
            a->type = (spo_atype_t)((unsigned)t % 4);
        } else if (line[0] == '/' && fi->nds < 64) {
            spo_dsinfo *nd = realloc(fi->ds, (size_t)(fi->nds + 1) * sizeof *nd);
            if (!nd) return;
            fi->ds = nd;
            spo_dsinfo *d = &fi->ds[fi->nds++];
            memset(d, 0, sizeof *d);
            char name[256] = "", dims[256] = "";
            int t = 0;
            long long bad = 0;
            sscanf(line, "%255s %d %255s %lld", name, &t, dims, &bad);
            snprintf(d->name, sizeof d->name, "%s", name);
            d->type = (spo_dtype_t)((unsigned)t % 6);
            d->nonfinite = bad;
            char *q = dims;
            while (*q && d->ndim < SPO_MAXDIM) {
                d->shape[d->ndim++] = strtoll(q, &q, 10);
                if (*q == ',') q++;
                else break;
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    size_t jl = strlen(buf);
    const char *listing = jl < size ? buf + jl + 1 : "";
    spo_fileinfo fi;
    parse_listing(listing, &fi);
    spo_schema *s = NULL;
    if (spo_schema_parse(&s, buf, jl) == 0) {
        spo_schema_check(s, &fi, "fuzz.h5", NULL);
        for (int i = 0; i < spo_schema_n_datasets(s); i++) {
            char sh[256];
            int64_t shape[SPO_MAXDIM];
            spo_schema_ds_shape_str(s, i, sh, sizeof sh);
            spo_schema_ds_shape(s, i, NULL, 1, shape);
        }
        spo_schema_free(s);
    }
    spo_dimbind pre[] = {{"h", 8}, {"w", 8}, {NULL, 0}};
    for (int i = 0; spo_schema_builtin_at(i); i++) spo_schema_check(spo_schema_builtin_at(i), &fi, "fuzz.h5", pre);
    spo_fileinfo_free(&fi);
    free(buf);
    return 0;
}
