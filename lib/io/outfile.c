/* outfile.c — non-HDF5 output files through the atomic writer (see outfile.h). */
#include "io/outfile.h"

int spo_outfile_check(const char *path, int force) { return spo_atomic_check(path, SPO_ATOMIC_FILE, force, NULL); }

int spo_outfile_open(spo_outfile *o, const char *path, int force)
{
    return spo_atomic_open(o, path, SPO_ATOMIC_FILE, force);
}

int spo_outfile_commit(spo_outfile *o) { return spo_atomic_commit(o); }

void spo_outfile_abort(spo_outfile *o) { spo_atomic_abort(o); }
