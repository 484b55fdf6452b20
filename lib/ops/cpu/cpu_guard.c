/* cpu_guard.c — the CPU backend in guard mode (SPO_DEV_GUARD=1), a test
 * device that makes host access to device memory fail on a machine
 * without a GPU. On the CPU device memory is host memory, so code above
 * the op layer that reads or writes a buffer of spo_dev_alloc directly
 * (instead of through spo_dev_download / an op) works on the CPU and
 * breaks on CUDA. Here every device buffer is its own mmap, kept PROT_NONE
 * except while an op or a memory function of the table runs on it: such
 * code segfaults at once. An op given a float pointer that is not device
 * memory fails with SPO_EINVAL naming the argument (it would read host
 * memory as device memory on CUDA).
 *
 * The ops are the CPU ones (cpu_*.c), wrapped: before the op, the buffers
 * that its float-pointer arguments point into are opened (read/write);
 * after it, closed again. Buffers are counted open per use, so ops on
 * other threads do not close each other's. Slow (two mprotect calls per
 * buffer per op) and meant only for tests. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ops/ops_impl.h"

typedef struct {
    char *p;
    size_t bytes;
    int open; /* uses in progress */
} gbuf;

static pthread_mutex_t gmu = PTHREAD_MUTEX_INITIALIZER;
static gbuf *gv;          /* live buffers, sorted by address */
static size_t gn, gcap;

/* index of the buffer holding p, or -1; under gmu */
static long find(const void *p)
{
    size_t lo = 0, hi = gn;
    const char *c = p;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < gv[mid].p)
            hi = mid;
        else if (c >= gv[mid].p + gv[mid].bytes)
            lo = mid + 1;
        else
            return (long)mid;
    }
    return -1;
}

static size_t page_round(size_t n)
{
    const size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    return (n + pg - 1) / pg * pg;
}

static float *guard_alloc(spo_dev *d, size_t n)
{
    (void)d;
    const size_t bytes = page_round(n * sizeof(float)); /* n checked by spo_dev_alloc */
    void *p = mmap(NULL, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); /* zeroed */
    if (p == MAP_FAILED) {
        spo_err(SPO_EIO, "out of memory allocating %zu floats (guard)", n);
        return NULL;
    }
    pthread_mutex_lock(&gmu);
    if (gn == gcap) {
        size_t cap = gcap ? 2 * gcap : 256;
        gbuf *v = realloc(gv, cap * sizeof *v);
        if (!v) {
            pthread_mutex_unlock(&gmu);
            munmap(p, bytes);
            spo_err(SPO_EIO, "out of memory (guard registry)");
            return NULL;
        }
        gv = v, gcap = cap;
    }
    size_t at = 0;
    while (at < gn && gv[at].p < (char *)p) at++;
    memmove(gv + at + 1, gv + at, (gn - at) * sizeof *gv);
    gv[at] = (gbuf){.p = p, .bytes = bytes, .open = 0};
    gn++;
    pthread_mutex_unlock(&gmu);
    return p;
}

static void guard_free(spo_dev *d, float *p)
{
    (void)d;
    pthread_mutex_lock(&gmu);
    long i = find(p);
    if (i < 0 || gv[i].p != (char *)p) {
        pthread_mutex_unlock(&gmu);
        abort(); /* freeing what is not a device buffer: a bug to stop at */
    }
    gbuf b = gv[i];
    memmove(gv + i, gv + i + 1, (gn - (size_t)i - 1) * sizeof *gv);
    gn--;
    pthread_mutex_unlock(&gmu);
    munmap(b.p, b.bytes);
}

/* the buffers one call opens: at most one per pointer argument */
#define GMAX 16
typedef struct {
    const char *fn;
    char *open[GMAX];
    int n, bad;
    const char *badarg;
} gset;

/* p (NULL is skipped) must be device memory: open its buffer for this call */
static void use(gset *s, const float *p, const char *arg)
{
    if (!p || s->bad) return;
    pthread_mutex_lock(&gmu);
    long i = find(p);
    if (i < 0) {
        s->bad = 1, s->badarg = arg;
    } else {
        int seen = 0; /* already open for this call */
        for (int k = 0; k < s->n && !seen; k++) seen = s->open[k] == gv[i].p;
        if (!seen && s->n < GMAX) {
            if (gv[i].open++ == 0) mprotect(gv[i].p, gv[i].bytes, PROT_READ | PROT_WRITE);
            s->open[s->n++] = gv[i].p;
        }
    }
    pthread_mutex_unlock(&gmu);
}

static void done(gset *s)
{
    pthread_mutex_lock(&gmu);
    for (int k = 0; k < s->n; k++) {
        long i = find(s->open[k]);
        if (i >= 0 && --gv[i].open == 0) mprotect(gv[i].p, gv[i].bytes, PROT_NONE);
    }
    pthread_mutex_unlock(&gmu);
}

static int bad_arg(const gset *s)
{
    return spo_err(SPO_EINVAL, "%s: argument '%s' is not device memory (SPO_DEV_GUARD)", s->fn, s->badarg);
}

/* The body of a guarded function FN: open the buffers of the listed
 * arguments (every float pointer among them; NULL skipped), make CALL,
 * close them again. */
#define G_PTR(a) _Generic((a), float *: (a), const float *: (a), default: (const float *)0)
#define G_USE(a) use(&guard_set_, G_PTR(a), #a);
#define G_EACH1(f, a) f(a)
#define G_EACH2(f, a, ...) f(a) G_EACH1(f, __VA_ARGS__)
#define G_EACH3(f, a, ...) f(a) G_EACH2(f, __VA_ARGS__)
#define G_EACH4(f, a, ...) f(a) G_EACH3(f, __VA_ARGS__)
#define G_EACH5(f, a, ...) f(a) G_EACH4(f, __VA_ARGS__)
#define G_EACH6(f, a, ...) f(a) G_EACH5(f, __VA_ARGS__)
#define G_EACH7(f, a, ...) f(a) G_EACH6(f, __VA_ARGS__)
#define G_EACH8(f, a, ...) f(a) G_EACH7(f, __VA_ARGS__)
#define G_EACH9(f, a, ...) f(a) G_EACH8(f, __VA_ARGS__)
#define G_EACH10(f, a, ...) f(a) G_EACH9(f, __VA_ARGS__)
#define G_EACH11(f, a, ...) f(a) G_EACH10(f, __VA_ARGS__)
#define G_EACH12(f, a, ...) f(a) G_EACH11(f, __VA_ARGS__)
#define G_EACH13(f, a, ...) f(a) G_EACH12(f, __VA_ARGS__)
#define G_EACH14(f, a, ...) f(a) G_EACH13(f, __VA_ARGS__)
#define G_EACH15(f, a, ...) f(a) G_EACH14(f, __VA_ARGS__)
#define G_EACH16(f, a, ...) f(a) G_EACH15(f, __VA_ARGS__)
#define G_NTH(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, N, ...) N
#define G_EACH(f, ...)                                                                                             \
    G_NTH(__VA_ARGS__, G_EACH16, G_EACH15, G_EACH14, G_EACH13, G_EACH12, G_EACH11, G_EACH10, G_EACH9, G_EACH8,     \
          G_EACH7, G_EACH6, G_EACH5, G_EACH4, G_EACH3, G_EACH2, G_EACH1)(f, __VA_ARGS__)
#define G_UNPAREN(...) __VA_ARGS__

#define GUARDED(FN, CALL, ...)                                                                                     \
    gset guard_set_ = {.fn = FN}; /* a name no op parameter has */                                                \
    G_EACH(G_USE, __VA_ARGS__)                                                                                     \
    int rc = guard_set_.bad ? bad_arg(&guard_set_) : CALL;                                                         \
    done(&guard_set_);                                                                                             \
    return rc;

/* ---- memory functions: only the device side is opened ---- */
static int guard_upload(spo_dev *d, float *dst, const float *host, size_t n)
{
    GUARDED("spo_dev_upload", spo_cpu_upload(d, dst, host, n), dst)
}

static int guard_download(spo_dev *d, float *host, const float *src, size_t n)
{
    GUARDED("spo_dev_download", spo_cpu_download(d, host, src, n), src)
}

static int guard_zero(spo_dev *d, float *p, size_t n) { GUARDED("spo_dev_zero", spo_cpu_zero(d, p, n), p) }

static int guard_copy(spo_dev *d, float *dst, const float *src, size_t n)
{
    GUARDED("spo_dev_copy", spo_cpu_copy(d, dst, src, n), dst, src)
}

/* ---- ops: every float-pointer argument is opened (others are skipped) ---- */
#define GUARD_OP(name, params, args)                                                                               \
    static int guard_##name params { GUARDED("spo_" #name, spo_cpu_##name args, G_UNPAREN args) }
SPO_OPS(GUARD_OP)
#undef GUARD_OP

#define GUARD_ENTRY(name, params, args) .name = guard_##name,
const spo_ops_table spo_cpu_guard_ops = SPO_OPS_TABLE("cpu-guard", spo_cpu_open, spo_cpu_close, guard_alloc, guard_free,
                                                      spo_cpu_sync, GUARD_ENTRY);
#undef GUARD_ENTRY
