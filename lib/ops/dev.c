/* dev.c — the device handle (ops.h): open/close, memory, and the choice of
 * the op table. Everything else reaches the backend through d->ops. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops/ops_impl.h"

int spo_dev_open(spo_dev **dev, spo_devkind kind, int threads)
{
    if (!dev) return spo_err(SPO_EINVAL, "spo_dev_open: NULL handle");
    *dev = NULL;
    if (threads < 0) return spo_err(SPO_EINVAL, "spo_dev_open: threads %d < 0", threads);
    const spo_ops_table *ops;
    switch (kind) {
    case SPO_DEV_CPU: {
        const char *g = getenv("SPO_DEV_GUARD"); /* tests: host access to device memory faults */
        ops = g && *g && strcmp(g, "0") ? &spo_cpu_guard_ops : &spo_cpu_ops;
        break;
    }
    case SPO_DEV_CUDA:
#ifdef SPO_HAVE_CUDA
        ops = &spo_cuda_ops;
        break;
#else
        return spo_err(SPO_EINVAL, "device cuda: built without CUDA");
#endif
    default: return spo_err(SPO_EINVAL, "spo_dev_open: unknown device kind %d", (int)kind);
    }
    if (threads == 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        threads = nc > 0 && nc < 4096 ? (int)nc : 1;
    }
    spo_dev *d = calloc(1, sizeof *d);
    if (!d) return spo_err(SPO_EIO, "spo_dev_open: out of memory");
    d->kind = kind;
    d->threads = threads;
    d->ops = ops;
    int rc = ops->open ? ops->open(d) : SPO_OK;
    if (rc)
        free(d);
    else
        *dev = d;
    return rc;
}

void spo_dev_close(spo_dev *d)
{
    if (!d) return;
    if (d->ops->close) d->ops->close(d);
    free(d);
}

spo_devkind spo_dev_kind(const spo_dev *d) { return d->kind; }

const char *spo_dev_name(spo_devkind kind) { return kind == SPO_DEV_CUDA ? "cuda" : "cpu"; }

int spo_dev_parse(const char *name, spo_devkind *kind)
{
    if (name && !strcmp(name, "cpu")) return *kind = SPO_DEV_CPU, SPO_OK;
    if (name && !strcmp(name, "cuda")) return *kind = SPO_DEV_CUDA, SPO_OK;
    return spo_err(SPO_EINVAL, "unknown device '%s' (cpu or cuda)", name ? name : "(null)");
}

spo_devkind spo_dev_default(void)
{
    const char *e = getenv("SPO_DEVICE"); /* anything else than cpu or cuda is ignored */
    if (e && !strcmp(e, "cpu")) return SPO_DEV_CPU;
    if (e && !strcmp(e, "cuda")) return SPO_DEV_CUDA;
#ifdef SPO_HAVE_CUDA
    static int gpus = -1; /* asked once per process */
    if (gpus < 0) gpus = spo_cuda_device_count();
    return gpus > 0 ? SPO_DEV_CUDA : SPO_DEV_CPU;
#else
    return SPO_DEV_CPU;
#endif
}

float *spo_dev_alloc(spo_dev *d, size_t n)
{
    if (!d) {
        spo_err(SPO_EINVAL, "spo_dev_alloc: NULL device");
        return NULL;
    }
    if (n > (SIZE_MAX - 64) / sizeof(float)) {
        spo_err(SPO_EIO, "spo_dev_alloc: %zu floats overflow size_t", n);
        return NULL;
    }
    return d->ops->alloc(d, n ? n : 1);
}

void spo_dev_free(spo_dev *d, float *p)
{
    if (d && p) d->ops->free(d, p);
}

#define CHECK_MEM(fn, a, b)                                                                                        \
    do {                                                                                                           \
        if (!d) return spo_err(SPO_EINVAL, fn ": NULL device");                                                   \
        if (n && (!(a) || !(b))) return spo_err(SPO_EINVAL, fn ": NULL pointer");                                 \
        if (n > SIZE_MAX / sizeof(float)) return spo_err(SPO_EINVAL, fn ": %zu floats overflow size_t", n);       \
        if (!n) return SPO_OK;                                                                                     \
    } while (0)

int spo_dev_upload(spo_dev *d, float *dst, const float *host, size_t n)
{
    CHECK_MEM("spo_dev_upload", dst, host);
    return d->ops->upload(d, dst, host, n);
}

int spo_dev_download(spo_dev *d, float *host, const float *src, size_t n)
{
    CHECK_MEM("spo_dev_download", host, src);
    return d->ops->download(d, host, src, n);
}

int spo_dev_zero(spo_dev *d, float *p, size_t n)
{
    CHECK_MEM("spo_dev_zero", p, p);
    return d->ops->zero(d, p, n);
}

int spo_dev_copy(spo_dev *d, float *dst, const float *src, size_t n)
{
    CHECK_MEM("spo_dev_copy", dst, src);
    if (dst == src) return SPO_OK;
    return d->ops->copy(d, dst, src, n);
}

int spo_dev_sync(spo_dev *d)
{
    if (!d) return spo_err(SPO_EINVAL, "spo_dev_sync: NULL device");
    return d->ops->sync ? d->ops->sync(d) : SPO_OK;
}
