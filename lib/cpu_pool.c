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
 * the scheduler left asleep (the machine may be shared). A job of one chunk,
 * a one-thread device, and a call from inside a job (nested) or while
 * another thread runs a job on the same device run on the calling thread.
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
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "ops_impl.h"

struct spo_cpu_pool {
    int n; /* threads, the caller's included */
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned long gen; /* job number, bumped for each job */
    int open;          /* chunks are left: late workers may join */
    int busy;          /* workers inside the current job */
    int quit;
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

static void *worker(void *arg)
{
    worker_arg *w = arg;
    struct spo_cpu_pool *p = w->p;
    const int id = w->id;
    free(w);
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->gen == seen && !p->quit) pthread_cond_wait(&p->go, &p->mu);
        if (p->quit) break;
        seen = p->gen;
        if (!p->open) continue; /* woke too late: the caller took the rest */
        p->busy++;
        pthread_mutex_unlock(&p->mu);
        take_chunks(p, id);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
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
    p->gen++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    take_chunks(p, 0);
    pthread_mutex_lock(&p->mu);
    p->open = 0;
    while (p->busy) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
    openblas_set_num_threads(d->threads);
    atomic_store(&p->running, 0);
}
