/* loopfile.c — checks shared by the loop's files (see loopfile.h). */
#include "spo/loopfile.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "io/modelid.h"
#include "io/schema.h"
#include "nn/lora_export.h"
#include "nn/lora_load.h"

int spo_same_model(const char *fa, const char *ma, const char *fb, const char *mb)
{
    if (!strcmp(ma, mb)) return SPO_OK;
    return spo_err(SPO_EINVAL, "%s is for model '%s', %s for model '%s'", fa, ma, fb, mb);
}

int spo_text_clean(const spo_h5 *f, char *buf, size_t n)
{
    if (!spo_h5_has_attr(f, NULL, "text_clean")) {
        snprintf(buf, n, "basic");
        return SPO_OK;
    }
    return spo_h5_get_attr_str(f, NULL, "text_clean", buf, n);
}

int spo_same_text_clean(const char *fa, const char *ta, const char *fb, const char *tb)
{
    if (!strcmp(ta, tb)) return SPO_OK;
    return spo_err(SPO_EINVAL, "cannot mix embeddings made with --text-clean %s (%s) and %s (%s)", ta, fa, tb, fb);
}

int spo_model_matches(const char *file, const char *mid, const char *model_dir)
{
    char want[SPO_MODEL_ID_LEN];
    int rc = spo_model_id(model_dir, want, sizeof want);
    if (rc) return rc;
    return spo_same_model(file, mid, model_dir, want);
}

static int cmp_i64(const void *pa, const void *pb)
{
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    return (a > b) - (a < b);
}

int spo_ids_distinct(const int64_t *ids, int64_t n, const char *file)
{
    int64_t *t = malloc(((size_t)n + 1) * sizeof *t);
    if (!t) return spo_err(SPO_EIO, "out of memory");
    memcpy(t, ids, (size_t)n * sizeof *t);
    qsort(t, (size_t)n, sizeof *t, cmp_i64);
    int rc = SPO_OK;
    for (int64_t i = 1; i < n && !rc; i++)
        if (t[i] == t[i - 1]) rc = spo_err(SPO_EINVAL, "%s: prompt id %" PRId64 " appears more than once", file, t[i]);
    free(t);
    return rc;
}

static uint64_t phys_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || size <= 0) return UINT64_MAX;
    return (uint64_t)pages > UINT64_MAX / (uint64_t)size ? UINT64_MAX : (uint64_t)pages * (uint64_t)size;
}

int spo_size_check(const char *file, const char *field, const int64_t *dims, int nd, int64_t lo, size_t elem,
                   size_t *bytes)
{
    uint64_t n = elem, lim = phys_bytes();
    if (lim > SIZE_MAX) lim = SIZE_MAX;
    for (int i = 0; i < nd; i++) {
        if (dims[i] < lo)
            return spo_err(SPO_EINVAL, "%s: %s has dimension %d of size %" PRId64 " (at least %" PRId64 ")", file,
                           field, i, dims[i], lo);
        if (dims[i] && n > lim / (uint64_t)dims[i])
            return spo_err(SPO_EINVAL, "%s: %s declares more data than this machine's memory (%" PRIu64 " MiB)", file,
                           field, lim >> 20);
        n *= (uint64_t)dims[i];
    }
    if (bytes) *bytes = (size_t)n;
    return SPO_OK;
}

int spo_storage_check(const spo_h5 *f, const char *name)
{
    const char *fn = spo_h5_path(f);
    hid_t ds = H5Dopen2(spo_h5_id(f), name, H5P_DEFAULT);
    if (ds < 0) return spo_err(SPO_EINVAL, "%s: cannot open %s", fn, name);
    hid_t sp = H5Dget_space(ds), ty = H5Dget_type(ds), pl = H5Dget_create_plist(ds);
    int nd = sp < 0 ? -1 : H5Sget_simple_extent_ndims(sp);
    hsize_t dims[32];
    uint64_t declared = ty < 0 ? 0 : (uint64_t)H5Tget_size(ty), stored = H5Dget_storage_size(ds);
    int filtered = pl >= 0 && H5Pget_nfilters(pl) > 0, rc = SPO_OK;
    if (nd < 0 || nd > 32 || H5Sget_simple_extent_dims(sp, dims, NULL) < 0)
        rc = spo_err(SPO_EINVAL, "%s: cannot read the shape of %s", fn, name);
    for (int i = 0; i < nd && !rc && declared; i++) {
        if (dims[i] && declared > UINT64_MAX / dims[i]) declared = UINT64_MAX;
        else declared *= dims[i];
    }
    if (!rc && !filtered && stored < declared)
        rc = spo_err(SPO_EINVAL, "%s: %s declares %" PRIu64 " bytes but stores %" PRIu64
                     " (a sparse or truncated dataset)", fn, name, declared, stored);
    if (pl >= 0) H5Pclose(pl);
    if (ty >= 0) H5Tclose(ty);
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(ds);
    return rc;
}

int spo_dim_check(const char *file, const char *field, int64_t v, int64_t lo, int64_t hi)
{
    if (v >= lo && v <= hi) return SPO_OK;
    return spo_err(SPO_EINVAL, "%s: %s %" PRId64 " out of range %" PRId64 "..%" PRId64, file, field, v, lo, hi);
}

int spo_timestep_check(const char *file, const char *field, int64_t t)
{
    return spo_dim_check(file, field, t, 0, SPO_MAX_TIMESTEP);
}

int spo_own_schema_check(const spo_h5 *f, const char *name, const spo_dimbind *pre, int *version)
{
    const spo_schema *newest = spo_schema_builtin(name), *sc = NULL;
    if (!newest) return spo_err(SPO_EINVAL, "unknown schema '%s'", name);
    spo_fileinfo fi;
    int rc = spo_h5_listing(f, &fi, 1);
    if (rc) return rc;
    size_t nl = strlen(name);
    if (!strncmp(fi.schema, name, nl) && fi.schema[nl] == '/') sc = spo_schema_builtin(fi.schema);
    /* no attribute, another schema or an unknown version: the message of the newest */
    rc = spo_schema_check(sc ? sc : newest, &fi, spo_h5_path(f), pre);
    if (!rc) *version = spo_schema_version(sc);
    spo_fileinfo_free(&fi);
    return rc;
}

int spo_lora_attach(spo_lora *l, const char *path, spo_unet *u, const char *model_file, const char *model_id)
{
    int rc = spo_lora_load_any(l, path, u);
    if (rc) return rc;
    if (model_file && l->model_id[0]) rc = spo_same_model(path, l->model_id, model_file, model_id);
    if (!rc && (rc = spo_lora_merge(l, u, 1.0f))) rc = spo_err_prefix(rc, "%s", path);
    if (rc) spo_lora_free(l);
    return rc;
}

int spo_loopattrs_read(const spo_h5 *f, spo_loopattrs *a)
{
    int rc = spo_h5_get_attr_str(f, NULL, "model_id", a->model_id, sizeof a->model_id);
    if (!rc) rc = spo_h5_get_attr_str(f, NULL, "lora_id", a->lora_id, sizeof a->lora_id);
    if (!rc) rc = spo_h5_get_attr_int(f, NULL, "seed", &a->seed);
    if (!rc) rc = spo_h5_get_attr_int(f, NULL, "step", &a->step);
    if (!rc) rc = spo_h5_get_attr_int(f, NULL, "num_steps", &a->num_steps);
    if (!rc) rc = spo_h5_get_attr_int(f, NULL, "timestep", &a->timestep);
    return rc;
}

int spo_loopattrs_write(spo_h5 *out, const spo_loopattrs *a)
{
    const spo_h5_attrval at[] = {
        {"model_id", SPO_ATTR_STR, .s = a->model_id}, {"lora_id", SPO_ATTR_STR, .s = a->lora_id},
        {"seed", SPO_ATTR_INT, .i = a->seed},         {"step", SPO_ATTR_INT, .i = a->step},
        {"num_steps", SPO_ATTR_INT, .i = a->num_steps}, {"timestep", SPO_ATTR_INT, .i = a->timestep},
        {NULL},
    };
    return spo_h5_attrs(out, NULL, at);
}
