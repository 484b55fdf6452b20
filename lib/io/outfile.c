/* outfile.c — atomic non-HDF5 output files (see outfile.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/h5io.h"
#include "io/outfile.h"

/* The folder part of path ("." when none) into a malloc'd string. */
static char *folder_of(const char *path, const char **base)
{
    const char *s = strrchr(path, '/');
    *base = s ? s + 1 : path;
    if (!s) return strdup(".");
    if (s == path) return strdup("/");
    char *d = malloc((size_t)(s - path) + 1);
    if (d) memcpy(d, path, (size_t)(s - path)), d[s - path] = 0;
    return d;
}

int spo_outfile_check(const char *path, int force)
{
    if (!strcmp(path, "-")) return SPO_OK;
    if (!*path) return spo_err(SPO_EINVAL, "empty output file name");
    const char *base;
    char *d = folder_of(path, &base);
    if (!d) return spo_err(SPO_EIO, "out of memory");
    struct stat st;
    int rc = SPO_OK;
    if (!*base) rc = spo_err(SPO_EINVAL, "%s: is a folder name, not a file name", path);
    else if (stat(d, &st) != 0 || !S_ISDIR(st.st_mode))
        rc = spo_err(SPO_EINVAL, "%s: folder '%s' does not exist", path, d);
    else if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) rc = spo_err(SPO_EINVAL, "%s: is a directory", path);
        else if (!force) rc = spo_err(SPO_EINVAL, "%s: exists (use -f to overwrite)", path);
    }
    free(d);
    return rc;
}

int spo_outfile_open(spo_outfile *o, const char *path, int force)
{
    memset(o, 0, sizeof *o);
    int rc = spo_outfile_check(path, force);
    if (rc) return rc;
    if (!(o->path = strdup(path))) return spo_err(SPO_EIO, "out of memory");
    if (!strcmp(path, "-")) {
        o->fp = stdout;
        return SPO_OK;
    }
    const char *base;
    char *d = folder_of(path, &base);
    size_t n = (d ? strlen(d) : 0) + strlen(base) + 32;
    o->tmp = d ? malloc(n) : NULL;
    if (!o->tmp) {
        free(d);
        spo_outfile_abort(o);
        return spo_err(SPO_EIO, "out of memory");
    }
    snprintf(o->tmp, n, "%s/.%s.tmp.XXXXXX", d, base);
    free(d);
    int fd = mkstemp(o->tmp);
    if (fd < 0) {
        rc = spo_err(SPO_EIO, "%s: cannot write: %s", path, strerror(errno));
        free(o->tmp), o->tmp = NULL;
        spo_outfile_abort(o);
        return rc;
    }
    spo_tmp_register(o->tmp);
    fchmod(fd, 0644);
    if (!(o->fp = fdopen(fd, "wb"))) {
        rc = spo_err(SPO_EIO, "%s: %s", path, strerror(errno));
        close(fd);
        spo_outfile_abort(o);
        return rc;
    }
    return SPO_OK;
}

int spo_outfile_commit(spo_outfile *o)
{
    int rc = SPO_OK;
    if (!o->tmp) { /* stdout */
        if (fflush(o->fp)) rc = spo_err(SPO_EIO, "<stdout>: write failed: %s", strerror(errno));
        free(o->path);
        memset(o, 0, sizeof *o);
        return rc;
    }
    FILE *fp = o->fp;
    o->fp = NULL;
    int bad = fflush(fp) != 0 || ferror(fp) || fsync(fileno(fp)) != 0;
    if (fclose(fp) != 0) bad = 1;
    if (bad || rename(o->tmp, o->path) != 0) {
        rc = spo_err(SPO_EIO, "%s: write failed: %s", o->path, strerror(errno ? errno : EIO));
        spo_outfile_abort(o);
        return rc;
    }
    spo_tmp_unregister(o->tmp);
    free(o->tmp);
    free(o->path);
    memset(o, 0, sizeof *o);
    return SPO_OK;
}

void spo_outfile_abort(spo_outfile *o)
{
    if (o->fp && o->tmp) fclose(o->fp);
    if (o->tmp) {
        unlink(o->tmp);
        spo_tmp_unregister(o->tmp);
    }
    free(o->tmp);
    free(o->path);
    memset(o, 0, sizeof *o);
}
