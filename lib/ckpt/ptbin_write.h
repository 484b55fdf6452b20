/* ptbin_write.h — write a PyTorch state-dict checkpoint exactly as
 * `torch.save(state_dict, path)` (PyTorch 2.3.1) writes it, without Python.
 *
 * The file is the zip of ptzip_write.h with the top folder named after the
 * file (path "out/model.bin" -> "model/..."), holding:
 *   model/data.pkl       pickle protocol 2 of an OrderedDict from each name,
 *                        in the order added, to
 *                        torch._utils._rebuild_tensor_v2(
 *                          persistent_load(('storage', torch.FloatStorage,
 *                                           '<key>', 'cpu', numel)),
 *                          0, size, stride, False, OrderedDict())
 *                        with the opcodes and memo of CPython's pickler
 *   model/byteorder      "little"
 *   model/data/<key>     each tensor's storage, dense row-major, keys
 *                        "0", "1", ... in order added, members in the
 *                        order of the keys as strings ("0", "1", "10", "2")
 *   model/version        "3\n"
 *   model/.data/serialization_id
 * For the same tensors the output equals torch.save's byte for byte
 * (tests/reference/check_ptbin_write.py checks it). It loads with
 * torch.load(path, weights_only=True) and with spo_ptbin_open.
 *
 * Tensors are not copied: their data must stay valid until write. Each
 * tensor gets its own storage (no sharing, no views). */
#ifndef SPO_PTBIN_WRITE_H
#define SPO_PTBIN_WRITE_H

#include <stdint.h>

#include "ckpt/unpickle.h" /* spo_pt_dtype, SPO_PT_MAXDIM */

typedef struct spo_ptbin_writer spo_ptbin_writer;

int spo_ptbin_writer_new(spo_ptbin_writer **w);
void spo_ptbin_writer_free(spo_ptbin_writer *w); /* safe on NULL */

/* Add a tensor of shape[ndim] (ndim 0..8; 0 is a scalar, a zero dim makes
 * it empty). data: for SPO_PT_F16 and SPO_PT_BF16, fp32 values converted
 * when written (round to nearest even, as spo_st_writer_add); for every
 * other dtype, the dtype's own little-endian values (float for SPO_PT_F32,
 * int64_t for SPO_PT_I64, ...). NULL only when the tensor is empty. The
 * name (non-empty UTF-8, at most 4096 bytes) is copied. */
int spo_ptbin_writer_add(spo_ptbin_writer *w, const char *name, spo_pt_dtype dtype, int ndim, const int64_t *shape,
                         const void *data);
/* The same, with data already in dtype's bytes (f16/bf16 bits too). */
int spo_ptbin_writer_add_raw(spo_ptbin_writer *w, const char *name, spo_pt_dtype dtype, int ndim,
                             const int64_t *shape, const void *bytes);

/* Write everything to path: a temporary file in the same folder, fsync,
 * rename over path; on failure nothing is left. A duplicate name is
 * SPO_EINVAL, I/O failure SPO_EIO. The writer may be written again. */
int spo_ptbin_writer_write(spo_ptbin_writer *w, const char *path);

#endif
