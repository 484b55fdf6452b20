/* cpu_dev.c — the CPU backend: host memory (64-byte aligned, zeroed), the
 * BLAS thread count and the device state of lib/ops/cpu/cpu_pool.c (thread pool,
 * scratch), and the op table that the public functions call: every entry
 * of lib/ops/ops_list.h, as spo_cpu_<name>. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops_impl.h"

int spo_cpu_open(spo_dev *d)
{
    /* a process-wide setting of OpenBLAS; the last device opened wins */
    openblas_set_num_threads(d->threads);
    /* without a pool (no thread could start) the ops run on the caller */
    if (!(d->impl = spo_cpu_state_new(d->threads))) return spo_err(SPO_EIO, "cpu device: out of memory");
    return SPO_OK;
}

void spo_cpu_close(spo_dev *d)
{
    spo_cpu_state_free(d->impl);
    d->impl = NULL;
}

float *spo_cpu_alloc(spo_dev *d, size_t n)
{
    (void)d;
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64; /* n checked by spo_dev_alloc */
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes)) {
        spo_err(SPO_EIO, "out of memory allocating %zu floats", n);
        return NULL;
    }
    memset(p, 0, bytes);
    return p;
}

void spo_cpu_free(spo_dev *d, float *p)
{
    (void)d;
    free(p);
}

int spo_cpu_upload(spo_dev *d, float *dst, const float *host, size_t n)
{
    (void)d;
    memmove(dst, host, n * sizeof(float));
    return SPO_OK;
}

int spo_cpu_download(spo_dev *d, float *host, const float *src, size_t n)
{
    (void)d;
    memmove(host, src, n * sizeof(float));
    return SPO_OK;
}

int spo_cpu_zero(spo_dev *d, float *p, size_t n)
{
    (void)d;
    memset(p, 0, n * sizeof(float));
    return SPO_OK;
}

int spo_cpu_copy(spo_dev *d, float *dst, const float *src, size_t n)
{
    (void)d;
    memmove(dst, src, n * sizeof(float));
    return SPO_OK;
}

int spo_cpu_sync(spo_dev *d)
{
    (void)d;
    return SPO_OK;
}

#define CPU_ENTRY(name, params, args) .name = spo_cpu_##name,
const spo_ops_table spo_cpu_ops =
    SPO_OPS_TABLE("cpu", spo_cpu_open, spo_cpu_close, spo_cpu_alloc, spo_cpu_free, spo_cpu_sync, CPU_ENTRY);
#undef CPU_ENTRY
