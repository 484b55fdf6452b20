/* outfile.c — non-HDF5 output files through the atomic writer (see outfile.h). */
#include "io/outfile.h"

#include <string.h>
#include <sys/stat.h>

int spo_outfile_check(const char *path, int force) { return spo_atomic_check(path, SPO_ATOMIC_FILE, force, NULL); }

int spo_outdir_parent_check(const char *dir)
{
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", dir);
    size_t n = strlen(parent);
    while (n > 1 && parent[n - 1] == '/') parent[--n] = 0;
    char *sl = strrchr(parent, '/');
    if (!sl) snprintf(parent, sizeof parent, ".");
    else if (sl == parent) parent[1] = 0;
    else *sl = 0;
    struct stat st;
    if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode))
        return spo_err(SPO_EINVAL, "%s: its parent folder '%s' does not exist", dir, parent);
    return SPO_OK;
}

int spo_outfile_open(spo_outfile *o, const char *path, int force)
{
    return spo_atomic_open(o, path, SPO_ATOMIC_FILE, force);
}

int spo_outfile_commit(spo_outfile *o) { return spo_atomic_commit(o); }

void spo_outfile_abort(spo_outfile *o) { spo_atomic_abort(o); }
