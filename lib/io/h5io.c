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
#include "core/infile.h"
#include "io/h5_impl.h"
#include "core/prov.h"

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
    free(f->history);
    free(f);
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
        hid_t fapl = spo_h5_read_fapl();
        H5Pset_fapl_core(fapl, 1 << 20, 0);
        H5Pset_file_image(fapl, buf, len);
        free(buf);
        f->id = H5Fopen("spo-stdin-image", H5F_ACC_RDONLY, fapl);
        H5Pclose(fapl);
    } else {
        int fd;
        if ((rc = spo_open_in(&fd, path))) goto fail; /* a FIFO or device is refused, not waited on */
        struct stat st;
        int empty = fstat(fd, &st) == 0 && st.st_size == 0;
        close(fd);
        if (empty) { rc = spo_err(SPO_EINVAL, "%s: empty file (not an HDF5 file)", path); goto fail; }
        if (H5Fis_hdf5(path) <= 0) { rc = spo_err(SPO_EINVAL, "%s: not an HDF5 file", path); goto fail; }
        hid_t fapl = spo_h5_read_fapl();
        f->id = H5Fopen(path, H5F_ACC_RDONLY, fapl);
        H5Pclose(fapl);
    }
    if (f->id < 0) {
        rc = spo_err(SPO_EINVAL, "%s: cannot open: corrupt or truncated HDF5 file", f->shown);
        goto fail;
    }
    if ((rc = spo_h5_check_self_contained(f))) goto fail;
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
    if (f->writing) spo_atomic_abort(&f->out);
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
    int rc = spo_atomic_open(&f->out, path, SPO_ATOMIC_BYNAME, force);
    if (rc) goto fail;
    if (f->out.stream) { /* "-", a device or a FIFO: built in memory, written at commit */
        hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
        H5Pset_fapl_core(fapl, 1 << 20, 0);
        f->id = H5Fcreate("spo-stream-image", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
        H5Pclose(fapl);
    } else
        f->id = H5Fcreate(f->out.tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f->id < 0) { rc = spo_err(SPO_EIO, "%s: cannot create HDF5 file", f->shown); goto fail; }
    *out = f;
    return SPO_OK;
fail:
    spo_h5_close(f);
    return rc;
}

static int write_stream(spo_h5 *f)
{
    if (H5Fflush(f->id, H5F_SCOPE_GLOBAL) < 0) return spo_err(SPO_EIO, "%s: cannot flush HDF5 image", f->shown);
    ssize_t n = H5Fget_file_image(f->id, NULL, 0);
    if (n <= 0) return spo_err(SPO_EIO, "%s: cannot get HDF5 file image", f->shown);
    void *buf = malloc((size_t)n);
    if (!buf) return spo_err(SPO_EIO, "out of memory");
    int rc = SPO_OK;
    if (H5Fget_file_image(f->id, buf, (size_t)n) != n) rc = spo_err(SPO_EIO, "%s: cannot get HDF5 file image", f->shown);
    else if (fwrite(buf, 1, (size_t)n, f->out.fp) != (size_t)n || fflush(f->out.fp) != 0)
        rc = spo_err(SPO_EIO, "%s: write error: %s", f->shown, strerror(errno));
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
    if (f->out.stream) rc = write_stream(f);
    else {
        herr_t e = H5Fclose(f->id);
        f->id = H5I_INVALID_HID;
        if (e < 0) rc = spo_err(SPO_EIO, "%s: cannot write (disk full?): error closing HDF5 file", f->shown);
    }
    if (!rc) rc = spo_atomic_commit(&f->out);
out:
    free(hist);
    spo_h5_close(f);
    return rc;
}
