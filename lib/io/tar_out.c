/* tar_out.c — a tar stream of in-memory files through libarchive's writer
 * (see outfile.h): "pax restricted" format, i.e. plain ustar headers unless
 * a name or size needs a pax extension. */
#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/outfile.h"

struct spo_tar {
    struct archive *a;
    char *name;
    time_t now;
    int closed;
};

static int fail(spo_tar *t, const char *what)
{
    const char *m = archive_error_string(t->a);
    return spo_err(SPO_EIO, "%s: %s: %s", t->name, what, m ? m : "tar write failed");
}

int spo_tar_open(spo_tar **out, FILE *fp, const char *name)
{
    *out = NULL;
    spo_tar *t = calloc(1, sizeof *t);
    if (!t || !(t->name = strdup(name ? name : "tar")) || !(t->a = archive_write_new())) {
        if (t) free(t->name);
        free(t);
        return spo_err(SPO_EIO, "out of memory");
    }
    t->now = time(NULL);
    if (archive_write_set_format_pax_restricted(t->a) != ARCHIVE_OK ||
        archive_write_add_filter_none(t->a) != ARCHIVE_OK || archive_write_open_FILE(t->a, fp) != ARCHIVE_OK) {
        int rc = fail(t, "cannot start the archive");
        spo_tar_abort(t);
        return rc;
    }
    *out = t;
    return SPO_OK;
}

int spo_tar_add(spo_tar *t, const char *path, const void *data, size_t n)
{
    struct archive_entry *e = archive_entry_new();
    if (!e) return spo_err(SPO_EIO, "out of memory");
    archive_entry_set_pathname(e, path);
    archive_entry_set_size(e, (la_int64_t)n);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_mtime(e, t->now, 0);
    int rc = SPO_OK;
    if (archive_write_header(t->a, e) != ARCHIVE_OK) rc = fail(t, path);
    else if (n && archive_write_data(t->a, data, n) != (la_ssize_t)n) rc = fail(t, path);
    archive_entry_free(e);
    return rc;
}

int spo_tar_close(spo_tar *t)
{
    int rc = SPO_OK;
    if (archive_write_close(t->a) != ARCHIVE_OK) rc = fail(t, "cannot finish the archive");
    t->closed = 1;
    spo_tar_abort(t);
    return rc;
}

void spo_tar_abort(spo_tar *t)
{
    if (!t) return;
    if (!t->closed) archive_write_fail(t->a); /* no end-of-archive blocks for an aborted stream */
    archive_write_free(t->a);
    free(t->name);
    free(t);
}
