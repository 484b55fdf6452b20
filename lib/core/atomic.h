/* atomic.h — the one atomic writer: every output file or folder of spo.
 *
 * A new file (or folder) is built under a temporary name ".NAME.tmp.XXXXXX"
 * in its target folder and renamed over the target only by
 * spo_atomic_commit; spo_atomic_abort, a failed commit, or SIGINT/SIGTERM/
 * SIGHUP (handlers installed at the first open) remove the temporary, so a
 * target is either the old one or the complete new one, never a part.
 *
 * Streams: "-" is standard output, and a target that is a character device
 * (/dev/null, a terminal) or a FIFO is opened and written directly, in
 * order, exactly as "-" is; it is never replaced or removed, and -f is not
 * needed for it. A folder output cannot be a stream (SPO_EINVAL). Any other
 * existing non-regular target (socket, block device) is refused. */
#ifndef SPO_ATOMIC_H
#define SPO_ATOMIC_H

#include <stdio.h>

#include "core/err.h"

typedef enum {
    SPO_ATOMIC_FILE,   /* a temporary file open as fp */
    SPO_ATOMIC_BYNAME, /* a temporary file created and closed: the caller opens tmp by name (HDF5) */
    SPO_ATOMIC_DIR     /* a temporary folder at tmp */
} spo_atomic_kind;

typedef struct {
    FILE *fp;    /* write here (FILE kind, and every stream); NULL otherwise */
    char *path;  /* the target as given */
    char *tmp;   /* the temporary; NULL for a stream */
    char *shown; /* the target for messages ("<stdout>" for "-") */
    int kind, stream;
} spo_atomic;

/* 1 when path is "-", a character device or a FIFO: an output written as a
 * stream. */
int spo_atomic_is_stream(const char *path);
/* What open would refuse, without creating anything: an empty name, a
 * missing folder, a folder where a file is wanted (or a file where a folder
 * is), an existing target without force. *stream (may be NULL) tells whether
 * the target is "-", a character device or a FIFO. */
int spo_atomic_check(const char *path, spo_atomic_kind kind, int force, int *stream);
/* spo_atomic_check, then create the temporary (or open the stream). */
int spo_atomic_open(spo_atomic *a, const char *path, spo_atomic_kind kind, int force);
/* Flush, fsync, close and rename into place (a folder replaces an existing
 * folder as a whole); a stream is flushed and closed. On failure (SPO_EIO,
 * the message names the target) the temporary is removed. */
int spo_atomic_commit(spo_atomic *a);
/* Close and remove the temporary. Safe on a zeroed or finished spo_atomic. */
void spo_atomic_abort(spo_atomic *a);

/* Remove every live temporary (async-signal-safe; called by the handlers). */
void spo_atomic_cleanup(void);

#endif
