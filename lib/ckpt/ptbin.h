/* ptbin.h — read a PyTorch state-dict checkpoint (`torch.save(sd, "x.bin")`)
 * without executing anything.
 *
 * The zip is loaded by ptzip.h, its data.pkl parsed by the restricted
 * unpickler of unpickle.h, and every tensor checked against its storage
 * member: the member holds exactly storage_numel elements of the storage's
 * dtype, two tensors naming one storage agree on its type and size, and the
 * tensor's elements (offset + strides, e.g. a view into a larger storage or
 * a transposed weight) lie inside it. Tensors are in the pickle's order.
 * Malicious or damaged files are SPO_EINVAL with a message naming the file:
 *   "model.bin: refused pickle GLOBAL 'posix system' (not a state-dict type)"
 * Little-endian hosts only (as the rest of spo). */
#ifndef SPO_PTBIN_H
#define SPO_PTBIN_H

#include <stddef.h>
#include <stdint.h>

#include "ckpt/unpickle.h"

typedef struct spo_ptbin spo_ptbin;

typedef struct {
    const char *name;
    spo_pt_dtype dtype;
    int ndim;                       /* 0 for a scalar */
    int64_t shape[SPO_PT_MAXDIM];
    int64_t stride[SPO_PT_MAXDIM];  /* in elements, as saved */
    int64_t offset;                 /* storage offset, in elements */
    int64_t numel;                  /* prod(shape), 1 for a scalar */
    int contiguous;                 /* row-major dense from offset */
    const uint8_t *storage;         /* the storage's bytes */
    size_t storage_bytes;
} spo_ptbin_tensor;

/* Open and check a checkpoint. On failure *b is NULL. */
int spo_ptbin_open(spo_ptbin **b, const char *path);
void spo_ptbin_close(spo_ptbin *b); /* safe on NULL */

int spo_ptbin_count(const spo_ptbin *b);
const spo_ptbin_tensor *spo_ptbin_get(const spo_ptbin *b, int i); /* NULL out of range */
const spo_ptbin_tensor *spo_ptbin_find(const spo_ptbin *b, const char *name);
const char *spo_ptbin_path(const spo_ptbin *b);

/* Copy a tensor out, dense row-major (strides and offset applied):
 * _f32 converts any dtype to float (dst: numel floats; i64 values beyond
 * 2^24 lose precision), _raw keeps the dtype (dst: numel * dtype size). */
int spo_ptbin_read_f32(const spo_ptbin *b, const spo_ptbin_tensor *t, float *dst);
int spo_ptbin_read_raw(const spo_ptbin *b, const spo_ptbin_tensor *t, void *dst);

#endif
