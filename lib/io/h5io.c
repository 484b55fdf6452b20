/* h5io.c — opening, creating and committing spo HDF5 files (see h5io.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "io/h5_impl.h"
#include "core/prov.h"

/* ---- library set-up ---------------------------------------------------- */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static hid_t f16;

static void init(void)
{
    H5open();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    f16 = H5Tcopy(H5T_IEEE_F32LE);
    H5Tset_fields(f16, 15, 10, 5, 0, 10);
    H5Tset_size(f16, 2);
    H5Tset_ebias(f16, 15);
    H5Tset_precision(f16, 16);
}

void spo_h5_init(void) { pthread_once(&init_once, init); }
hid_t spo_h5_f16_type(void)
{
    spo_h5_init();
    return f16;
}

/* ---- temporary files and signals --------------------------------------- */
#define MAXTMP 16
static char temps[MAXTMP][PATH_MAX];
static volatile sig_atomic_t tmp_used[MAXTMP];

void spo_h5_cleanup_temps(void)
{
    for (int i = 0; i < MAXTMP; i++)
        if (tmp_used[i]) {
            unlink(temps[i]);
            tmp_used[i] = 0;
        }
}

static void on_signal(int sig)
{
    spo_h5_cleanup_temps();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_handlers(void)
{
    static int done;
    if (done) return;
    done = 1;
    int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction sa, old;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
        sigaction(sigs[i], &sa, NULL);
    }
}

static int register_tmp(const char *p)
{
    for (int i = 0; i < MAXTMP; i++)
        if (!tmp_used[i]) {
            snprintf(temps[i], PATH_MAX, "%s", p);
            tmp_used[i] = 1;
            return 0;
        }
    return -1;
}

static void unregister_tmp(const char *p)
{
    for (int i = 0; i < MAXTMP; i++)
        if (tmp_used[i] && !strcmp(temps[i], p)) tmp_used[i] = 0;
}

int spo_tmp_register(const char *path)
{
    install_handlers();
    return register_tmp(path);
}

void spo_tmp_unregister(const char *path) { unregister_tmp(path); }

/* ---- helpers ------------------------------------------------------------ */
static spo_h5 *new_handle(const char *path, int writing)
{
    spo_h5 *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->id = H5I_INVALID_HID;
    f->writing = writing;
    f->path = strdup(path);
    f->shown = strdup(strcmp(path, "-") ? path : writing ? "<stdout>" : "<stdin>");
    if (!f->path || !f->shown) {
        free(f->path);
        free(f->shown);
        free(f);
        return NULL;
    }
    return f;
}

static void free_handle(spo_h5 *f)
{
    free(f->path);
    free(f->shown);
    free(f->tmp);
    free(f->history);
    free(f);
}

int spo_h5_set_history(spo_h5 *f, const char *prev)
{
    free(f->history);
    f->history = prev && *prev ? strdup(prev) : NULL;
    return prev && *prev && !f->history ? spo_err(SPO_EIO, "out of memory") : SPO_OK;
}

hid_t spo_h5_id(const spo_h5 *f) { return f->id; }
const char *spo_h5_path(const spo_h5 *f) { return f->shown; }

static const char hdf5_sig[8] = {'\211', 'H', 'D', 'F', '\r', '\n', '\032', '\n'};

static int read_stdin(unsigned char **buf, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap);
    if (!b) return spo_err(SPO_EIO, "out of memory");
    for (;;) {
        if (n == cap) {
            unsigned char *nb = cap > SIZE_MAX / 2 ? NULL : realloc(b, cap * 2);
            if (!nb) { free(b); return spo_err(SPO_EIO, "<stdin>: out of memory reading the file image"); }
            b = nb;
            cap *= 2;
        }
        size_t r = fread(b + n, 1, cap - n, stdin);
        n += r;
        if (r == 0) break;
    }
    if (ferror(stdin)) { free(b); return spo_err(SPO_EIO, "<stdin>: read error: %s", strerror(errno)); }
    *buf = b;
    *len = n;
    return SPO_OK;
}

/* HDF5 looks for its signature at 0, 512, 1024, ... */
static int has_signature(const unsigned char *b, size_t n)
{
    for (size_t off = 0; off + 8 <= n; off = off ? off * 2 : 512)
        if (!memcmp(b + off, hdf5_sig, 8)) return 1;
    return 0;
}

static int validate(spo_h5 *f, const char *schema, const spo_dimbind *pre)
{
    const spo_schema *s = spo_schema_builtin(schema);
    if (!s) return spo_err(SPO_EINVAL, "unknown schema '%s'", schema);
    f->schema = s;
    spo_fileinfo fi;
    int rc = spo_h5_listing(f, &fi, 1);
    if (rc == SPO_OK) rc = spo_schema_check(s, &fi, f->shown, pre);
    spo_fileinfo_free(&fi);
    return rc;
}

/* ---- open for reading ---------------------------------------------------- */
int spo_h5_open(spo_h5 **out, const char *path, const char *schema, const spo_dimbind *pre)
{
    spo_h5_init();
    *out = NULL;
    spo_h5 *f = new_handle(path, 0);
    if (!f) return spo_err(SPO_EIO, "out of memory");
    int rc = SPO_OK;
    if (!strcmp(path, "-")) {
        unsigned char *buf = NULL;
        size_t len = 0;
        if ((rc = read_stdin(&buf, &len))) goto fail;
        if (len == 0) {
            free(buf);
            rc = spo_err(SPO_EINVAL, "<stdin>: empty input (expected an HDF5 file image)");
            goto fail;
        }
        if (!has_signature(buf, len)) {
            free(buf);
            rc = spo_err(SPO_EINVAL, "<stdin>: not an HDF5 file");
            goto fail;
        }
        hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
        H5Pset_fapl_core(fapl, 1 << 20, 0);
        H5Pset_file_image(fapl, buf, len);
        free(buf);
        f->id = H5Fopen("spo-stdin-image", H5F_ACC_RDONLY, fapl);
        H5Pclose(fapl);
    } else {
        struct stat st;
        if (stat(path, &st) != 0) {
            rc = spo_err(errno == ENOENT || errno == ENOTDIR ? SPO_EINVAL : SPO_EIO, "%s: %s", path, strerror(errno));
            goto fail;
        }
        if (S_ISDIR(st.st_mode)) { rc = spo_err(SPO_EINVAL, "%s: is a directory", path); goto fail; }
        if (access(path, R_OK) != 0) { rc = spo_err(SPO_EIO, "%s: %s", path, strerror(errno)); goto fail; }
        if (st.st_size == 0) { rc = spo_err(SPO_EINVAL, "%s: empty file (not an HDF5 file)", path); goto fail; }
        if (H5Fis_hdf5(path) <= 0) { rc = spo_err(SPO_EINVAL, "%s: not an HDF5 file", path); goto fail; }
        f->id = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    }
    if (f->id < 0) {
        rc = spo_err(SPO_EINVAL, "%s: cannot open: corrupt or truncated HDF5 file", f->shown);
        goto fail;
    }
    if (schema && (rc = validate(f, schema, pre))) goto fail;
    *out = f;
    return SPO_OK;
fail:
    spo_h5_close(f);
    return rc;
}

void spo_h5_close(spo_h5 *f)
{
    if (!f) return;
    if (f->id >= 0) H5Fclose(f->id);
    if (f->writing && f->tmp) {
        unlink(f->tmp);
        unregister_tmp(f->tmp);
    }
    free_handle(f);
}

void spo_h5_abort(spo_h5 *f) { spo_h5_close(f); }

/* ---- create and commit ----------------------------------------------------- */
int spo_h5_create(spo_h5 **out, const char *path, const char *schema, int force)
{
    spo_h5_init();
    *out = NULL;
    const spo_schema *s = schema ? spo_schema_builtin(schema) : NULL;
    if (schema && !s) return spo_err(SPO_EINVAL, "unknown schema '%s'", schema);
    spo_h5 *f = new_handle(path, 1);
    if (!f) return spo_err(SPO_EIO, "out of memory");
    f->schema = s;
    int rc = SPO_OK;
    if (!strcmp(path, "-")) {
        f->to_stdout = 1;
        hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
        H5Pset_fapl_core(fapl, 1 << 20, 0);
        f->id = H5Fcreate("spo-stdout-image", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
        H5Pclose(fapl);
        if (f->id < 0) { rc = spo_err(SPO_EIO, "<stdout>: cannot create an in-memory HDF5 file"); goto fail; }
        *out = f;
        return SPO_OK;
    }
    if (!*path) { rc = spo_err(SPO_EINVAL, "empty output file name"); goto fail; }
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) { rc = spo_err(SPO_EINVAL, "%s: is a directory", path); goto fail; }
        if (!force) { rc = spo_err(SPO_EINVAL, "%s: exists (use -f to overwrite)", path); goto fail; }
    }
    char *dir = strdup(path);
    if (!dir) { rc = spo_err(SPO_EIO, "out of memory"); goto fail; }
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : dir;
    if (slash == dir) dir[1] = 0, base = path + 1;
    else if (slash) *slash = 0;
    const char *d = slash ? dir : ".";
    if (stat(d, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rc = spo_err(SPO_EINVAL, "%s: folder '%s' does not exist", path, d);
        free(dir);
        goto fail;
    }
    size_t tl = strlen(d) + strlen(base) + 32;
    f->tmp = malloc(tl);
    if (!f->tmp) { free(dir); rc = spo_err(SPO_EIO, "out of memory"); goto fail; }
    snprintf(f->tmp, tl, "%s/.%s.tmp.XXXXXX", d, base);
    free(dir);
    int fd = mkstemp(f->tmp);
    if (fd < 0) {
        rc = spo_err(SPO_EIO, "%s: cannot write: %s", path, strerror(errno));
        free(f->tmp);
        f->tmp = NULL;
        goto fail;
    }
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask); /* mkstemp makes 0600; a committed file gets the usual mode */
    close(fd);
    install_handlers();
    register_tmp(f->tmp);
    f->id = H5Fcreate(f->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f->id < 0) { rc = spo_err(SPO_EIO, "%s: cannot create HDF5 file", path); goto fail; }
    *out = f;
    return SPO_OK;
fail:
    spo_h5_close(f);
    return rc;
}

static int write_stdout(spo_h5 *f)
{
    if (H5Fflush(f->id, H5F_SCOPE_GLOBAL) < 0) return spo_err(SPO_EIO, "<stdout>: cannot flush HDF5 image");
    ssize_t n = H5Fget_file_image(f->id, NULL, 0);
    if (n <= 0) return spo_err(SPO_EIO, "<stdout>: cannot get HDF5 file image");
    void *buf = malloc((size_t)n);
    if (!buf) return spo_err(SPO_EIO, "out of memory");
    int rc = SPO_OK;
    if (H5Fget_file_image(f->id, buf, (size_t)n) != n) rc = spo_err(SPO_EIO, "<stdout>: cannot get HDF5 file image");
    else if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n || fflush(stdout) != 0)
        rc = spo_err(SPO_EIO, "<stdout>: write error: %s", strerror(errno));
    free(buf);
    return rc;
}

int spo_h5_commit(spo_h5 *f)
{
    int rc = SPO_OK;
    char line[8192];
    spo_prov_history_line(line, sizeof line);
    size_t hn = strlen(line) + (f->history ? strlen(f->history) + 2 : 1);
    char *hist = malloc(hn);
    if (!hist) {
        spo_h5_close(f);
        return spo_err(SPO_EIO, "out of memory");
    }
    snprintf(hist, hn, "%s%s%s", f->history ? f->history : "", f->history ? "\n" : "", line);
    if (f->schema) {
        char tag[64];
        snprintf(tag, sizeof tag, "%s/%d", spo_schema_name(f->schema), spo_schema_version(f->schema));
        if ((rc = spo_h5_attr_str(f, NULL, "spo_schema", tag))) goto out;
    }
    if ((rc = spo_h5_attr_str(f, NULL, "history", hist))) goto out;
    if (f->schema) {
        spo_fileinfo fi;
        rc = spo_h5_listing(f, &fi, 1);
        if (rc == SPO_OK) rc = spo_schema_check(f->schema, &fi, f->shown, NULL);
        spo_fileinfo_free(&fi);
        if (rc) {
            spo_err_prefix(rc, "refusing to write invalid file");
            goto out;
        }
    }
    if (f->to_stdout) {
        rc = write_stdout(f);
        goto out;
    }
    if (H5Fclose(f->id) < 0) {
        f->id = H5I_INVALID_HID;
        rc = spo_err(SPO_EIO, "%s: error closing HDF5 file", f->shown);
        goto out;
    }
    f->id = H5I_INVALID_HID;
    int fd = open(f->tmp, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    if (rename(f->tmp, f->path) != 0) {
        rc = spo_err(SPO_EIO, "%s: cannot rename into place: %s", f->shown, strerror(errno));
        goto out;
    }
    unregister_tmp(f->tmp);
    free(f->tmp);
    f->tmp = NULL;
out:
    free(hist);
    spo_h5_close(f);
    return rc;
}
