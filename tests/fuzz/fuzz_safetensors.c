/* fuzz_safetensors.c — libFuzzer target for the safetensors reader: any
 * bytes go to spo_st_open_mem; when they are accepted, every tensor must
 * lie inside the buffer, be found by name, and float tensors are read as
 * fp32 (ASan catches any read past the data). Build and run with
 * `sh tests/fuzz/run.sh SECONDS safetensors`. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    spo_st *st;
    if (spo_st_open_mem(&st, data, size, "fuzz") != SPO_OK) return 0;
    size_t total = 0;
    for (int i = 0; i < spo_st_count(st); i++) {
        const spo_st_tensor *t = spo_st_get(st, i);
        const uint8_t *p = t->data;
        if (p < data || p + t->nbytes > data + size) abort();
        if (t->ndim < 0 || t->ndim > SPO_ST_MAXDIM || spo_st_find(st, t->name) != t) abort();
        if (t->nbytes != t->numel * spo_st_dtype_size(t->dtype)) abort();
        total += t->nbytes;
        float *dst = malloc(t->numel ? t->numel * sizeof *dst : 1);
        if (!dst) abort();
        int rc = spo_st_read_f32(st, t, dst);
        int is_float = t->dtype == SPO_ST_F32 || t->dtype == SPO_ST_F16 || t->dtype == SPO_ST_BF16 ||
                       t->dtype == SPO_ST_F64;
        if ((rc == SPO_OK) != is_float) abort();
        free(dst);
    }
    if (total > size) abort();
    for (int i = 0; i < spo_st_meta_count(st); i++) {
        const char *k = spo_st_meta_key(st, i);
        if (!k || !spo_st_meta(st, k)) abort();
    }
    spo_st_close(st);
    return 0;
}
