/* fuzz_unpickle.c — libFuzzer target for the restricted unpickler: any bytes
 * go to spo_unpickle_state_dict as a checkpoint's data.pkl. Nothing may
 * crash, leak or run past the buffer; when a state dict is accepted, every
 * tensor must be self-consistent (rank, numel, elements inside the storage,
 * a known dtype, a NUL-free name). Seeds: tests/fuzz/corpus/unpickle (the
 * data.pkl of the fixtures), dictionary: tests/fuzz/unpickle.dict.
 * Build and run with `sh tests/fuzz/run.sh SECONDS unpickle`. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/unpickle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    spo_pkl_dict d;
    if (spo_unpickle_state_dict(data, size, "fuzz.bin", &d) != SPO_OK) {
        if (d.n || d.t) abort(); /* a failure leaves nothing behind */
        return 0;
    }
    for (int i = 0; i < d.n; i++) {
        const spo_pkl_tensor *t = &d.t[i];
        if (!t->name[0] || !t->key[0] || !spo_pt_dtype_size(t->dtype)) abort();
        if (t->ndim < 0 || t->ndim > SPO_PT_MAXDIM || t->offset < 0 || t->storage_numel < 0) abort();
        int64_t n = 1, last = t->offset;
        for (int k = 0; k < t->ndim; k++) {
            if (t->shape[k] < 0 || t->stride[k] < 0) abort();
            n *= t->shape[k];
        }
        if (n != t->numel) abort();
        for (int k = 0; k < t->ndim && n; k++) last += (t->shape[k] - 1) * t->stride[k];
        if (n && last >= t->storage_numel) abort();
    }
    spo_pkl_dict_free(&d);
    return 0;
}
