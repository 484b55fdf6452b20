/* outfile.h — non-HDF5 output files (PNG, contact sheets, tar files): the
 * atomic writer of core/atomic.h for one file open as a FILE. The file is
 * written under a temporary name ".NAME.tmp.XXXXXX" in its target folder
 * and renamed into place only by spo_outfile_commit; spo_outfile_abort, a
 * failed commit, or SIGINT/SIGTERM/SIGHUP remove it. "-" (standard output),
 * a character device or a FIFO is written directly (a stream). tar archives
 * of in-memory members are written through libarchive (ustar, pax
 * extensions only when needed). */
#ifndef SPO_OUTFILE_H
#define SPO_OUTFILE_H

#include <stddef.h>
#include <stdio.h>

#include "core/atomic.h"
#include "core/err.h"

typedef spo_atomic spo_outfile; /* write to .fp */

/* SPO_EINVAL when the folder of path does not exist, path is a folder, or it
 * exists and !force. Does not create anything. */
int spo_outfile_check(const char *path, int force);
/* A folder output dir that does not exist yet can be made: its parent
 * folder exists ("DIR: its parent folder 'P' does not exist"). */
int spo_outdir_parent_check(const char *dir);
/* spo_outfile_check, then create the temporary (or open the stream). */
int spo_outfile_open(spo_outfile *o, const char *path, int force);
/* Flush, sync, close and rename into place (a stream: flush only). On
 * failure the temporary is removed. */
int spo_outfile_commit(spo_outfile *o);
/* Close and remove the temporary. Safe on a zeroed or closed spo_outfile. */
void spo_outfile_abort(spo_outfile *o);

/* ---- tar archives (lib/io/tar_out.c) ---- */
typedef struct spo_tar spo_tar;
/* A tar stream on fp (left open); name for messages. */
int spo_tar_open(spo_tar **t, FILE *fp, const char *name);
/* Add a regular file (mode 0644, the current time) with these bytes. */
int spo_tar_add(spo_tar *t, const char *path, const void *data, size_t n);
/* Write the end of the archive and free t (also on failure). */
int spo_tar_close(spo_tar *t);
/* Free t without finishing the archive. Safe on NULL. */
void spo_tar_abort(spo_tar *t);

#endif
