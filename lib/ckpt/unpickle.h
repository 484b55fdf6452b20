/* unpickle.h — a restricted unpickler for PyTorch state-dict pickles.
 *
 * torch.save writes a zip whose `<archive>/data.pkl` is a pickle (protocol
 * 2) of the state dict: an OrderedDict (or dict) from names to tensors,
 * each rebuilt by `torch._utils._rebuild_tensor_v2(storage, offset, size,
 * stride, requires_grad, hooks)` where `storage` is a persistent id
 * ('storage', torch.FloatStorage, '<key>', 'cpu', numel) naming the zip
 * member `<archive>/data/<key>`.
 *
 * This is a DATA PARSER, not an interpreter: it never calls, imports or
 * executes anything. It knows the opcodes such a pickle uses (protocols 2
 * to 5: PROTO FRAME EMPTY_DICT/LIST/TUPLE MARK TUPLE TUPLE1..3 SETITEM(S)
 * APPEND(S) BINPUT LONG_BINPUT MEMOIZE BINGET LONG_BINGET BININT BININT1
 * BININT2 LONG1 BINFLOAT NEWTRUE NEWFALSE NONE BINUNICODE SHORT_BINUNICODE
 * BINUNICODE8 BINSTRING SHORT_BINSTRING GLOBAL STACK_GLOBAL REDUCE BUILD
 * BINPERSID STOP) and a fixed list of names (collections.OrderedDict,
 * torch._utils._rebuild_tensor[_v2], _rebuild_parameter[_with_state], and
 * the torch.*Storage classes as type tags), each "evaluated" by building
 * a plain record. Any other opcode or name, a REDUCE/BUILD on anything
 * else, a malformed argument, stack underflow, a memo index out of range,
 * MARKs nested deeper than 64, or truncation is SPO_EINVAL with a message
 * naming the opcode or name and the byte offset, e.g.
 *   "model.bin: refused pickle GLOBAL 'posix system' (not a state-dict type)".
 * Memory and time are linear in the pickle's length. */
#ifndef SPO_UNPICKLE_H
#define SPO_UNPICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define SPO_PT_MAXDIM 8

/* Element types of torch storages (torch.FloatStorage -> SPO_PT_F32 ...). */
typedef enum {
    SPO_PT_F32, SPO_PT_F16, SPO_PT_BF16, SPO_PT_F64,
    SPO_PT_I64, SPO_PT_I32, SPO_PT_I16, SPO_PT_I8, SPO_PT_U8, SPO_PT_BOOL,
    SPO_PT_NDTYPE
} spo_pt_dtype;

const char *spo_pt_dtype_name(spo_pt_dtype dt); /* "f32", ...; "?" if invalid */
size_t spo_pt_dtype_size(spo_pt_dtype dt);      /* bytes; 0 if invalid */

/* One tensor of the state dict, as the pickle describes it. Offsets,
 * strides and numels count elements of dtype. */
typedef struct {
    char *name;            /* state-dict key, NUL-free UTF-8 */
    spo_pt_dtype dtype;
    char *key;             /* storage key: the zip member <archive>/data/<key> */
    int64_t storage_numel; /* elements of the storage, from the persistent id */
    int ndim;              /* 0 for a scalar */
    int64_t shape[SPO_PT_MAXDIM];
    int64_t stride[SPO_PT_MAXDIM];
    int64_t offset;        /* storage offset */
    int64_t numel;         /* prod(shape), 1 for a scalar */
} spo_pkl_tensor;

typedef struct {
    spo_pkl_tensor *t;
    int n;
} spo_pkl_dict;

/* Parse a state-dict pickle. The result is the top-level dict, or the dict
 * under its key "state_dict" when the top level holds other things too
 * ({'state_dict': {...}, 'epoch': 3}). Every value must be a tensor whose
 * elements lie inside its storage; names must be unique. name is used in
 * messages (e.g. the checkpoint path). On failure *out is empty. */
int spo_unpickle_state_dict(const uint8_t *buf, size_t len, const char *name, spo_pkl_dict *out);
void spo_pkl_dict_free(spo_pkl_dict *d);

#endif
