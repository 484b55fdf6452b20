/* atomic.c — temporary, rename on commit, removal on abort or signal (see
 * atomic.h). */
#include "core/atomic.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---- removing a temporary, also from a signal handler ------------------------ */
/* Only system calls here (no malloc, no stdio): getdents64 on an open folder. */
static void rm_tree_at(int at, const char *name, int depth)
{
    int fd = depth < 16 ? openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
    if (fd >= 0) {
        char buf[4096];
        for (int pass = 0; pass < 64; pass++) {
            int removed = 0;
            lseek(fd, 0, SEEK_SET);
            long n;
            while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0)
                for (long off = 0; off < n;) {
                    /* struct linux_dirent64: ino 8, off 8, reclen 2, type 1, name */
                    unsigned short reclen;
                    memcpy(&reclen, buf + off + 16, sizeof reclen);
                    unsigned char type = (unsigned char)buf[off + 18];
                    const char *e = buf + off + 19;
                    off += reclen;
                    if (!strcmp(e, ".") || !strcmp(e, "..")) continue;
                    if (type == DT_DIR) rm_tree_at(fd, e, depth + 1);
                    else unlinkat(fd, e, 0);
                    removed = 1;
                }
            if (!removed) break;
        }
        close(fd);
    }
    unlinkat(at, name, AT_REMOVEDIR);
}

static void remove_tmp(const char *p, int dir)
{
    if (dir) rm_tree_at(AT_FDCWD, p, 0);
    else unlink(p);
}

/* ---- the registry of live temporaries ---------------------------------------- */
#define MAXTMP 64
static char temps[MAXTMP][PATH_MAX];
static volatile sig_atomic_t used[MAXTMP]; /* 0 free, 1 file, 2 folder */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

void spo_atomic_cleanup(void)
{
    for (int i = 0; i < MAXTMP; i++)
        if (used[i]) {
            remove_tmp(temps[i], used[i] == 2);
            used[i] = 0;
        }
}

static void on_signal(int sig)
{
    spo_atomic_cleanup();
    signal(sig, SIG_DFL);
    raise(sig);
}

static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};

static void install_handlers(void)
{
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction sa, old;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
        sigaction(sigs[i], &sa, NULL);
    }
}

/* Block the handled signals while a temporary is created and registered, so
 * none can arrive between the two. */
static void block(sigset_t *old)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_handlers);
    sigset_t s;
    sigemptyset(&s);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaddset(&s, sigs[i]);
    pthread_sigmask(SIG_BLOCK, &s, old);
}

static void unblock(const sigset_t *old) { pthread_sigmask(SIG_SETMASK, old, NULL); }

static void reg(const char *p, int dir)
{
    pthread_mutex_lock(&reg_lock);
    for (int i = 0; i < MAXTMP; i++)
        if (!used[i]) {
            snprintf(temps[i], PATH_MAX, "%s", p);
            used[i] = dir ? 2 : 1;
            break;
        }
    pthread_mutex_unlock(&reg_lock);
}

static void unreg(const char *p)
{
    pthread_mutex_lock(&reg_lock);
    for (int i = 0; i < MAXTMP; i++)
        if (used[i] && !strcmp(temps[i], p)) used[i] = 0;
    pthread_mutex_unlock(&reg_lock);
}

/* ---- checks ------------------------------------------------------------------- */
/* The folder part of path ("." when none) into a malloc'd string. */
static char *folder_of(const char *path, const char **base)
{
    const char *s = strrchr(path, '/');
    *base = s ? s + 1 : path;
    if (!s) return strdup(".");
    if (s == path) return strdup("/");
    return strndup(path, (size_t)(s - path));
}

static int is_stream(const struct stat *st) { return S_ISCHR(st->st_mode) || S_ISFIFO(st->st_mode); }

int spo_atomic_is_stream(const char *path)
{
    struct stat st;
    return !strcmp(path, "-") || (stat(path, &st) == 0 && is_stream(&st));
}

int spo_atomic_check(const char *path, spo_atomic_kind kind, int force, int *stream)
{
    int dummy;
    if (!stream) stream = &dummy;
    *stream = 0;
    if (!strcmp(path, "-")) {
        if (kind == SPO_ATOMIC_DIR) return spo_err(SPO_EINVAL, "a folder cannot be written to standard output");
        *stream = 1;
        return SPO_OK;
    }
    if (!*path) return spo_err(SPO_EINVAL, "empty output file name");
    struct stat st;
    if (stat(path, &st) == 0) {
        if (is_stream(&st)) {
            if (kind == SPO_ATOMIC_DIR) return spo_err(SPO_EINVAL, "%s: is a device or FIFO, not a folder", path);
            *stream = 1;
            return SPO_OK;
        }
        if (S_ISDIR(st.st_mode) && kind != SPO_ATOMIC_DIR) return spo_err(SPO_EINVAL, "%s: is a directory", path);
        if (!S_ISDIR(st.st_mode) && kind == SPO_ATOMIC_DIR)
            return spo_err(SPO_EINVAL, "%s: exists and is not a folder; not replacing", path);
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
            return spo_err(SPO_EINVAL, "%s: not a regular file; not replacing", path);
        if (!force) return spo_err(SPO_EINVAL, "%s: exists (use -f to overwrite)", path);
    }
    const char *base;
    char *d = folder_of(path, &base);
    if (!d) return spo_err(SPO_EIO, "out of memory");
    int rc = SPO_OK;
    if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
        rc = spo_err(SPO_EINVAL, "%s: is a folder name, not a file name", path);
    else if (stat(d, &st) != 0 || !S_ISDIR(st.st_mode))
        rc = spo_err(SPO_EINVAL, "%s: folder '%s' does not exist", path, d);
    free(d);
    return rc;
}

/* ---- open, commit, abort --------------------------------------------------------- */
static int open_stream(spo_atomic *a)
{
    a->stream = 1;
    if (!strcmp(a->path, "-")) {
        a->fp = stdout;
        return SPO_OK;
    }
    int fd = open(a->path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (fd < 0 || !(a->fp = fdopen(fd, "wb"))) {
        int rc = spo_err(SPO_EIO, "%s: %s", a->path, strerror(errno));
        if (fd >= 0) close(fd);
        return rc;
    }
    return SPO_OK;
}

static int make_tmp(spo_atomic *a)
{
    const char *base;
    char *d = folder_of(a->path, &base);
    size_t n = (d ? strlen(d) : 0) + strlen(base) + 32;
    a->tmp = d ? malloc(n) : NULL;
    if (!a->tmp) {
        free(d);
        return spo_err(SPO_EIO, "out of memory");
    }
    snprintf(a->tmp, n, "%s/.%s.tmp.XXXXXX", d, base);
    free(d);
    sigset_t old;
    block(&old);
    int fd = -1, ok;
    if (a->kind == SPO_ATOMIC_DIR) ok = mkdtemp(a->tmp) != NULL;
    else ok = (fd = mkostemp(a->tmp, O_CLOEXEC)) >= 0;
    if (ok) reg(a->tmp, a->kind == SPO_ATOMIC_DIR);
    int e = errno;
    unblock(&old);
    if (!ok) {
        free(a->tmp);
        a->tmp = NULL;
        return spo_err(SPO_EIO, "%s: cannot write: %s", a->path, strerror(e));
    }
    if (a->kind == SPO_ATOMIC_DIR) return SPO_OK;
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask); /* mkstemp makes 0600; a committed file gets the usual mode */
    if (a->kind == SPO_ATOMIC_BYNAME) {
        close(fd);
        return SPO_OK;
    }
    if (!(a->fp = fdopen(fd, "wb"))) {
        close(fd);
        return spo_err(SPO_EIO, "%s: %s", a->path, strerror(errno));
    }
    return SPO_OK;
}

int spo_atomic_open(spo_atomic *a, const char *path, spo_atomic_kind kind, int force)
{
    memset(a, 0, sizeof *a);
    int stream;
    int rc = spo_atomic_check(path, kind, force, &stream);
    if (rc) return rc;
    a->kind = kind;
    if (!(a->path = strdup(path)) || !(a->shown = strdup(strcmp(path, "-") ? path : "<stdout>"))) {
        spo_atomic_abort(a);
        return spo_err(SPO_EIO, "out of memory");
    }
    rc = stream ? open_stream(a) : make_tmp(a);
    if (rc) spo_atomic_abort(a);
    return rc;
}

/* fsync the folder holding path, so the rename lasts (best effort). */
static void sync_dir(const char *path)
{
    const char *base;
    char *d = folder_of(path, &base);
    int fd = d ? open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(d);
}

static void finish(spo_atomic *a)
{
    free(a->tmp);
    free(a->path);
    free(a->shown);
    memset(a, 0, sizeof *a);
}

static int fail(spo_atomic *a, int e)
{
    int rc = spo_err(SPO_EIO, "%s: write failed: %s", a->shown, strerror(e ? e : EIO));
    spo_atomic_abort(a);
    return rc;
}

/* Close fp (flushed and, for a temporary, synced); 0 or the errno. */
static int close_fp(spo_atomic *a)
{
    FILE *fp = a->fp;
    a->fp = NULL;
    if (!fp) return 0;
    errno = 0;
    int e = fflush(fp) || ferror(fp) ? (errno ? errno : EIO) : 0;
    if (!e && a->tmp && fsync(fileno(fp))) e = errno;
    if (fp == stdout) return e;
    if (fclose(fp) && !e) e = errno ? errno : EIO;
    return e;
}

static int replace_dir(spo_atomic *a)
{
    mode_t mask = umask(0);
    umask(mask);
    chmod(a->tmp, 0777 & ~mask);
    size_t n = strlen(a->tmp) + 8;
    char *old = malloc(n);
    if (!old) return ENOMEM;
    snprintf(old, n, "%s.old", a->tmp);
    struct stat st;
    int replaced = stat(a->path, &st) == 0 && rename(a->path, old) == 0;
    int e = rename(a->tmp, a->path) ? errno : 0;
    if (e && replaced) rename(old, a->path);
    else if (replaced) remove_tmp(old, 1);
    free(old);
    return e;
}

int spo_atomic_commit(spo_atomic *a)
{
    int e = close_fp(a);
    if (e || a->stream) {
        if (e) return fail(a, e);
        finish(a);
        return SPO_OK;
    }
    if (a->kind == SPO_ATOMIC_BYNAME) {
        int fd = open(a->tmp, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fsync(fd)) e = errno;
        if (fd >= 0) close(fd);
        if (e) return fail(a, e);
    }
    if (a->kind == SPO_ATOMIC_DIR) e = replace_dir(a);
    else if (rename(a->tmp, a->path)) e = errno;
    if (e) return fail(a, e);
    unreg(a->tmp);
    sync_dir(a->path);
    finish(a);
    return SPO_OK;
}

void spo_atomic_abort(spo_atomic *a)
{
    if (a->fp && a->fp != stdout) fclose(a->fp);
    else if (a->fp) fflush(stdout);
    if (a->tmp) {
        remove_tmp(a->tmp, a->kind == SPO_ATOMIC_DIR);
        unreg(a->tmp);
    }
    finish(a);
}
