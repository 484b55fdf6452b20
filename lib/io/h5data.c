/* h5data.c — datasets and attributes of spo HDF5 files (see h5io.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/grow.h"
#include "io/h5_impl.h"

/* ---- writing ---------------------------------------------------------------- */
static hid_t obj_open(const spo_h5 *f, const char *obj)
{
    if (!obj || !strcmp(obj, "/")) return H5Oopen(f->id, "/", spo_h5_lapl());
    return H5Oopen(f->id, obj, spo_h5_lapl());
}

int spo_h5_new_dataset(spo_h5 *f, const char *name, spo_dtype_t stored, int ndim, int min_rank,
                       const int64_t *shape, hid_t dcpl, hid_t *ds, hid_t *mtype)
{
    *ds = H5I_INVALID_HID;
    hid_t ftype;
    switch (stored) {
    case SPO_T_F32: ftype = H5T_IEEE_F32LE, *mtype = H5T_NATIVE_FLOAT; break;
    case SPO_T_F16: ftype = spo_h5_f16_type(), *mtype = H5T_NATIVE_FLOAT; break;
    case SPO_T_I32: ftype = H5T_STD_I32LE, *mtype = H5T_NATIVE_INT32; break;
    case SPO_T_I64: ftype = H5T_STD_I64LE, *mtype = H5T_NATIVE_INT64; break;
    default: return spo_err(SPO_EINVAL, "%s: %s: unsupported dtype for writing", f->shown, name);
    }
    if (ndim < min_rank || ndim > SPO_MAXDIM) return spo_err(SPO_EINVAL, "%s: %s: rank %d", f->shown, name, ndim);
    hsize_t dims[SPO_MAXDIM];
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return spo_err(SPO_EINVAL, "%s: %s: negative dimension", f->shown, name);
        dims[i] = (hsize_t)shape[i];
    }
    hid_t space = ndim ? H5Screate_simple(ndim, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    *ds = H5Dcreate2(f->id, name, ftype, space, lcpl, dcpl, H5P_DEFAULT);
    H5Pclose(lcpl);
    H5Sclose(space);
    return *ds < 0 ? spo_err(SPO_EIO, "%s: cannot create dataset %s", f->shown, name) : SPO_OK;
}

int spo_h5_write(spo_h5 *f, const char *name, spo_dtype_t stored, int ndim, const int64_t *shape, const void *data)
{
    hid_t ds, mtype;
    int rc = spo_h5_new_dataset(f, name, stored, ndim, 0, shape, H5P_DEFAULT, &ds, &mtype);
    if (rc) return rc;
    if (H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        rc = spo_err(SPO_EIO, "%s: cannot write dataset %s", f->shown, name);
    H5Dclose(ds);
    return rc;
}

static hid_t utf8_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

int spo_h5_write_strings(spo_h5 *f, const char *name, int64_t n, const char *const *s)
{
    hsize_t dim = (hsize_t)n;
    hid_t t = utf8_type();
    hid_t space = H5Screate_simple(1, &dim, NULL);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t ds = H5Dcreate2(f->id, name, t, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    int rc = SPO_OK;
    if (ds < 0 || (n > 0 && H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, s) < 0))
        rc = spo_err(SPO_EIO, "%s: cannot write dataset %s", f->shown, name);
    if (ds >= 0) H5Dclose(ds);
    H5Pclose(lcpl);
    H5Sclose(space);
    H5Tclose(t);
    return rc;
}

static int put_attr(spo_h5 *f, const char *obj, const char *name, hid_t ftype, hid_t mtype, const void *v)
{
    hid_t o = obj_open(f, obj);
    if (o < 0) return spo_err(SPO_EINVAL, "%s: no object %s for attribute %s", f->shown, obj, name);
    if (H5Aexists(o, name) > 0) H5Adelete(o, name);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(o, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
    int rc = SPO_OK;
    if (a < 0 || H5Awrite(a, mtype, v) < 0) rc = spo_err(SPO_EIO, "%s: cannot write attribute %s", f->shown, name);
    if (a >= 0) H5Aclose(a);
    H5Sclose(space);
    H5Oclose(o);
    return rc;
}

int spo_h5_attr_str(spo_h5 *f, const char *obj, const char *name, const char *v)
{
    hid_t t = utf8_type();
    int rc = put_attr(f, obj, name, t, t, &v);
    H5Tclose(t);
    return rc;
}

int spo_h5_attr_int(spo_h5 *f, const char *obj, const char *name, int64_t v)
{
    return put_attr(f, obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
}

int spo_h5_attr_float(spo_h5 *f, const char *obj, const char *name, double v)
{
    return put_attr(f, obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}

int spo_h5_attrs(spo_h5 *f, const char *obj, const spo_h5_attrval *a)
{
    int rc = SPO_OK;
    for (; a->name && !rc; a++)
        rc = a->kind == SPO_ATTR_STR ? spo_h5_attr_str(f, obj, a->name, a->s)
             : a->kind == SPO_ATTR_INT ? spo_h5_attr_int(f, obj, a->name, a->i)
                                       : spo_h5_attr_float(f, obj, a->name, a->f);
    return rc;
}

/* ---- reading ----------------------------------------------------------------- */
static spo_dtype_t classify(hid_t t)
{
    H5T_class_t c = H5Tget_class(t);
    size_t sz = H5Tget_size(t);
    if (c == H5T_FLOAT) return sz == 4 ? SPO_T_F32 : sz == 2 ? SPO_T_F16 : SPO_T_OTHER;
    if (c == H5T_INTEGER && H5Tget_sign(t) == H5T_SGN_2)
        return sz == 4 ? SPO_T_I32 : sz == 8 ? SPO_T_I64 : SPO_T_OTHER;
    if (c == H5T_STRING) return SPO_T_STR;
    return SPO_T_OTHER;
}

int spo_h5_exists(const spo_h5 *f, const char *name)
{
    if (!name || name[0] != '/') return 0;
    /* check each prefix so a missing group is not an HDF5 error */
    char buf[512];
    snprintf(buf, sizeof buf, "%s", name);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = 0;
            if (H5Lexists(f->id, buf, spo_h5_lapl()) <= 0) return 0;
            if (!c) return 1;
            *p = c;
        }
    }
}

static int ds_info(hid_t ds, spo_dsinfo *info, const char *name)
{
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "%s", name);
    hid_t t = H5Dget_type(ds);
    info->type = classify(t);
    H5Tclose(t);
    hid_t sp = H5Dget_space(ds);
    int nd = H5Sget_simple_extent_ndims(sp);
    hsize_t dims[32];
    if (nd < 0 || nd > 32) nd = 0;
    H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    if (nd > SPO_MAXDIM) {
        info->type = SPO_T_OTHER;
        nd = SPO_MAXDIM;
    }
    info->ndim = nd;
    for (int i = 0; i < nd; i++) info->shape[i] = (int64_t)dims[i];
    info->nonfinite = -1;
    return SPO_OK;
}

static hid_t open_ds(const spo_h5 *f, const char *name)
{
    if (!spo_h5_exists(f, name)) {
        spo_err(SPO_EINVAL, "%s: missing dataset %s", f->shown, name);
        return H5I_INVALID_HID;
    }
    hid_t ds = H5Dopen2(f->id, name, spo_h5_dapl());
    if (ds < 0) spo_err(SPO_EINVAL, "%s: %s is not a dataset", f->shown, name);
    else if (!f->writing && spo_h5_check_dataset(f, ds, name)) {
        H5Dclose(ds);
        return H5I_INVALID_HID;
    }
    return ds;
}

int spo_h5_info(const spo_h5 *f, const char *name, spo_dsinfo *info)
{
    hid_t ds = open_ds(f, name);
    if (ds < 0) return SPO_EINVAL;
    ds_info(ds, info, name);
    H5Dclose(ds);
    return SPO_OK;
}

static int read_as(const spo_h5 *f, const char *name, hid_t mtype, void *dst, size_t n, const char *what)
{
    hid_t ds = open_ds(f, name);
    if (ds < 0) return SPO_EINVAL;
    spo_dsinfo info;
    ds_info(ds, &info, name);
    size_t numel = 1;
    for (int i = 0; i < info.ndim; i++) numel *= (size_t)info.shape[i];
    int rc = SPO_OK;
    if (info.type == SPO_T_STR || info.type == SPO_T_OTHER)
        rc = spo_err(SPO_EINVAL, "%s: %s is %s, cannot read it as %s", f->shown, name, spo_dtype_name(info.type), what);
    else if (numel != n)
        rc = spo_err(SPO_EINVAL, "%s: %s has %zu elements, expected %zu", f->shown, name, numel, n);
    else if (n && H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0)
        rc = spo_err(SPO_EIO, "%s: cannot read %s (corrupt or truncated file?)", f->shown, name);
    H5Dclose(ds);
    return rc;
}

int spo_h5_read_f32(const spo_h5 *f, const char *name, float *dst, size_t n)
{
    return read_as(f, name, H5T_NATIVE_FLOAT, dst, n, "float");
}
int spo_h5_read_i32(const spo_h5 *f, const char *name, int32_t *dst, size_t n)
{
    return read_as(f, name, H5T_NATIVE_INT32, dst, n, "int32");
}
int spo_h5_read_i64(const spo_h5 *f, const char *name, int64_t *dst, size_t n)
{
    return read_as(f, name, H5T_NATIVE_INT64, dst, n, "int64");
}

void spo_strings_free(char **s, int64_t n)
{
    if (!s) return;
    for (int64_t i = 0; i < n; i++) free(s[i]);
    free(s);
}

int spo_h5_read_strings(const spo_h5 *f, const char *name, char ***out, int64_t *n)
{
    *out = NULL;
    *n = 0;
    hid_t ds = open_ds(f, name);
    if (ds < 0) return SPO_EINVAL;
    spo_dsinfo info;
    ds_info(ds, &info, name);
    int rc = SPO_OK;
    if (info.type != SPO_T_STR || info.ndim != 1) {
        H5Dclose(ds);
        return spo_err(SPO_EINVAL, "%s: %s is not a 1-D string dataset", f->shown, name);
    }
    int64_t cnt = info.shape[0];
    char **res = calloc((size_t)cnt + 1, sizeof *res);
    hid_t ft = H5Dget_type(ds);
    if (!res) rc = spo_err(SPO_EIO, "out of memory");
    else if (H5Tis_variable_str(ft) > 0) {
        hid_t mt = utf8_type();
        char **tmp = calloc((size_t)cnt + 1, sizeof *tmp);
        if (!tmp) rc = spo_err(SPO_EIO, "out of memory");
        else if (cnt && H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, tmp) < 0)
            rc = spo_err(SPO_EIO, "%s: cannot read %s", f->shown, name);
        else {
            for (int64_t i = 0; i < cnt && !rc; i++)
                if (!(res[i] = strdup(tmp[i] ? tmp[i] : ""))) rc = spo_err(SPO_EIO, "out of memory");
            hid_t sp = H5Dget_space(ds);
            if (cnt) H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, tmp);
            H5Sclose(sp);
        }
        free(tmp);
        H5Tclose(mt);
    } else {
        size_t sz = H5Tget_size(ft);
        char *buf = calloc((size_t)cnt * sz + 1, 1);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, sz);
        if (!buf) rc = spo_err(SPO_EIO, "out of memory");
        else if (cnt && H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
            rc = spo_err(SPO_EIO, "%s: cannot read %s", f->shown, name);
        else
            for (int64_t i = 0; i < cnt && !rc; i++)
                if (!(res[i] = strndup(buf + i * sz, sz))) rc = spo_err(SPO_EIO, "out of memory");
        free(buf);
        H5Tclose(mt);
    }
    H5Tclose(ft);
    H5Dclose(ds);
    if (rc) spo_strings_free(res, cnt);
    else *out = res, *n = cnt;
    return rc;
}

static hid_t open_attr(const spo_h5 *f, const char *obj, const char *name, hid_t *o)
{
    *o = obj_open(f, obj);
    if (*o < 0) {
        spo_err(SPO_EINVAL, "%s: no object %s", f->shown, obj);
        return H5I_INVALID_HID;
    }
    if (H5Aexists(*o, name) <= 0) {
        H5Oclose(*o);
        spo_err(SPO_EINVAL, "%s: missing attribute '%s'", f->shown, name);
        return H5I_INVALID_HID;
    }
    return H5Aopen(*o, name, H5P_DEFAULT);
}

int spo_h5_has_attr(const spo_h5 *f, const char *obj, const char *name)
{
    hid_t o = obj_open(f, obj);
    if (o < 0) return 0;
    int yes = H5Aexists(o, name) > 0;
    H5Oclose(o);
    return yes;
}

int spo_h5_get_attr_str(const spo_h5 *f, const char *obj, const char *name, char *buf, size_t n)
{
    hid_t o, a = open_attr(f, obj, name, &o);
    if (a < 0) return SPO_EINVAL;
    hid_t t = H5Aget_type(a);
    int rc = SPO_OK;
    if (H5Tget_class(t) != H5T_STRING) rc = spo_err(SPO_EINVAL, "%s: attribute '%s' is not a string", f->shown, name);
    else if (H5Tis_variable_str(t) > 0) {
        char *s = NULL;
        hid_t mt = utf8_type();
        if (H5Aread(a, mt, &s) < 0 || !s) rc = spo_err(SPO_EINVAL, "%s: cannot read attribute '%s'", f->shown, name);
        else {
            snprintf(buf, n, "%s", s);
            H5free_memory(s);
        }
        H5Tclose(mt);
    } else {
        size_t sz = H5Tget_size(t);
        char *s = calloc(sz + 1, 1);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, sz);
        if (!s || H5Aread(a, mt, s) < 0) rc = spo_err(SPO_EINVAL, "%s: cannot read attribute '%s'", f->shown, name);
        else snprintf(buf, n, "%s", s);
        free(s);
        H5Tclose(mt);
    }
    H5Tclose(t);
    H5Aclose(a);
    H5Oclose(o);
    return rc;
}

static int get_num(const spo_h5 *f, const char *obj, const char *name, hid_t mt, void *v, int want_int)
{
    hid_t o, a = open_attr(f, obj, name, &o);
    if (a < 0) return SPO_EINVAL;
    hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
    H5T_class_t c = H5Tget_class(t);
    int rc = SPO_OK;
    if ((c != H5T_INTEGER && c != H5T_FLOAT) || (want_int && c != H5T_INTEGER) ||
        H5Sget_simple_extent_npoints(sp) != 1)
        rc = spo_err(SPO_EINVAL, "%s: attribute '%s' is not a%s number", f->shown, name, want_int ? "n integer" : "");
    else if (H5Aread(a, mt, v) < 0)
        rc = spo_err(SPO_EINVAL, "%s: cannot read attribute '%s'", f->shown, name);
    H5Sclose(sp);
    H5Tclose(t);
    H5Aclose(a);
    H5Oclose(o);
    return rc;
}

int spo_h5_get_attr_int(const spo_h5 *f, const char *obj, const char *name, int64_t *v)
{
    return get_num(f, obj, name, H5T_NATIVE_INT64, v, 1);
}
int spo_h5_get_attr_float(const spo_h5 *f, const char *obj, const char *name, double *v)
{
    return get_num(f, obj, name, H5T_NATIVE_DOUBLE, v, 0);
}

/* ---- listing ----------------------------------------------------------------- */
typedef struct {
    spo_fileinfo *fi;
    size_t cap;
    int count_nonfinite, rc;
    const spo_h5 *f;
} visit_ctx;

/* The NaN/Inf count of a float dataset, read in blocks of at most
 * SCAN_BLOCK elements so memory does not grow with the dataset: -1 when it
 * is not counted (over SCAN_MAX elements: the readers check such sizes
 * against the model before reading), -2 when it cannot be read, -3 when an
 * uncompressed dataset stores fewer bytes than its shape declares. The
 * block is small because libhdf5 builds a selection per chunk a read
 * touches: a dataset of one-element chunks read 4M elements at a time took
 * gigabytes (tests/fuzz/fuzz_h5.c found it); 64K elements bound that to a
 * few hundred megabytes and cost nothing on real files. */
#define SCAN_BLOCK ((hsize_t)1 << 16)
#define SCAN_MAX ((hsize_t)1 << 32)
static int64_t count_bad(hid_t ds, const spo_dsinfo *d)
{
    hsize_t n = 1, dims[SPO_MAXDIM], start[SPO_MAXDIM] = {0}, cnt[SPO_MAXDIM];
    int nd = d->ndim;
    for (int i = 0; i < nd; i++) {
        dims[i] = (hsize_t)d->shape[i];
        if (dims[i] && n > SCAN_MAX / dims[i]) return -1;
        n *= dims[i];
    }
    if (!n) return 0;
    if (n > SCAN_MAX) return -1;
    hid_t dcpl = H5Dget_create_plist(ds);
    int contiguous = dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CONTIGUOUS;
    if (dcpl >= 0) H5Pclose(dcpl);
    hid_t ft = H5Dget_type(ds);
    size_t tsz = ft >= 0 ? H5Tget_size(ft) : 0;
    if (ft >= 0) H5Tclose(ft);
    if (contiguous && H5Dget_storage_size(ds) < n * tsz) return -3;
    /* split at dimension k: dims before k one index at a time, dim k in runs
     * of m, the dims after k whole (their product <= SCAN_BLOCK) */
    int k = nd - 1;
    hsize_t inner = 1;
    while (k > 0 && inner * dims[k] <= SCAN_BLOCK) inner *= dims[k--];
    if (nd == 0) k = 0, inner = 1;
    hsize_t m = nd ? SCAN_BLOCK / inner : 1;
    if (nd && m > dims[k]) m = dims[k];
    if (m < 1) m = 1;
    float *b = malloc((size_t)(m * inner) * sizeof *b);
    if (!b) return -1;
    hid_t fs = H5Dget_space(ds);
    int64_t bad = fs < 0 ? -2 : 0;
    for (int i = 0; i < nd; i++) cnt[i] = i < k ? 1 : dims[i];
    for (hsize_t done = 0; bad >= 0 && done < n;) {
        hsize_t run = nd ? (dims[k] - start[k] < m ? dims[k] - start[k] : m) : 1;
        if (nd) cnt[k] = run;
        hsize_t len = run * inner;
        hid_t ms = H5Screate_simple(1, &len, NULL);
        if (ms < 0 || (nd && H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL) < 0) ||
            H5Dread(ds, H5T_NATIVE_FLOAT, ms, nd ? fs : H5S_ALL, H5P_DEFAULT, b) < 0)
            bad = -2;
        else
            for (hsize_t i = 0; i < len; i++) bad += !isfinite(b[i]);
        if (ms >= 0) H5Sclose(ms);
        done += len;
        if (!nd) break;
        /* next block: advance dim k by run, carrying into the dims before it */
        start[k] += run;
        for (int i = k; i > 0 && start[i] >= dims[i]; i--) start[i] = 0, start[i - 1]++;
    }
    if (fs >= 0) H5Sclose(fs);
    free(b);
    return bad;
}

static herr_t visit(hid_t obj, const char *name, const H5O_info_t *oi, void *p)
{
    visit_ctx *c = p;
    if (oi->type != H5O_TYPE_DATASET) return 0;
    spo_fileinfo *fi = c->fi;
    spo_dsinfo *nd = spo_grow(fi->ds, &c->cap, (size_t)fi->nds + 1, sizeof *nd, 32);
    if (!nd) { c->rc = SPO_EIO; return -1; }
    fi->ds = nd;
    char full[300];
    snprintf(full, sizeof full, "/%s", name);
    hid_t ds = H5Dopen2(obj, name, spo_h5_dapl());
    if (ds < 0) { c->rc = spo_err(SPO_EINVAL, "%s: cannot open dataset %s", c->f->shown, full); return -1; }
    spo_dsinfo *d = &fi->ds[fi->nds++];
    ds_info(ds, d, full);
    if (c->count_nonfinite && (d->type == SPO_T_F32 || d->type == SPO_T_F16)) {
        d->nonfinite = count_bad(ds, d);
        if (d->nonfinite <= -2) {
            H5Dclose(ds);
            c->rc = d->nonfinite == -2
                        ? spo_err(SPO_EINVAL, "%s: cannot read %s (corrupt or truncated file)", c->f->shown, full)
                        : spo_err(SPO_EINVAL, "%s: %s stores fewer bytes than its shape declares (truncated or hostile)",
                                  c->f->shown, full);
            return -1;
        }
    }
    H5Dclose(ds);
    return 0;
}

static herr_t visit_attr(hid_t loc, const char *name, const H5A_info_t *ai, void *p)
{
    visit_ctx *c = p;
    spo_fileinfo *fi = c->fi;
    spo_attrinfo *na = realloc(fi->at, (size_t)(fi->nat + 1) * sizeof *na);
    if (!na) return -1;
    fi->at = na;
    spo_attrinfo *a = &fi->at[fi->nat++];
    snprintf(a->name, sizeof a->name, "%s", name);
    hid_t at = H5Aopen(loc, name, H5P_DEFAULT), t = at >= 0 ? H5Aget_type(at) : -1;
    H5T_class_t cl = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    a->type = cl == H5T_STRING ? SPO_A_STR : cl == H5T_INTEGER ? SPO_A_INT : cl == H5T_FLOAT ? SPO_A_FLOAT : SPO_A_OTHER;
    if (t >= 0) H5Tclose(t);
    if (at >= 0) H5Aclose(at);
    return 0;
}

int spo_h5_listing(const spo_h5 *f, spo_fileinfo *fi, int count_nonfinite)
{
    memset(fi, 0, sizeof *fi);
    visit_ctx c = {fi, 0, count_nonfinite, SPO_OK, f};
    if (H5Ovisit(f->id, H5_INDEX_NAME, H5_ITER_INC, visit, &c) < 0 && !c.rc)
        c.rc = spo_err(SPO_EINVAL, "%s: cannot list contents (corrupt file?)", f->shown);
    hid_t root = H5Oopen(f->id, "/", H5P_DEFAULT);
    if (!c.rc && root >= 0) {
        hsize_t idx = 0;
        if (H5Aiterate2(root, H5_INDEX_NAME, H5_ITER_INC, &idx, visit_attr, &c) < 0)
            c.rc = spo_err(SPO_EINVAL, "%s: cannot list attributes", f->shown);
    }
    if (root >= 0) H5Oclose(root);
    if (!c.rc && H5Aexists(f->id, "spo_schema") > 0 &&
        spo_h5_get_attr_str(f, NULL, "spo_schema", fi->schema, sizeof fi->schema))
        c.rc = SPO_EINVAL;
    if (c.rc) spo_fileinfo_free(fi);
    return c.rc;
}

/* ---- history and copying ------------------------------------------------------------------ */
static herr_t copy_attr(hid_t loc, const char *name, const H5A_info_t *ai, void *p)
{
    if (!strcmp(name, "history") || !strcmp(name, "spo_schema")) return 0;
    hid_t dst = *(hid_t *)p;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t t = H5Aget_type(a), sp = H5Aget_space(a), mt = H5Tget_native_type(t, H5T_DIR_DEFAULT);
    size_t n = (size_t)H5Sget_simple_extent_npoints(sp) * H5Tget_size(mt);
    void *buf = calloc(n ? n : 1, 1);
    int rc = -1;
    if (buf && H5Aread(a, mt, buf) >= 0) {
        hid_t na = H5Acreate2(dst, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
        if (na >= 0) {
            rc = H5Awrite(na, mt, buf) < 0 ? -1 : 0;
            H5Aclose(na);
        }
        if (H5Tis_variable_str(t) > 0) H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, buf);
    }
    free(buf);
    H5Tclose(mt);
    H5Tclose(t);
    H5Sclose(sp);
    H5Aclose(a);
    return rc;
}

int spo_h5_set_history(spo_h5 *f, const char *prev)
{
    free(f->history);
    f->history = prev && *prev ? strdup(prev) : NULL;
    return prev && *prev && !f->history ? spo_err(SPO_EIO, "out of memory") : SPO_OK;
}

static int copy_attrs(hid_t from, hid_t to)
{
    hsize_t idx = 0;
    return H5Aiterate2(from, H5_INDEX_NAME, H5_ITER_INC, &idx, copy_attr, &to) < 0 ? -1 : 0;
}

/* One dataset, through memory: H5Ocopy crashes inside HDF5 1.10 when a write
 * fails (disk full), a plain read and write reports the error. */
static int copy_dataset(hid_t from, hid_t to, const char *name)
{
    hid_t s = H5Dopen2(from, name, spo_h5_dapl());
    if (s < 0) return -1;
    hid_t t = H5Dget_type(s), sp = H5Dget_space(s), dcpl = H5Dget_create_plist(s);
    hid_t mt = H5Tget_native_type(t, H5T_DIR_DEFAULT);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    size_t es = H5Tget_size(mt);
    void *buf = n >= 0 && es ? calloc((size_t)n ? (size_t)n : 1, es) : NULL;
    int rc = -1;
    if (buf && (n == 0 || H5Dread(s, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0)) {
        hid_t d = H5Dcreate2(to, name, t, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        if (d >= 0) {
            rc = (n && H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) || copy_attrs(s, d) ? -1 : 0;
            H5Dclose(d);
        }
        if (n && H5Tdetect_class(t, H5T_VLEN) + H5Tis_variable_str(t) > 0) H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, buf);
    }
    free(buf);
    H5Tclose(mt);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Tclose(t);
    H5Dclose(s);
    return rc;
}

static herr_t copy_obj(hid_t from, const char *name, const H5O_info_t *oi, void *p)
{
    hid_t to = *(hid_t *)p;
    if (!strcmp(name, ".")) return 0; /* the root: its attributes are copied by the caller */
    if (oi->type == H5O_TYPE_DATASET) return copy_dataset(from, to, name);
    if (oi->type != H5O_TYPE_GROUP) return 0;
    hid_t s = H5Gopen2(from, name, spo_h5_lapl()), d = H5Gcreate2(to, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = s < 0 || d < 0 || copy_attrs(s, d) ? -1 : 0;
    if (s >= 0) H5Gclose(s);
    if (d >= 0) H5Gclose(d);
    return rc;
}

int spo_h5_copy_all(spo_h5 *dst, const spo_h5 *src)
{
    if (H5Ovisit(src->id, H5_INDEX_NAME, H5_ITER_INC, copy_obj, (void *)&dst->id) < 0)
        return spo_err(SPO_EIO, "%s: cannot copy objects from %s (disk full?)", dst->shown, src->shown);
    hid_t sr = H5Oopen(src->id, "/", H5P_DEFAULT), dr = H5Oopen(dst->id, "/", H5P_DEFAULT);
    int e = copy_attrs(sr, dr);
    H5Oclose(sr);
    H5Oclose(dr);
    if (e < 0) return spo_err(SPO_EIO, "%s: cannot copy attributes from %s", dst->shown, src->shown);
    char *h = NULL;
    char buf[65536];
    if (H5Aexists(src->id, "history") > 0 && !spo_h5_get_attr_str(src, NULL, "history", buf, sizeof buf)) h = buf;
    return spo_h5_set_history(dst, h);
}
