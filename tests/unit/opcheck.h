/* opcheck.h — helpers shared by the op tests (tests/unit/test_ops_*.c):
 * random data, device buffers, relative errors, and the backward checks.
 *
 * An op test describes its op as an fdcase: the inputs as double arrays
 * (exact copies of the float inputs), a double-precision reference forward
 * and a fixed upstream gradient dy, so loss = sum(dy * y). check_backward
 * then compares the op's float gradients with central differences of that
 * double loss, and checks that backward accumulates and skips NULL
 * gradients. Include after <cmocka.h>.
 *
 * The device: SPO_TEST_DEVICE=cpu (the default) or cuda picks the device
 * the ops run on (OPCHECK_MAIN). Every check then holds the device's
 * result to the same double reference (and finite differences) that the
 * CPU result is held to, at the CPU tolerances on the CPU and at the GPU
 * tolerance of DESIGN.md section 7 (2e-2) on CUDA. Where CUDA is not built
 * or no GPU answers, the test prints one SKIP line naming why and passes
 * without running; tests of the CPU backend's internals (OPCHECK_MAIN_CPU)
 * skip on every device but the CPU. */
#ifndef SPO_OPCHECK_H
#define SPO_OPCHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"

#define GPU_TOL 2e-2 /* any tolerance on a GPU device (DESIGN.md section 7: bf16 GPU <= 2e-2) */
#define FWD_TOL tol(1e-5)  /* forward: relative L2 error against the double reference */
#define GRAD_TOL tol(1e-4) /* backward: relative L2 error against finite differences */
#define FD_STEP 1e-4

static spo_devkind opcheck_kind = SPO_DEV_CPU; /* the device under test (OPCHECK_MAIN) */

/* a CPU tolerance, widened to GPU_TOL on a GPU device */
static inline double tol(double cpu) { return opcheck_kind == SPO_DEV_CPU || cpu > GPU_TOL ? cpu : GPU_TOL; }

#define OK(e)                                                                                                      \
    do {                                                                                                           \
        int rc_ = (e);                                                                                             \
        if (rc_) print_error("%s -> %d: %s\n", #e, rc_, spo_errmsg());                                            \
        assert_int_equal(rc_, SPO_OK);                                                                             \
    } while (0)

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static inline float frand(void) /* uniform in [-1, 1) */
{
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static inline float *hrand(size_t n) /* host buffer of random floats */
{
    float *p = malloc(n * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) p[i] = frand();
    return p;
}

static inline double *todouble(const float *x, size_t n)
{
    double *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) p[i] = x[i];
    return p;
}

static inline float *dput(spo_dev *d, const float *h, size_t n) /* device copy of h (zeros if NULL) */
{
    float *p = spo_dev_alloc(d, n);
    assert_non_null(p);
    if (h) OK(spo_dev_upload(d, p, h, n));
    return p;
}

static inline float *dget(spo_dev *d, const float *p, size_t n) /* host copy of device p */
{
    float *h = malloc(n * sizeof *h);
    assert_non_null(h);
    OK(spo_dev_download(d, h, p, n));
    return h;
}

/* ||a - ref|| / ||ref||, or ||a|| when ref is 0 */
static inline double relerr(const float *a, const double *ref, size_t n)
{
    double e = 0.0, r = 0.0;
    for (size_t i = 0; i < n; i++) {
        double t = a[i] - ref[i];
        e += t * t, r += ref[i] * ref[i];
    }
    return r > 0 ? sqrt(e / r) : sqrt(e);
}

static inline void check_close(const char *what, const float *a, const double *ref, size_t n, double tol)
{
    double e = relerr(a, ref, n);
    if (getenv("OPCHECK_VERBOSE")) fprintf(stderr, "  %-50s %.2e\n", what, e);
    if (!(e <= tol)) {
        print_error("%s: relative error %.3g > %.3g\n", what, e, tol);
        fail();
    }
}

/* device output p (n) against a double reference */
static inline void check_dev(spo_dev *d, const char *what, const float *p, const double *ref, size_t n, double tol)
{
    float *h = dget(d, p, n);
    check_close(what, h, ref, n, tol);
    free(h);
}

typedef struct fdcase fdcase;
struct fdcase {
    int nin;
    double *in[8]; /* the op's inputs, double copies */
    size_t nel[8];
    size_t ny;
    double *dy;                                /* fixed upstream gradient (ny) */
    void (*fwd)(const fdcase *c, double *y);   /* reference forward: y (ny) from in[] */
};

static inline double fd_loss(const fdcase *c, double *y)
{
    c->fwd(c, y);
    double s = 0.0;
    for (size_t i = 0; i < c->ny; i++) s += c->dy[i] * y[i];
    return s;
}

/* g = d loss / d in[which], central differences */
static inline void fd_grad(fdcase *c, int which, double *g)
{
    double *y = malloc(c->ny * sizeof *y), *x = c->in[which];
    assert_non_null(y);
    for (size_t i = 0; i < c->nel[which]; i++) {
        double x0 = x[i];
        x[i] = x0 + FD_STEP;
        double lp = fd_loss(c, y);
        x[i] = x0 - FD_STEP;
        double lm = fd_loss(c, y);
        x[i] = x0;
        g[i] = (lp - lm) / (2 * FD_STEP);
    }
    free(y);
}

/* the op's forward reference output (ny), freshly allocated */
static inline double *ref_forward(const fdcase *c)
{
    double *y = malloc(c->ny * sizeof *y);
    assert_non_null(y);
    c->fwd(c, y);
    return y;
}

/* the op's backward: device gradient buffers g[k] (or NULL) for slot k */
typedef int (*bwdfn)(void *self, float **g);

/* Backward checks for ngrad gradient slots; slot k is the gradient of input
 * which[k] of c. (1) from zero, all slots: against finite differences;
 * (2) from random values, called twice: the increase is twice (1);
 * (3) all NULL: succeeds; (4) each slot alone: equal to (1). */
static inline void check_backward(spo_dev *d, const char *name, fdcase *c, int ngrad, const int *which, bwdfn bwd,
                                  void *self)
{
    float *g[8] = {0}, *none[8] = {0};
    float *first[8];
    char what[128];
    for (int k = 0; k < ngrad; k++) g[k] = dput(d, NULL, c->nel[which[k]]);
    OK(bwd(self, g));
    for (int k = 0; k < ngrad; k++) {
        size_t n = c->nel[which[k]];
        double *fd = malloc(n * sizeof *fd);
        assert_non_null(fd);
        fd_grad(c, which[k], fd);
        first[k] = dget(d, g[k], n);
        snprintf(what, sizeof what, "%.60s: gradient %d vs finite differences", name, k);
        check_close(what, first[k], fd, n, GRAD_TOL);
        free(fd);
    }
    /* accumulation: base + 2 * grad */
    float *base[8];
    for (int k = 0; k < ngrad; k++) {
        size_t n = c->nel[which[k]];
        base[k] = hrand(n);
        OK(spo_dev_upload(d, g[k], base[k], n));
    }
    OK(bwd(self, g));
    OK(bwd(self, g));
    for (int k = 0; k < ngrad; k++) {
        size_t n = c->nel[which[k]];
        float *h = dget(d, g[k], n);
        double *want = malloc(n * sizeof *want);
        assert_non_null(want);
        for (size_t i = 0; i < n; i++) want[i] = (double)base[k][i] + 2.0 * first[k][i];
        snprintf(what, sizeof what, "%.60s: gradient %d accumulated twice", name, k);
        check_close(what, h, want, n, tol(1e-5));
        free(h), free(want), free(base[k]);
    }
    OK(bwd(self, none));
    for (int k = 0; k < ngrad; k++) {
        size_t n = c->nel[which[k]];
        float *one[8] = {0};
        OK(spo_dev_zero(d, g[k], n));
        one[k] = g[k];
        OK(bwd(self, one));
        float *h = dget(d, g[k], n);
        double *want = todouble(first[k], n);
        snprintf(what, sizeof what, "%.60s: gradient %d alone", name, k);
        check_close(what, h, want, n, tol(1e-6));
        free(h), free(want);
    }
    for (int k = 0; k < ngrad; k++) spo_dev_free(d, g[k]), free(first[k]);
}

static inline void fdcase_free(fdcase *c)
{
    for (int i = 0; i < c->nin; i++) free(c->in[i]);
    free(c->dy);
}

static inline int dev_setup(void **state)
{
    spo_dev *d = NULL;
    if (spo_dev_open(&d, opcheck_kind, 1)) return -1;
    *state = d;
    return 0;
}

static inline int dev_teardown(void **state)
{
    spo_dev_close(*state);
    return 0;
}

/* SPO_TEST_DEVICE -> opcheck_kind. 1: run the tests; 0: skip them (one line
 * on stdout says why); -1: a bad value (the test fails). cpu_only: the
 * tests exercise the CPU backend itself. */
static inline int opcheck_device(const char *prog, int cpu_only)
{
    const char *v = getenv("SPO_TEST_DEVICE");
    if (!v || !*v || !strcmp(v, "cpu")) {
        opcheck_kind = SPO_DEV_CPU;
        return 1;
    }
    if (strcmp(v, "cuda")) {
        fprintf(stderr, "%s: SPO_TEST_DEVICE=%s: must be cpu or cuda\n", prog, v);
        return -1;
    }
    opcheck_kind = SPO_DEV_CUDA;
    if (cpu_only) {
        printf("SKIP %s: tests the CPU backend only (SPO_TEST_DEVICE=cuda)\n", prog);
        return 0;
    }
    spo_dev *d = NULL;
    if (spo_dev_open(&d, SPO_DEV_CUDA, 1)) {
        printf("SKIP %s: SPO_TEST_DEVICE=cuda: %s\n", prog, spo_errmsg());
        return 0;
    }
    spo_dev_close(d);
    return 1;
}

/* main's body: the group on the device of SPO_TEST_DEVICE, or a skip */
#define OPCHECK_RUN(prog, cpu_only, tests, setup, teardown)                                                        \
    do {                                                                                                           \
        int on_ = opcheck_device(prog, cpu_only);                                                                  \
        return on_ > 0 ? cmocka_run_group_tests(tests, setup, teardown) : on_ < 0;                                 \
    } while (0)
#define OPCHECK_MAIN(tests) OPCHECK_RUN(__FILE__, 0, tests, dev_setup, dev_teardown)
#define OPCHECK_MAIN_CPU(tests, setup, teardown) OPCHECK_RUN(__FILE__, 1, tests, setup, teardown)

#endif
