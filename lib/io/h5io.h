/* h5io.h — every spo file is HDF5, opened through here.
 *
 * One open function for paths and "-" (htslib's hopen): "-" reads a whole
 * HDF5 file image from stdin, or writes one to stdout, through the core
 * driver, so `spo-x -o - | spo-y -` streams and `spo-x -o - > f.h5` gives an
 * ordinary file. Writes are atomic (core/atomic.h): a new file is built
 * under a temporary name in the target folder and renamed only by
 * spo_h5_commit, after the schema check passes; spo_h5_abort, a failure or
 * SIGINT/SIGTERM/SIGHUP remove the temporary. "-", a character device or a
 * FIFO is a stream: the file is built in memory and written to it at commit.
 * A file read must be a regular file (or "-") and self-contained: external
 * or user-defined links, external storage and virtual datasets are refused
 * at open (SPO_EINVAL naming the file and object), and external links are
 * never followed. Every committed file carries a
 * root `spo_schema` ("pool/1") and a `history` attribute (one line per tool
 * that wrote it: time, version, command line), as NCO does.
 *
 * f32 data may be stored as f32 or IEEE f16 (h5dump shows both as floats). */
#ifndef SPO_H5IO_H
#define SPO_H5IO_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "io/schema.h"

typedef struct spo_h5 spo_h5;

/* Open for reading. schema: "pool" or "pool/1" to validate against (message
 * names the file and dataset), or NULL to accept any HDF5 file. pre: symbol
 * bindings for the check (may be NULL). Counts NaN/Inf of float datasets. */
int spo_h5_open(spo_h5 **f, const char *path, const char *schema, const spo_dimbind *pre);
/* Create for writing. force: overwrite an existing path. For "-" the file
 * is built in memory and written to stdout at commit. */
int spo_h5_create(spo_h5 **f, const char *path, const char *schema, int force);
/* Validate, add history, flush, rename into place (or write to stdout), close. */
int spo_h5_commit(spo_h5 *f);
/* Keep the history of an input (NCO style): the new file's history is
 * prev + "\n" + this tool's line. */
int spo_h5_set_history(spo_h5 *f, const char *prev);
/* Copy every root object (datasets, groups) and root attribute except
 * history/spo_schema of src into the file being written; history is kept. */
int spo_h5_copy_all(spo_h5 *dst, const spo_h5 *src);
/* Discard a file being written (removes the temporary). Safe on NULL. */
void spo_h5_abort(spo_h5 *f);
/* Close a file opened for reading. Safe on NULL. */
void spo_h5_close(spo_h5 *f);

hid_t spo_h5_id(const spo_h5 *f);
const char *spo_h5_path(const spo_h5 *f); /* as given ("-" shown as "<stdin>"/"<stdout>") */

/* ---- writing ---- */
/* data type of the stored dataset; data in memory is float for F32/F16,
 * int32_t for I32, int64_t for I64. Parent groups are created as needed. */
int spo_h5_write(spo_h5 *f, const char *name, spo_dtype_t stored, int ndim, const int64_t *shape, const void *data);
int spo_h5_write_strings(spo_h5 *f, const char *name, int64_t n, const char *const *s);
/* Attributes on an object (obj NULL or "/" for the root). */
int spo_h5_attr_str(spo_h5 *f, const char *obj, const char *name, const char *v);
int spo_h5_attr_int(spo_h5 *f, const char *obj, const char *name, int64_t v);
int spo_h5_attr_float(spo_h5 *f, const char *obj, const char *name, double v);
/* A list of attributes, written in order by spo_h5_attrs; it ends with an
 * entry whose name is NULL. */
typedef enum { SPO_ATTR_STR, SPO_ATTR_INT, SPO_ATTR_REAL } spo_attr_kind;
typedef struct {
    const char *name;
    spo_attr_kind kind;
    const char *s; /* SPO_ATTR_STR */
    int64_t i;     /* SPO_ATTR_INT */
    double f;      /* SPO_ATTR_REAL (stored as a double) */
} spo_h5_attrval;
int spo_h5_attrs(spo_h5 *f, const char *obj, const spo_h5_attrval *a);

/* ---- reading ---- */
int spo_h5_exists(const spo_h5 *f, const char *name);
/* Shape and type of a dataset. SPO_EINVAL naming the file if missing. */
int spo_h5_info(const spo_h5 *f, const char *name, spo_dsinfo *info);
/* Read a whole dataset converted to float / int32 / int64; n must equal its
 * element count. */
int spo_h5_read_f32(const spo_h5 *f, const char *name, float *dst, size_t n);
int spo_h5_read_i32(const spo_h5 *f, const char *name, int32_t *dst, size_t n);
int spo_h5_read_i64(const spo_h5 *f, const char *name, int64_t *dst, size_t n);
/* Read a 1-D string dataset; *out is an array of n malloc'd strings
 * (free with spo_strings_free). */
int spo_h5_read_strings(const spo_h5 *f, const char *name, char ***out, int64_t *n);
void spo_strings_free(char **s, int64_t n);
/* Does obj (NULL: the root) have attribute name? */
int spo_h5_has_attr(const spo_h5 *f, const char *obj, const char *name);
/* Attributes: missing is SPO_EINVAL naming the file and attribute. */
int spo_h5_get_attr_str(const spo_h5 *f, const char *obj, const char *name, char *buf, size_t n);
int spo_h5_get_attr_int(const spo_h5 *f, const char *obj, const char *name, int64_t *v);
int spo_h5_get_attr_float(const spo_h5 *f, const char *obj, const char *name, double *v);

/* List every dataset (recursively) and root attribute. count_nonfinite
 * reads float data to count NaN/Inf. */
int spo_h5_listing(const spo_h5 *f, spo_fileinfo *fi, int count_nonfinite);

#endif
