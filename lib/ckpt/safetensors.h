/* safetensors.h — read and write .safetensors files (Hugging Face format).
 *
 * Layout: u64 little-endian N | N bytes of JSON header | data. The header
 * is an object: "__metadata__" (optional, string -> string) and one entry
 * per tensor {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}
 * with offsets relative to the start of the data.
 *
 * The reader maps the file (or takes a caller's buffer) and checks
 * everything before handing out a tensor: header length against the file
 * and a 100 MB limit, JSON validity (UTF-8, no NUL), known dtype, rank <= 8,
 * non-negative integer dims, size == prod(shape) * dtype size without
 * overflow, begin <= end within the data, unique names, and — as the
 * reference library requires — that the tensors tile the data exactly (no
 * overlap, no gap, nothing after the last one). Any failure is SPO_EINVAL
 * with a message naming the file and the tensor. Tensor data may be
 * unaligned; read it with spo_st_read_f32 or memcpy. Little-endian hosts.
 *
 * The writer collects tensors (fp32 data converted to F32/F16/BF16 when
 * written, or raw bytes of any dtype) and metadata, orders them as the
 * Python library does (dtype size descending, then name) so data stays
 * aligned, pads the header with spaces to a multiple of 8 bytes, and writes
 * atomically: a temporary file in the same folder, fsync, rename. */
#ifndef SPO_SAFETENSORS_H
#define SPO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* In the reference library's order (the writer sorts by it, descending). */
typedef enum {
    SPO_ST_BOOL, SPO_ST_U8, SPO_ST_I8, SPO_ST_I16, SPO_ST_U16, SPO_ST_F16, SPO_ST_BF16,
    SPO_ST_I32, SPO_ST_U32, SPO_ST_F32, SPO_ST_F64, SPO_ST_I64, SPO_ST_U64, SPO_ST_NDTYPE
} spo_st_dtype;

#define SPO_ST_MAXDIM 8
#define SPO_ST_MAX_HEADER 100000000 /* bytes, as the reference library */

typedef struct {
    const char *name;
    spo_st_dtype dtype;
    int ndim;                        /* 0 for a scalar */
    int64_t shape[SPO_ST_MAXDIM];
    size_t numel;                    /* prod(shape), 1 for a scalar */
    size_t nbytes;                   /* numel * dtype size */
    uint64_t offset;                 /* from the start of the data */
    const void *data;                /* inside the mapping; maybe unaligned */
} spo_st_tensor;

typedef struct spo_st spo_st;

/* "F32" etc.; NULL for an invalid value. */
const char *spo_st_dtype_name(spo_st_dtype dt);
/* Bytes per element; 0 for an invalid value. */
size_t spo_st_dtype_size(spo_st_dtype dt);
/* Parse "F16" etc.; -1 when unknown. */
int spo_st_dtype_parse(const char *s);

/* Map and check a file. Messages name the file as `path` is given. */
int spo_st_open(spo_st **st, const char *path);
/* Check a buffer in memory (not copied: it must outlive *st); name is used
 * in messages. */
int spo_st_open_mem(spo_st **st, const void *buf, size_t len, const char *name);
void spo_st_close(spo_st *st);
const char *spo_st_name(const spo_st *st);

/* Tensors, sorted by name. */
int spo_st_count(const spo_st *st);
const spo_st_tensor *spo_st_get(const spo_st *st, int i);
const spo_st_tensor *spo_st_find(const spo_st *st, const char *name); /* NULL if absent */
/* Convert an F32/F16/BF16/F64 tensor to fp32: dst holds t->numel floats.
 * Other dtypes give SPO_EINVAL. */
int spo_st_read_f32(const spo_st *st, const spo_st_tensor *t, float *dst);

/* __metadata__: the value of key, or NULL; and iteration in file order. */
const char *spo_st_meta(const spo_st *st, const char *key);
int spo_st_meta_count(const spo_st *st);
const char *spo_st_meta_key(const spo_st *st, int i);

/* ---- writer ---------------------------------------------------------- */
typedef struct spo_st_writer spo_st_writer;

int spo_st_writer_new(spo_st_writer **w);
void spo_st_writer_free(spo_st_writer *w);
/* Set a metadata string (copied; a second call with the same key replaces). */
int spo_st_writer_meta(spo_st_writer *w, const char *key, const char *value);
/* Add a tensor of fp32 data stored as dtype F32, F16 or BF16. The data is
 * NOT copied: it must stay valid until spo_st_writer_write. shape: ndim
 * (0..8) non-negative dims. The name is copied. */
int spo_st_writer_add(spo_st_writer *w, const char *name, spo_st_dtype dtype, int ndim, const int64_t *shape,
                      const float *data);
/* Add a tensor of any dtype from its little-endian bytes (not copied). */
int spo_st_writer_add_raw(spo_st_writer *w, const char *name, spo_st_dtype dtype, int ndim, const int64_t *shape,
                          const void *bytes);
/* Write everything to path atomically. Duplicate names are SPO_EINVAL,
 * I/O failures SPO_EIO (the temporary file is removed). */
int spo_st_writer_write(spo_st_writer *w, const char *path);

#endif
