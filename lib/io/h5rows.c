/* h5rows.c — hyperslab reads and writes of whole rows (see h5rows.h). */
#include "io/h5rows.h"

#include "core/err.h"
#include "io/h5_impl.h"

static int mem_type(spo_dtype_t mem, hid_t *t)
{
    switch (mem) {
    case SPO_T_F32: case SPO_T_F16: *t = H5T_NATIVE_FLOAT; return SPO_OK;
    case SPO_T_I32: *t = H5T_NATIVE_INT32; return SPO_OK;
    case SPO_T_I64: *t = H5T_NATIVE_INT64; return SPO_OK;
    default: return spo_err(SPO_EINVAL, "unsupported memory type for row access");
    }
}

int spo_h5_create_rows(spo_h5 *f, const char *name, spo_dtype_t stored, int ndim, const int64_t *shape)
{
    /* allocate early so rows never written still read back as zeros */
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_ALLOC);
    hid_t ds, mtype;
    int rc = spo_h5_new_dataset(f, name, stored, ndim, 1, shape, dcpl, &ds, &mtype);
    if (ds >= 0) H5Dclose(ds);
    H5Pclose(dcpl);
    return rc;
}

/* Open name, check the rows are in range, select them in the file space
 * and make the matching memory space. */
static int select_rows(const spo_h5 *f, const char *name, int64_t row0, int64_t nrows, hid_t *ds, hid_t *fsp,
                       hid_t *msp)
{
    *ds = *fsp = *msp = H5I_INVALID_HID;
    if (!spo_h5_exists(f, name)) return spo_err(SPO_EINVAL, "%s: missing dataset %s", f->shown, name);
    if ((*ds = H5Dopen2(f->id, name, spo_h5_dapl())) < 0)
        return spo_err(SPO_EINVAL, "%s: %s is not a dataset", f->shown, name);
    *fsp = H5Dget_space(*ds);
    int nd = H5Sget_simple_extent_ndims(*fsp);
    hsize_t dims[SPO_MAXDIM], start[SPO_MAXDIM] = {0};
    if (nd < 1 || nd > SPO_MAXDIM) return spo_err(SPO_EINVAL, "%s: %s: rank %d, expected 1..%d", f->shown, name, nd,
                                                  SPO_MAXDIM);
    H5Sget_simple_extent_dims(*fsp, dims, NULL);
    if (row0 < 0 || nrows < 0 || (uint64_t)(row0 + nrows) > dims[0])
        return spo_err(SPO_EINVAL, "%s: %s: rows %lld..%lld out of range (it has %llu)", f->shown, name,
                       (long long)row0, (long long)(row0 + nrows), (unsigned long long)dims[0]);
    if (nrows == 0) return SPO_OK; /* nothing to select; callers skip the I/O */
    start[0] = (hsize_t)row0;
    dims[0] = (hsize_t)nrows;
    if (H5Sselect_hyperslab(*fsp, H5S_SELECT_SET, start, NULL, dims, NULL) < 0 ||
        (*msp = H5Screate_simple(nd, dims, NULL)) < 0)
        return spo_err(SPO_EIO, "%s: %s: cannot select rows", f->shown, name);
    return SPO_OK;
}

static void close_sel(hid_t ds, hid_t fsp, hid_t msp)
{
    if (msp >= 0) H5Sclose(msp);
    if (fsp >= 0) H5Sclose(fsp);
    if (ds >= 0) H5Dclose(ds);
}

int spo_h5_write_rows(spo_h5 *f, const char *name, spo_dtype_t mem, int64_t row0, int64_t nrows, const void *data)
{
    hid_t mt, ds, fsp, msp;
    int rc = mem_type(mem, &mt);
    if (rc) return rc;
    rc = select_rows(f, name, row0, nrows, &ds, &fsp, &msp);
    if (!rc && nrows > 0 && H5Dwrite(ds, mt, msp, fsp, H5P_DEFAULT, data) < 0)
        rc = spo_err(SPO_EIO, "%s: cannot write rows of %s", f->shown, name);
    close_sel(ds, fsp, msp);
    return rc;
}

int spo_h5_read_rows(const spo_h5 *f, const char *name, spo_dtype_t mem, int64_t row0, int64_t nrows, void *dst)
{
    hid_t mt, ds, fsp, msp;
    int rc = mem_type(mem, &mt);
    if (rc) return rc;
    rc = select_rows(f, name, row0, nrows, &ds, &fsp, &msp);
    if (!rc) {
        hid_t t = H5Dget_type(ds);
        H5T_class_t c = H5Tget_class(t);
        H5Tclose(t);
        if (c != H5T_FLOAT && c != H5T_INTEGER)
            rc = spo_err(SPO_EINVAL, "%s: %s is not numeric, cannot read it as numbers", f->shown, name);
    }
    if (!rc && nrows > 0 && H5Dread(ds, mt, msp, fsp, H5P_DEFAULT, dst) < 0)
        rc = spo_err(SPO_EIO, "%s: cannot read rows of %s (corrupt or truncated file?)", f->shown, name);
    close_sel(ds, fsp, msp);
    return rc;
}
