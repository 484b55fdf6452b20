/* jsoncfg.c — JSON config files and typed reads with defaults (see
 * jsoncfg.h). */
#include "io/jsoncfg.h"
#include "core/infile.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *spo_cfg_name(const cJSON *cfg) { return cfg && cfg->string ? cfg->string : "config"; }

int spo_cfg_parse(cJSON **cfg, const char *text, size_t len, const char *label)
{
    *cfg = NULL;
    if (memchr(text, 0, len)) return spo_err(SPO_EINVAL, "%s: contains a NUL byte", label);
    char *buf = malloc(len + 1);
    char *name = cJSON_malloc(strlen(label) + 1);
    if (!buf || !name) {
        free(buf);
        cJSON_free(name);
        return spo_err(SPO_EIO, "out of memory");
    }
    memcpy(buf, text, len);
    buf[len] = 0;
    strcpy(name, label);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(buf, &end, 1);
    if (!root) {
        int line = 1, col = 1;
        for (const char *p = buf; end && p < end && *p; p++) {
            if (*p == '\n') line++, col = 1;
            else col++;
        }
        free(buf);
        cJSON_free(name);
        return spo_err(SPO_EINVAL, "%s: invalid JSON at line %d, column %d", label, line, col);
    }
    free(buf);
    if (root->string && !(root->type & cJSON_StringIsConst)) cJSON_free(root->string);
    root->string = name;
    root->type &= ~cJSON_StringIsConst;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return spo_err(SPO_EINVAL, "%s: not a JSON object", label);
    }
    *cfg = root;
    return SPO_OK;
}

int spo_cfg_load(cJSON **cfg, const char *path)
{
    *cfg = NULL;
    FILE *f;
    int orc = spo_fopen_in(&f, path);
    if (orc) return orc;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    int rc = SPO_OK;
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        if (cap >= SPO_CFG_MAX_BYTES) {
            rc = spo_err(SPO_EINVAL, "%s: larger than %d bytes", path, SPO_CFG_MAX_BYTES);
            break;
        }
        char *b = realloc(buf, cap * 2);
        if (!b) free(buf);
        buf = b;
        cap *= 2;
    }
    if (!buf) rc = spo_err(SPO_EIO, "out of memory");
    else if (!rc && ferror(f)) rc = spo_err(SPO_EIO, "%s: read error", path);
    fclose(f);
    if (!rc) rc = spo_cfg_parse(cfg, buf, n, path);
    free(buf);
    return rc;
}

/* The item for key, or NULL when absent or JSON null. */
static const cJSON *get(const cJSON *cfg, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

static const char *kind(const cJSON *v)
{
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsArray(v)) return "a list";
    if (cJSON_IsObject(v)) return "an object";
    return "something else";
}

static int is_int(const cJSON *v)
{
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    return d >= INT_MIN && d <= INT_MAX && d == floor(d);
}

int spo_cfg_require(const cJSON *cfg, const char *key)
{
    return get(cfg, key) ? SPO_OK : spo_err(SPO_EINVAL, "%s: missing '%s'", spo_cfg_name(cfg), key);
}

static int is_num(const cJSON *v) { return cJSON_IsNumber(v); }
static int is_bool(const cJSON *v) { return cJSON_IsBool(v); }
static int is_str(const cJSON *v) { return cJSON_IsString(v); }

/* *v = the item for key (NULL when absent or null); SPO_EINVAL "must be
 * <what>" naming the file and key when it fails ok(). */
static int typed(const cJSON *cfg, const char *key, int (*ok)(const cJSON *), const char *what, const cJSON **v)
{
    *v = get(cfg, key);
    if (!*v || ok(*v)) return SPO_OK;
    if (ok == is_int && cJSON_IsNumber(*v))
        return spo_err(SPO_EINVAL, "%s: '%s' must be %s, not %g", spo_cfg_name(cfg), key, what, (*v)->valuedouble);
    return spo_err(SPO_EINVAL, "%s: '%s' must be %s, not %s", spo_cfg_name(cfg), key, what, kind(*v));
}

int spo_cfg_int(const cJSON *cfg, const char *key, int def, int *out)
{
    const cJSON *v;
    *out = def;
    SPO_TRY(typed(cfg, key, is_int, "an integer", &v));
    if (v) *out = (int)v->valuedouble;
    return SPO_OK;
}

int spo_cfg_ints(const cJSON *cfg, const spo_cfg_intkey *keys, int n)
{
    for (int i = 0; i < n; i++) SPO_TRY(spo_cfg_int(cfg, keys[i].key, keys[i].def, keys[i].out));
    return SPO_OK;
}

int spo_cfg_double(const cJSON *cfg, const char *key, double def, double *out)
{
    const cJSON *v;
    *out = def;
    SPO_TRY(typed(cfg, key, is_num, "a number", &v));
    if (v) *out = v->valuedouble;
    return SPO_OK;
}

int spo_cfg_float(const cJSON *cfg, const char *key, float def, float *out)
{
    double d;
    int rc = spo_cfg_double(cfg, key, def, &d);
    *out = (float)d;
    return rc;
}

int spo_cfg_bool(const cJSON *cfg, const char *key, int def, int *out)
{
    const cJSON *v;
    *out = def;
    SPO_TRY(typed(cfg, key, is_bool, "true or false", &v));
    if (v) *out = cJSON_IsTrue(v);
    return SPO_OK;
}

int spo_cfg_str(const cJSON *cfg, const char *key, const char *def, const char **out)
{
    const cJSON *v;
    *out = def;
    SPO_TRY(typed(cfg, key, is_str, "a string", &v));
    if (v) *out = v->valuestring;
    return SPO_OK;
}

/* Shared by the two list readers: checks every element with ok(). */
static int list(const cJSON *cfg, const char *key, int max, int *n, int (*ok)(const cJSON *), const char *what,
                const cJSON **items)
{
    const cJSON *v = get(cfg, key), *e;
    int k = 0;
    *n = 0;
    if (!v) return SPO_OK;
    if (!cJSON_IsArray(v)) goto bad;
    cJSON_ArrayForEach(e, v) {
        if (!ok(e)) goto bad;
        if (k == max)
            return spo_err(SPO_EINVAL, "%s: '%s' has %d entries, at most %d allowed", spo_cfg_name(cfg), key,
                           cJSON_GetArraySize(v), max);
        items[k++] = e;
    }
    *n = k;
    return SPO_OK;
bad:
    return spo_err(SPO_EINVAL, "%s: '%s' must be a list of %s", spo_cfg_name(cfg), key, what);
}

/* Both list readers: strs 0 fills an int out[], 1 a const char *out[]. */
static int array(const cJSON *cfg, const char *key, void *out, int max, int *n, int strs)
{
    const cJSON *items[64];
    const cJSON **it = max <= 64 ? items : malloc((size_t)max * sizeof *it);
    if (!it) return spo_err(SPO_EIO, "out of memory");
    int k = 0, rc = list(cfg, key, max, &k, strs ? is_str : is_int, strs ? "strings" : "integers", it);
    for (int i = 0; !rc && i < k; i++)
        if (strs) ((const char **)out)[i] = it[i]->valuestring;
        else ((int *)out)[i] = (int)it[i]->valuedouble;
    *n = rc ? 0 : k;
    if (it != items) free(it);
    return rc;
}

int spo_cfg_int_array(const cJSON *cfg, const char *key, int *out, int max, int *n)
{
    return array(cfg, key, out, max, n, 0);
}

int spo_cfg_str_array(const cJSON *cfg, const char *key, const char **out, int max, int *n)
{
    return array(cfg, key, out, max, n, 1);
}

int spo_cfg_read(const char *path, int (*parse)(void *out, const cJSON *cfg), void *out)
{
    cJSON *j;
    SPO_TRY(spo_cfg_load(&j, path));
    int rc = parse(out, j);
    cJSON_Delete(j);
    return rc;
}
