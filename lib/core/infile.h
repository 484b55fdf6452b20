/* infile.h — open an input file that must be a regular file.
 *
 * Opens read-only with O_NONBLOCK (so a FIFO or a device does not block the
 * open), fstat's, refuses anything but a regular file (SPO_EINVAL, "PATH: not
 * a regular file" or "PATH: is a directory"), then clears O_NONBLOCK. A
 * missing file is SPO_EINVAL ("PATH: No such file or directory"), other
 * failures SPO_EIO; errno is kept from the failing call, so a caller may still
 * treat ENOENT as "optional file absent". "-" is not handled here: callers
 * that accept standard input test for it first. */
#ifndef SPO_INFILE_H
#define SPO_INFILE_H

#include <stdio.h>

int spo_open_in(int *fd, const char *path);
/* The same as a FILE opened "rb". */
int spo_fopen_in(FILE **fp, const char *path);

#endif
