/* cpu_pool.c — the CPU device's state (d->impl): a thread pool for the ops
 * that BLAS does not cover (attention softmax, norms, activations, im2col,
 * ...) and a cached scratch buffer.
 *
 * spo_dev_open(.., threads) starts threads - 1 workers that sleep on a
 * condition variable; spo_cpu_parallel_for hands them a job: the items
 * [0, n) cut into chunks of `grain` items, taken in turn from an atomic
 * counter by the workers and by the calling thread, which also works. The
 * chunks depend on n and grain only, never on the thread count, and an op
 * writes each output from one chunk only (any reduction stays inside a
 * chunk, in a fixed order), so results are the same for every thread count.
 *
 * A worker that wakes after the caller has taken every chunk does not join,
 * so the caller waits only for the workers that took a chunk, never for one
 * the scheduler left asleep (the machine may be shared). Workers spin for
 * SPIN_NS (yielding now and then) before they sleep, and so does the caller
 * before it sleeps on the last workers: an op's jobs come microseconds
 * apart, while waking a sleeping thread takes tens of microseconds. A job
 * of one chunk, a one-thread device, and a call from inside a job (nested)
 * or while another thread runs a job on the same device run on the calling
 * thread.
 *
 * While a job runs, OpenBLAS is set to one thread, so that a task that
 * calls sgemm (attention) does not start BLAS threads on top of the pool's;
 * the device's BLAS thread count is restored afterwards.
 *
 * The scratch an op needs (score blocks, column matrices: up to tens of
 * MiB) is kept from call to call: a fresh malloc of that size is an mmap,
 * and the page faults on it cost as much as a small convolution. An op
 * that finds the cached buffer taken (another thread using the device)
 * gets a malloc'd one instead. */
#include <cblas.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "ops/ops_impl.h"

struct spo_cpu_pool {
    int n; /* threads, the caller's included */
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    atomic_ulong gen;   /* job number, bumped (under mu) for each job */
    int open;           /* chunks are left: late workers may join (mu) */
    atomic_int busy;    /* workers inside the current job (joined under mu) */
    int sleepers;       /* workers waiting on go (mu) */
    int waiting;        /* the caller waits on done (mu) */
    int quit;           /* (mu) */
    atomic_int running; /* a job is in flight (guards against a second caller) */
    /* the job */
    spo_cpu_task fn;
    void *ctx;
    size_t items, grain, nchunks;
    atomic_size_t next; /* next chunk to take */
};

struct spo_cpu_state {
    struct spo_cpu_pool *pool; /* NULL: one thread */
    float *buf;                /* the cached scratch, cap floats */
    size_t cap;
    atomic_int busy;
};

typedef struct {
    struct spo_cpu_pool *p;
    int id;
} worker_arg;

static _Thread_local int in_job; /* this thread is running a task */

static void take_chunks(struct spo_cpu_pool *p, int id)
{
    in_job++;
    for (;;) {
        size_t c = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (c >= p->nchunks) break;
        size_t lo = c * p->grain, hi = lo + p->grain < p->items ? lo + p->grain : p->items;
        p->fn(p->ctx, lo, hi, id);
    }
    in_job--;
}

static void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* waits up to SPIN_NS for *v to leave `from` (gen) or reach 0 (busy): the
 * next job of an op usually comes within microseconds, sooner than a
 * sleeping thread wakes. Yields the core now and then, to BLAS's threads. */
#define SPIN_NS 50000
static int spin_ulong(atomic_ulong *v, unsigned long from)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(v, memory_order_acquire) != from) return 1;
        if (i % 64) {
            relax();
            continue;
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) > SPIN_NS) return 0;
        sched_yield();
    }
}

static void spin_zero(atomic_int *v)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 1;; i++) {
        if (!atomic_load_explicit(v, memory_order_acquire)) return;
        if (i % 64) {
            relax();
            continue;
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) > SPIN_NS) return;
        sched_yield();
    }
}

static void *worker(void *arg)
{
    worker_arg *w = arg;
    struct spo_cpu_pool *p = w->p;
    const int id = w->id;
    free(w);
    unsigned long seen = 0;
    for (;;) {
        spin_ulong(&p->gen, seen);
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->gen) == seen && !p->quit) {
            p->sleepers++;
            pthread_cond_wait(&p->go, &p->mu);
            p->sleepers--;
        }
        if (p->quit) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        seen = atomic_load(&p->gen);
        if (!p->open) { /* woke too late: the caller took the rest */
            pthread_mutex_unlock(&p->mu);
            continue;
        }
        atomic_fetch_add(&p->busy, 1);
        pthread_mutex_unlock(&p->mu);
        take_chunks(p, id);
        if (atomic_fetch_sub(&p->busy, 1) == 1) {
            pthread_mutex_lock(&p->mu);
            if (p->waiting) pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

static void pool_stop(struct spo_cpu_pool *p, int started)
{
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < started; i++) pthread_join(p->th[i], NULL);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p->th);
    free(p);
}

/* a pool of `threads` (>= 2); NULL when even one worker cannot start (the
 * ops then run on the calling thread) */
static struct spo_cpu_pool *pool_new(int threads)
{
    struct spo_cpu_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->th = calloc((size_t)threads - 1, sizeof *p->th);
    if (!p->th || pthread_mutex_init(&p->mu, NULL)) {
        free(p->th);
        free(p);
        return NULL;
    }
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->running, 0);
    atomic_init(&p->next, 0);
    atomic_init(&p->gen, 0);
    atomic_init(&p->busy, 0);
    int started = 0;
    for (int i = 0; i < threads - 1; i++) {
        worker_arg *w = malloc(sizeof *w);
        if (!w) break;
        *w = (worker_arg){p, i + 1};
        if (pthread_create(&p->th[i], NULL, worker, w)) {
            free(w);
            break;
        }
        started++;
    }
    if (!started) {
        pool_stop(p, 0);
        return NULL;
    }
    p->n = started + 1;
    return p;
}

struct spo_cpu_state *spo_cpu_state_new(int threads)
{
    struct spo_cpu_state *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    atomic_init(&st->busy, 0);
    st->pool = threads > 1 ? pool_new(threads) : NULL;
    return st;
}

void spo_cpu_state_free(struct spo_cpu_state *st)
{
    if (!st) return;
    if (st->pool) pool_stop(st->pool, st->pool->n - 1);
    free(st->buf);
    free(st);
}

/* floats in the conv column buffer (cpu_conv.c) or band (cpu_convs.c): 32 MiB */
size_t spo_cpu_col_max = (size_t)8 << 20;

float *spo_cpu_scratch(spo_dev *d, size_t n)
{
    struct spo_cpu_state *st = d->impl;
    if (n > SIZE_MAX / sizeof(float)) {
        spo_err(SPO_EIO, "scratch of %zu floats overflows size_t", n);
        return NULL;
    }
    if (!n) n = 1;
    int idle = 0;
    if (st && atomic_compare_exchange_strong(&st->busy, &idle, 1)) {
        if (st->cap >= n) return st->buf;
        free(st->buf);
        st->cap = 0;
        if ((st->buf = malloc(n * sizeof(float)))) {
            st->cap = n;
            return st->buf;
        }
        atomic_store(&st->busy, 0);
    } else {
        float *p = malloc(n * sizeof(float));
        if (p) return p;
    }
    spo_err(SPO_EIO, "out of memory allocating %zu floats of scratch", n);
    return NULL;
}

void spo_cpu_scratch_put(spo_dev *d, float *p)
{
    struct spo_cpu_state *st = d->impl;
    if (!p) return;
    if (st && p == st->buf)
        atomic_store(&st->busy, 0);
    else
        free(p);
}

int spo_cpu_workers(const spo_dev *d)
{
    const struct spo_cpu_state *st = d->impl;
    return st && st->pool ? st->pool->n : 1;
}

void spo_cpu_parallel_for(spo_dev *d, size_t n, size_t grain, spo_cpu_task fn, void *ctx)
{
    const struct spo_cpu_state *st = d->impl;
    struct spo_cpu_pool *p = st ? st->pool : NULL;
    if (!n) return;
    if (grain < 1) grain = 1;
    const size_t nchunks = (n - 1) / grain + 1;
    int idle = 0;
    if (!p || nchunks < 2 || in_job || !atomic_compare_exchange_strong(&p->running, &idle, 1)) {
        in_job++;
        for (size_t lo = 0; lo < n; lo += grain) fn(ctx, lo, n - lo < grain ? n : lo + grain, 0);
        in_job--;
        return;
    }
    openblas_set_num_threads(1);
    pthread_mutex_lock(&p->mu);
    p->fn = fn, p->ctx = ctx, p->items = n, p->grain = grain, p->nchunks = nchunks;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    p->open = 1;
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    if (p->sleepers) pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    take_chunks(p, 0);
    pthread_mutex_lock(&p->mu);
    p->open = 0;
    pthread_mutex_unlock(&p->mu);
    spin_zero(&p->busy);
    pthread_mutex_lock(&p->mu);
    p->waiting = 1;
    while (atomic_load(&p->busy)) pthread_cond_wait(&p->done, &p->mu);
    p->waiting = 0;
    pthread_mutex_unlock(&p->mu);
    openblas_set_num_threads(d->threads);
    atomic_store(&p->running, 0);
}

typedef struct {
    spo_cpu_row row;
    const void *ctx;
} rows_job;

static void rows_task(void *ctx, size_t lo, size_t hi, int worker)
{
    const rows_job *r = ctx;
    (void)worker;
    for (size_t i = lo; i < hi; i++) r->row(r->ctx, i);
}

int spo_cpu_rows(spo_dev *d, size_t m, size_t c, spo_cpu_row row, const void *ctx)
{
    rows_job r = {.row = row, .ctx = ctx};
    spo_cpu_parallel_for(d, m, spo_cpu_grain(SPO_CPU_CHUNK, c), rows_task, &r);
    return SPO_OK;
}
