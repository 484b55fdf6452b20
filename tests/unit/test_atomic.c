/* test_atomic.c — the one atomic writer (core/atomic.h) and every writer built
 * on it: a forked child is killed with SIGINT or SIGTERM in the middle of a
 * write, and afterwards neither a temporary nor the target exists. Also: a
 * commit replaces, an abort leaves the old file, streams (/dev/null, a FIFO)
 * are written and never replaced, regular-input checks (core/infile.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ckpt/ptbin_write.h"
#include "ckpt/safetensors.h"
#include "core/atomic.h"
#include "core/err.h"
#include "core/infile.h"
#include "io/h5io.h"
#include "io/outfile.h"
#include "nn/mkmodel.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/spo-test-atomic-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *in_dir(const char *name)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

/* entries of dir (not . and ..); *tmp counts those with ".tmp." in the name */
static int entries(int *tmp)
{
    DIR *d = opendir(dir);
    int n = 0;
    *tmp = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        n++;
        if (strstr(e->d_name, ".tmp.")) ++*tmp;
    }
    if (d) closedir(d);
    return n;
}

/* ---- the writers, each run in a child ------------------------------------------- */
static int ready_fd = -1;

static void ready(void) /* tell the parent the write is under way, and wait for the signal */
{
    char c = 1;
    if (write(ready_fd, &c, 1) != 1) _exit(3);
    for (;;) pause();
}

static void w_h5(const char *path, size_t n)
{
    spo_h5 *f;
    float *x = calloc(n, sizeof *x);
    if (!x || spo_h5_create(&f, path, NULL, 0)) _exit(3);
    if (spo_h5_write(f, "/x", SPO_T_F32, 1, (int64_t[]){(int64_t)n}, x)) _exit(3);
    ready();
}

static void w_outfile(const char *path, size_t n)
{
    spo_outfile o;
    if (spo_outfile_open(&o, path, 0)) _exit(3);
    for (size_t i = 0; i < n; i++) fputc('x', o.fp);
    fflush(o.fp);
    ready();
}

static void w_dir(const char *path, size_t n)
{
    spo_atomic a;
    if (spo_atomic_open(&a, path, SPO_ATOMIC_DIR, 0)) _exit(3);
    char p[600];
    snprintf(p, sizeof p, "%s/sub", a.tmp);
    if (mkdir(p, 0755)) _exit(3);
    snprintf(p, sizeof p, "%s/sub/f", a.tmp);
    FILE *f = fopen(p, "w");
    if (!f) _exit(3);
    for (size_t i = 0; i < n; i++) fputc('x', f);
    fclose(f);
    ready();
}

/* No hook inside these writers: the parent polls for the temporary and kills
 * the child while the (large) write goes on. */
static void w_st(const char *path, size_t n)
{
    spo_st_writer *w;
    void *x = calloc(n, 4);
    if (!x || spo_st_writer_new(&w) || spo_st_writer_add_raw(w, "x", SPO_ST_F32, 1, (int64_t[]){(int64_t)n}, x))
        _exit(3);
    _exit(spo_st_writer_write(w, path) ? 3 : 0);
}

static void w_ptbin(const char *path, size_t n)
{
    spo_ptbin_writer *w;
    void *x = calloc(n, 4);
    if (!x || spo_ptbin_writer_new(&w) ||
        spo_ptbin_writer_add_raw(w, "x", SPO_PT_F32, 1, (int64_t[]){(int64_t)n}, x))
        _exit(3);
    _exit(spo_ptbin_writer_write(w, path) ? 3 : 0);
}

static void on_progress(void *ctx, const char *what)
{
    (void)ctx, (void)what;
    ready();
}

static void w_mkmodel(const char *path, size_t n)
{
    (void)n;
    spo_mkmodel_opts o = {.preset = "tiny", .seed = 1, .dtype = SPO_ST_F32, .progress = on_progress};
    _exit(spo_mkmodel(path, &o) ? 3 : 0);
}

/* Run writer in a child, signal it mid-write; 1 when it was killed by sig
 * before finishing, 0 when it finished first (the caller retries bigger). */
static int interrupt(void (*writer)(const char *, size_t), const char *path, size_t n, int sig, int hooked)
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        ready_fd = pfd[1];
        writer(path, n);
        _exit(0);
    }
    close(pfd[1]);
    if (hooked) {
        char c;
        assert_int_equal(read(pfd[0], &c, 1), 1);
    } else {
        int t;
        struct timespec ms = {0, 200000};
        for (int i = 0; i < 50000 && entries(&t) >= 0 && !t; i++) nanosleep(&ms, NULL);
    }
    kill(pid, sig);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    close(pfd[0]);
    if (WIFEXITED(st)) {
        assert_int_equal(WEXITSTATUS(st), 0);
        unlink(path);
        return 0;
    }
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), sig);
    return 1;
}

static void check_interrupted(void (*writer)(const char *, size_t), const char *name, int hooked)
{
    const int sigs[] = {SIGINT, SIGTERM};
    for (int s = 0; s < 2; s++) {
        int killed = 0;
        for (size_t n = 1 << 22; !killed && n <= (size_t)1 << 27; n *= 2)
            killed = interrupt(writer, in_dir(name), n, sigs[s], hooked);
        assert_true(killed);
        int tmp, all = entries(&tmp);
        if (tmp || all) fprintf(stderr, "%s: %d entries, %d temporaries left\n", name, all, tmp);
        assert_int_equal(tmp, 0);
        assert_int_equal(all, 0);
        assert_int_equal(access(in_dir(name), F_OK), -1);
    }
}

static void test_interrupt_h5(void **state) { check_interrupted(w_h5, "a.h5", 1); }
static void test_interrupt_outfile(void **state) { check_interrupted(w_outfile, "a.png", 1); }
static void test_interrupt_dir(void **state) { check_interrupted(w_dir, "folder", 1); }
static void test_interrupt_safetensors(void **state) { check_interrupted(w_st, "a.safetensors", 0); }
static void test_interrupt_ptbin(void **state) { check_interrupted(w_ptbin, "a.bin", 0); }
static void test_interrupt_mkmodel(void **state) { check_interrupted(w_mkmodel, "model", 1); }

/* ---- commit, abort, streams ------------------------------------------------------- */
static void put(spo_atomic *a, const char *s) { assert_true(fputs(s, a->fp) >= 0); }

static char *slurp(const char *p)
{
    static char b[256];
    FILE *f = fopen(p, "r");
    size_t n = f ? fread(b, 1, sizeof b - 1, f) : 0;
    if (f) fclose(f);
    b[n] = 0;
    return b;
}

static void test_commit_abort(void **state)
{
    spo_atomic a;
    const char *p = in_dir("f.txt");
    assert_int_equal(spo_atomic_open(&a, p, SPO_ATOMIC_FILE, 0), SPO_OK);
    put(&a, "one");
    assert_int_equal(spo_atomic_commit(&a), SPO_OK);
    assert_string_equal(slurp(p), "one");
    assert_int_equal(spo_atomic_open(&a, p, SPO_ATOMIC_FILE, 0), SPO_EINVAL); /* exists, no force */
    assert_non_null(strstr(spo_errmsg(), "exists"));
    assert_int_equal(spo_atomic_open(&a, p, SPO_ATOMIC_FILE, 1), SPO_OK);
    put(&a, "two");
    spo_atomic_abort(&a);
    assert_string_equal(slurp(p), "one");
    assert_int_equal(spo_atomic_open(&a, in_dir("no/such/f"), SPO_ATOMIC_FILE, 1), SPO_EINVAL);
    assert_int_equal(spo_atomic_open(&a, dir, SPO_ATOMIC_FILE, 1), SPO_EINVAL); /* a folder */
    assert_int_equal(spo_atomic_open(&a, p, SPO_ATOMIC_DIR, 1), SPO_EINVAL);  /* a file, not a folder */
    /* a folder replaces a folder as a whole */
    const char *d = in_dir("d");
    for (int i = 0; i < 2; i++) {
        assert_int_equal(spo_atomic_open(&a, d, SPO_ATOMIC_DIR, 1), SPO_OK);
        char q[600];
        snprintf(q, sizeof q, "%s/%s", a.tmp, i ? "new" : "old");
        fclose(fopen(q, "w"));
        assert_int_equal(spo_atomic_commit(&a), SPO_OK);
    }
    char q[600];
    snprintf(q, sizeof q, "%s/new", d);
    assert_int_equal(access(q, F_OK), 0);
    snprintf(q, sizeof q, "%s/old", d);
    assert_int_equal(access(q, F_OK), -1);
    int tmp;
    assert_int_equal(entries(&tmp), 2);
    assert_int_equal(tmp, 0);
}

static void test_streams(void **state)
{
    spo_atomic a;
    /* a character device is written, not replaced (no -f needed) */
    assert_int_equal(spo_atomic_open(&a, "/dev/null", SPO_ATOMIC_FILE, 0), SPO_OK);
    assert_true(a.stream);
    put(&a, "nothing");
    assert_int_equal(spo_atomic_commit(&a), SPO_OK);
    struct stat st;
    assert_int_equal(stat("/dev/null", &st), 0);
    assert_true(S_ISCHR(st.st_mode));
    assert_int_equal(spo_atomic_open(&a, "/dev/null", SPO_ATOMIC_DIR, 1), SPO_EINVAL);
    /* a FIFO is streamed to its reader */
    const char *fifo = in_dir("fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    pid_t pid = fork();
    if (pid == 0) {
        spo_atomic w;
        if (spo_atomic_open(&w, fifo, SPO_ATOMIC_FILE, 0)) _exit(3);
        fputs("through the fifo", w.fp);
        _exit(spo_atomic_commit(&w) ? 4 : 0);
    }
    assert_string_equal(slurp(fifo), "through the fifo");
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    assert_int_equal(stat(fifo, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    /* an HDF5 file to a device: built in memory, streamed */
    spo_h5 *f;
    assert_int_equal(spo_h5_create(&f, "/dev/null", NULL, 0), SPO_OK);
    assert_int_equal(spo_h5_attr_int(f, NULL, "n", 1), SPO_OK);
    assert_int_equal(spo_h5_commit(f), SPO_OK);
    assert_int_equal(stat("/dev/null", &st), 0);
    assert_true(S_ISCHR(st.st_mode));
    unlink(fifo);
}

static void test_infile(void **state)
{
    const char *fifo = in_dir("in.fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    FILE *fp;
    assert_int_equal(spo_fopen_in(&fp, fifo), SPO_EINVAL); /* returns at once: no writer needed */
    assert_non_null(strstr(spo_errmsg(), "not a regular file"));
    assert_int_equal(spo_fopen_in(&fp, "/dev/null"), SPO_EINVAL);
    assert_int_equal(spo_fopen_in(&fp, dir), SPO_EINVAL);
    assert_non_null(strstr(spo_errmsg(), "is a directory"));
    assert_int_equal(spo_fopen_in(&fp, in_dir("missing")), SPO_EINVAL);
    assert_int_equal(errno, ENOENT);
    const char *p = in_dir("in.txt");
    fclose(fopen(p, "w"));
    assert_int_equal(spo_fopen_in(&fp, p), SPO_OK);
    assert_int_equal(fcntl(fileno(fp), F_GETFL) & O_NONBLOCK, 0);
    fclose(fp);
    unlink(p);
    unlink(fifo);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test_setup_teardown(test_interrupt_h5, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupt_outfile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupt_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupt_safetensors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupt_ptbin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupt_mkmodel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_infile, setup, teardown),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
