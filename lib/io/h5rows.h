/* h5rows.h — row-wise access to datasets along their first dimension.
 *
 * spo_h5_write/spo_h5_read_* (h5io.h) move whole datasets. Files whose first
 * dimension grows with the work (pairs [N,...], embeds [P,...]) are better
 * read and written a few rows at a time: a merge of pairs shards then needs
 * memory for one pair, not for every pair. A row of a dataset of shape
 * [n, d1, d2, ...] is d1*d2*... elements.
 *
 * Memory types as in h5io.h: float for SPO_T_F32/F16, int32_t for I32,
 * int64_t for I64; data is converted to or from the stored type. */
#ifndef SPO_H5ROWS_H
#define SPO_H5ROWS_H

#include <stdint.h>

#include "io/h5io.h"

/* Create dataset name (full shape, contents zero) in a file being written;
 * fill it with spo_h5_write_rows. Parent groups are created as needed. */
int spo_h5_create_rows(spo_h5 *f, const char *name, spo_dtype_t stored, int ndim, const int64_t *shape);
/* Write rows [row0, row0 + nrows) of a dataset made by spo_h5_create_rows.
 * mem: SPO_T_F32 (float data), SPO_T_I32 or SPO_T_I64. */
int spo_h5_write_rows(spo_h5 *f, const char *name, spo_dtype_t mem, int64_t row0, int64_t nrows, const void *data);
/* Read rows [row0, row0 + nrows) of a dataset of rank >= 1, converted to
 * mem (SPO_T_F32, SPO_T_I32 or SPO_T_I64). Out of range: SPO_EINVAL. */
int spo_h5_read_rows(const spo_h5 *f, const char *name, spo_dtype_t mem, int64_t row0, int64_t nrows, void *dst);

#endif
