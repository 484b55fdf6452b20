/* schema.c — parse schemas/NAME.json and validate file listings (see schema.h). */
#include "io/schema.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

#define MAXSYM 32

typedef struct {
    char name[256];
    unsigned dtypes; /* bit per spo_dtype_t */
    int ndim;
    int64_t num[SPO_MAXDIM]; /* exact size, or -1 symbol, -2 free */
    char sym[SPO_MAXDIM][16];
    int finite, optional, pattern;
} ds_rule;

typedef struct {
    char name[64];
    spo_atype_t type;
    int optional;
} attr_rule;

struct spo_schema {
    char name[32];
    int version;
    char tag[48];
    char *description;
    ds_rule *ds;
    int nds;
    attr_rule *at;
    int nat;
};

const char *spo_dtype_name(spo_dtype_t t)
{
    static const char *n[] = {"f32", "f16", "i32", "i64", "str", "other"};
    return (unsigned)t <= SPO_T_OTHER ? n[t] : "other";
}

static int dtype_from(const char *s)
{
    for (int i = 0; i < SPO_T_OTHER; i++)
        if (!strcmp(s, spo_dtype_name((spo_dtype_t)i))) return i;
    return -1;
}

void spo_schema_free(spo_schema *s)
{
    if (!s) return;
    free(s->description), free(s->ds), free(s->at), free(s);
}

static int parse_ds(ds_rule *r, const cJSON *j)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(j, "name");
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(j, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(j, "shape");
    if (!cJSON_IsString(n) || n->valuestring[0] != '/' || strlen(n->valuestring) >= sizeof r->name)
        return spo_err(SPO_EINVAL, "schema: dataset without a valid 'name' (an absolute path)");
    strcpy(r->name, n->valuestring);
    const char *star = strchr(r->name, '*');
    if (star && (strchr(star + 1, '*') || star[-1] != '/' || (star[1] && star[1] != '/')))
        return spo_err(SPO_EINVAL, "schema: dataset '%s': '*' must be one whole path component", r->name);
    r->pattern = star != NULL;
    if (!cJSON_IsArray(dt) || cJSON_GetArraySize(dt) == 0)
        return spo_err(SPO_EINVAL, "schema: dataset '%s': 'dtype' must be a non-empty list", r->name);
    const cJSON *e;
    cJSON_ArrayForEach(e, dt)
    {
        int t = cJSON_IsString(e) ? dtype_from(e->valuestring) : -1;
        if (t < 0) return spo_err(SPO_EINVAL, "schema: dataset '%s': unknown dtype", r->name);
        r->dtypes |= 1u << t;
    }
    if (!cJSON_IsArray(sh) || cJSON_GetArraySize(sh) > SPO_MAXDIM)
        return spo_err(SPO_EINVAL, "schema: dataset '%s': 'shape' must be a list of at most %d dims", r->name,
                       SPO_MAXDIM);
    cJSON_ArrayForEach(e, sh)
    {
        int k = r->ndim++;
        r->sym[k][0] = 0;
        if (cJSON_IsNumber(e) && e->valuedouble >= 0 && e->valuedouble < 1e15 &&
            e->valuedouble == (double)(int64_t)e->valuedouble) {
            r->num[k] = (int64_t)e->valuedouble;
        } else if (cJSON_IsString(e) && e->valuestring[0] && strlen(e->valuestring) < sizeof r->sym[k]) {
            strcpy(r->sym[k], e->valuestring);
            r->num[k] = strcmp(e->valuestring, "_") ? -1 : -2;
        } else
            return spo_err(SPO_EINVAL, "schema: dataset '%s': bad dim %d in 'shape'", r->name, k);
    }
    r->finite = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "finite"));
    r->optional = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "optional"));
    return SPO_OK;
}

int spo_schema_parse(spo_schema **out, const char *json, size_t len)
{
    *out = NULL;
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return spo_err(SPO_EINVAL, "schema: not valid JSON");
    int rc = SPO_OK;
    spo_schema *s = calloc(1, sizeof *s);
    if (!s) { cJSON_Delete(root); return spo_err(SPO_EIO, "out of memory"); }
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(root, "name");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "version");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "description");
    const cJSON *ds = cJSON_GetObjectItemCaseSensitive(root, "datasets");
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(root, "attributes");
    if (!cJSON_IsString(n) || !n->valuestring[0] || strlen(n->valuestring) >= sizeof s->name ||
        strchr(n->valuestring, '/')) {
        rc = spo_err(SPO_EINVAL, "schema: missing or bad 'name'");
        goto out;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 1e6) {
        rc = spo_err(SPO_EINVAL, "schema '%s': missing or bad 'version'", n->valuestring);
        goto out;
    }
    strcpy(s->name, n->valuestring);
    s->version = (int)v->valuedouble;
    snprintf(s->tag, sizeof s->tag, "%s/%d", s->name, s->version);
    s->description = strdup(cJSON_IsString(d) ? d->valuestring : "");
    if (!cJSON_IsArray(ds) || (at && !cJSON_IsArray(at))) {
        rc = spo_err(SPO_EINVAL, "schema '%s': 'datasets' (and 'attributes') must be lists", s->tag);
        goto out;
    }
    s->ds = calloc((size_t)cJSON_GetArraySize(ds) + 1, sizeof *s->ds);
    s->at = calloc((size_t)cJSON_GetArraySize(at) + 1, sizeof *s->at);
    if (!s->ds || !s->at || !s->description) { rc = spo_err(SPO_EIO, "out of memory"); goto out; }
    const cJSON *e;
    cJSON_ArrayForEach(e, ds)
    {
        if ((rc = parse_ds(&s->ds[s->nds], e))) goto out;
        for (int i = 0; i < s->nds; i++)
            if (!strcmp(s->ds[i].name, s->ds[s->nds].name)) {
                rc = spo_err(SPO_EINVAL, "schema '%s': dataset '%s' listed twice", s->tag, s->ds[i].name);
                goto out;
            }
        s->nds++;
    }
    cJSON_ArrayForEach(e, at)
    {
        const cJSON *an = cJSON_GetObjectItemCaseSensitive(e, "name");
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(e, "type");
        attr_rule *r = &s->at[s->nat];
        if (!cJSON_IsString(an) || !an->valuestring[0] || strlen(an->valuestring) >= sizeof r->name ||
            !cJSON_IsString(ty)) {
            rc = spo_err(SPO_EINVAL, "schema '%s': attribute without 'name' or 'type'", s->tag);
            goto out;
        }
        strcpy(r->name, an->valuestring);
        if (!strcmp(ty->valuestring, "string")) r->type = SPO_A_STR;
        else if (!strcmp(ty->valuestring, "int")) r->type = SPO_A_INT;
        else if (!strcmp(ty->valuestring, "float")) r->type = SPO_A_FLOAT;
        else {
            rc = spo_err(SPO_EINVAL, "schema '%s': attribute '%s' has unknown type", s->tag, r->name);
            goto out;
        }
        r->optional = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "optional"));
        s->nat++;
    }
out:
    cJSON_Delete(root);
    if (rc) spo_schema_free(s);
    else *out = s;
    return rc;
}

/* ---- built-in schemas (generated from schemas/NAME.json) ------------------- */
extern const char *const spo_schema_texts[];
static spo_schema **builtin;
static int nbuiltin;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load_builtin(void)
{
    int n = 0;
    while (spo_schema_texts[n]) n++;
    builtin = calloc((size_t)n + 1, sizeof *builtin);
    if (!builtin) return;
    for (int i = 0; i < n; i++)
        if (spo_schema_parse(&builtin[nbuiltin], spo_schema_texts[i], strlen(spo_schema_texts[i])) == SPO_OK)
            nbuiltin++;
}

const spo_schema *spo_schema_builtin_at(int i)
{
    pthread_once(&once, load_builtin);
    return i >= 0 && i < nbuiltin ? builtin[i] : NULL;
}

const spo_schema *spo_schema_builtin(const char *tag)
{
    const spo_schema *best = NULL;
    for (int i = 0; spo_schema_builtin_at(i); i++) {
        const spo_schema *s = builtin[i];
        if (!strcmp(tag, s->tag)) return s;
        if (!strcmp(tag, s->name) && (!best || s->version > best->version)) best = s;
    }
    return best;
}

const char *spo_schema_name(const spo_schema *s) { return s->name; }
int spo_schema_version(const spo_schema *s) { return s->version; }
const char *spo_schema_description(const spo_schema *s) { return s->description; }

/* ---- validation ---------------------------------------------------------- */
typedef struct {
    char name[16];
    int64_t value;
    const char *from;
} binding;

typedef struct {
    binding b[MAXSYM];
    int n;
} bindings;

static binding *find_sym(bindings *bs, const char *name)
{
    for (int i = 0; i < bs->n; i++)
        if (!strcmp(bs->b[i].name, name)) return &bs->b[i];
    return NULL;
}

static int match_name(const char *pat, const char *name)
{
    const char *star = strchr(pat, '*');
    if (!star) return !strcmp(pat, name);
    size_t pre = (size_t)(star - pat), post = strlen(star + 1);
    size_t n = strlen(name);
    if (n < pre + post + 1 || strncmp(pat, name, pre) || strcmp(name + n - post, star + 1)) return 0;
    for (size_t i = pre; i < n - post; i++)
        if (name[i] == '/') return 0;
    return 1;
}

static void fmt_shape(char *b, size_t n, int nd, const int64_t *s)
{
    size_t k = (size_t)snprintf(b, n, "[");
    for (int i = 0; i < nd && k < n; i++) k += (size_t)snprintf(b + k, n - k, "%s%lld", i ? "," : "", (long long)s[i]);
    if (k < n) snprintf(b + k, n - k, "]");
}

static void fmt_rule(char *b, size_t n, const ds_rule *r, bindings *bs)
{
    size_t k = (size_t)snprintf(b, n, "[");
    for (int i = 0; i < r->ndim && k < n; i++)
        k += r->num[i] >= 0 ? (size_t)snprintf(b + k, n - k, "%s%lld", i ? "," : "", (long long)r->num[i])
                            : (size_t)snprintf(b + k, n - k, "%s%s", i ? "," : "", r->sym[i]);
    if (k < n) k += (size_t)snprintf(b + k, n - k, "]");
    int any = 0;
    for (int i = 0; i < r->ndim; i++) any |= r->num[i] == -1 && find_sym(bs, r->sym[i]);
    if (!any || k >= n) return;
    k += (size_t)snprintf(b + k, n - k, " = [");
    for (int i = 0; i < r->ndim && k < n; i++) {
        binding *x = r->num[i] == -1 ? find_sym(bs, r->sym[i]) : NULL;
        if (r->num[i] >= 0) k += (size_t)snprintf(b + k, n - k, "%s%lld", i ? "," : "", (long long)r->num[i]);
        else if (x) k += (size_t)snprintf(b + k, n - k, "%s%lld", i ? "," : "", (long long)x->value);
        else k += (size_t)snprintf(b + k, n - k, "%s%s", i ? "," : "", r->sym[i]);
    }
    if (k < n) snprintf(b + k, n - k, "]");
}

static int check_ds(const spo_schema *s, const ds_rule *r, const spo_dsinfo *d, bindings *bs, const char *fname)
{
    if (!(r->dtypes & (1u << d->type))) {
        char want[64] = "";
        for (int t = 0; t < SPO_T_OTHER; t++)
            if (r->dtypes & (1u << t)) {
                if (want[0]) strcat(want, " or ");
                strcat(want, spo_dtype_name((spo_dtype_t)t));
            }
        return spo_err(SPO_EINVAL, "%s: %s is %s, expected %s (%s)", fname, d->name, spo_dtype_name(d->type), want,
                       s->tag);
    }
    int ok = d->ndim == r->ndim;
    for (int i = 0; ok && i < r->ndim; i++) {
        if (r->num[i] >= 0) ok = d->shape[i] == r->num[i];
        else if (r->num[i] == -1) {
            binding *x = find_sym(bs, r->sym[i]);
            if (x) ok = x->value == d->shape[i];
        }
    }
    if (!ok) {
        char got[128], want[256];
        fmt_shape(got, sizeof got, d->ndim, d->shape);
        fmt_rule(want, sizeof want, r, bs);
        return spo_err(SPO_EINVAL, "%s: %s is %s, expected %s", fname, d->name, got, want);
    }
    for (int i = 0; i < r->ndim; i++) /* bind new symbols */
        if (r->num[i] == -1 && !find_sym(bs, r->sym[i])) {
            if (bs->n == MAXSYM) return spo_err(SPO_EINVAL, "%s: too many shape symbols", fname);
            binding *x = &bs->b[bs->n++];
            snprintf(x->name, sizeof x->name, "%s", r->sym[i]);
            x->value = d->shape[i];
            x->from = d->name;
        }
    if (r->finite && d->nonfinite > 0)
        return spo_err(SPO_EINVAL, "%s: %s has %lld NaN/Inf value%s", fname, d->name, (long long)d->nonfinite,
                       d->nonfinite == 1 ? "" : "s");
    return SPO_OK;
}

int spo_schema_check(const spo_schema *s, const spo_fileinfo *fi, const char *fname, const spo_dimbind *pre)
{
    if (!fi->schema[0])
        return spo_err(SPO_EINVAL, "%s: not an spo file (no 'spo_schema' attribute), expected %s", fname, s->tag);
    if (strcmp(fi->schema, s->tag)) {
        size_t nl = strlen(s->name);
        if (!strncmp(fi->schema, s->name, nl) && fi->schema[nl] == '/')
            return spo_err(SPO_EINVAL, "%s: schema version '%s' is not supported (this spo reads %s)", fname,
                           fi->schema, s->tag);
        return spo_err(SPO_EINVAL, "%s: is a '%s' file, expected %s", fname, fi->schema, s->tag);
    }
    for (int i = 0; i < s->nat; i++) {
        const attr_rule *r = &s->at[i];
        int j;
        for (j = 0; j < fi->nat; j++)
            if (!strcmp(fi->at[j].name, r->name)) break;
        if (j == fi->nat && r->optional) continue;
        if (j == fi->nat) return spo_err(SPO_EINVAL, "%s: missing attribute '%s' (%s)", fname, r->name, s->tag);
        spo_atype_t t = fi->at[j].type;
        if (t != r->type && !(r->type == SPO_A_FLOAT && t == SPO_A_INT)) {
            static const char *tn[] = {"string", "int", "float", "other"};
            return spo_err(SPO_EINVAL, "%s: attribute '%s' is %s, expected %s", fname, r->name, tn[t], tn[r->type]);
        }
    }
    bindings bs = {.n = 0};
    for (const spo_dimbind *p = pre; p && p->name && bs.n < MAXSYM; p++) {
        snprintf(bs.b[bs.n].name, sizeof bs.b[0].name, "%s", p->name);
        bs.b[bs.n].value = p->value;
        bs.b[bs.n++].from = "the model";
    }
    for (int i = 0; i < s->nds; i++) {
        const ds_rule *r = &s->ds[i];
        int found = 0;
        for (int j = 0; j < fi->nds; j++) {
            if (!match_name(r->name, fi->ds[j].name)) continue;
            found++;
            int rc = check_ds(s, r, &fi->ds[j], &bs, fname);
            if (rc) return rc;
        }
        if (!found && !r->optional)
            return spo_err(SPO_EINVAL, "%s: missing dataset %s (%s)", fname, r->name, s->tag);
    }
    return SPO_OK;
}

void spo_fileinfo_free(spo_fileinfo *fi)
{
    free(fi->ds);
    free(fi->at);
    memset(fi, 0, sizeof *fi);
}

/* ---- read-only view ----------------------------------------------------------- */
int spo_schema_n_datasets(const spo_schema *s) { return s->nds; }

const char *spo_schema_ds_name(const spo_schema *s, int i, spo_dtype_t *dtype, int *optional, int *finite)
{
    const ds_rule *r = &s->ds[i];
    if (dtype) {
        *dtype = SPO_T_OTHER;
        for (int t = 0; t < SPO_T_OTHER; t++)
            if (r->dtypes & (1u << t)) {
                *dtype = (spo_dtype_t)t;
                break;
            }
    }
    if (optional) *optional = r->optional;
    if (finite) *finite = r->finite;
    return r->name;
}

int spo_schema_ds_shape(const spo_schema *s, int i, const spo_dimbind *sizes, int64_t dflt, int64_t *shape)
{
    const ds_rule *r = &s->ds[i];
    for (int k = 0; k < r->ndim; k++) {
        shape[k] = r->num[k] >= 0 ? r->num[k] : dflt;
        if (r->num[k] == -1)
            for (const spo_dimbind *b = sizes; b && b->name; b++)
                if (!strcmp(b->name, r->sym[k])) shape[k] = b->value;
    }
    return r->ndim;
}

void spo_schema_ds_shape_str(const spo_schema *s, int i, char *buf, size_t n)
{
    const ds_rule *r = &s->ds[i];
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < r->ndim && k < n; d++)
        k += r->num[d] >= 0 ? (size_t)snprintf(buf + k, n - k, "%s%lld", d ? "," : "", (long long)r->num[d])
                            : (size_t)snprintf(buf + k, n - k, "%s%s", d ? "," : "", r->sym[d]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

int spo_schema_n_attrs(const spo_schema *s) { return s->nat; }

int spo_schema_attr_optional(const spo_schema *s, int i) { return s->at[i].optional; }

const char *spo_schema_attr(const spo_schema *s, int i, spo_atype_t *type)
{
    if (type) *type = s->at[i].type;
    return s->at[i].name;
}
