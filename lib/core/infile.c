/* infile.c — regular input files only (see infile.h). */
#include "core/infile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"

int spo_open_in(int *out, const char *path)
{
    *out = -1;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        spo_err(e == ENOENT || e == ENOTDIR ? SPO_EINVAL : SPO_EIO, "%s: %s", path, strerror(e));
        errno = e;
        return e == ENOENT || e == ENOTDIR ? SPO_EINVAL : SPO_EIO;
    }
    struct stat st;
    int rc = SPO_OK;
    if (fstat(fd, &st) != 0) rc = spo_err(SPO_EIO, "%s: %s", path, strerror(errno));
    else if (S_ISDIR(st.st_mode)) rc = spo_err(SPO_EINVAL, "%s: is a directory", path), errno = EISDIR;
    else if (!S_ISREG(st.st_mode)) rc = spo_err(SPO_EINVAL, "%s: not a regular file", path), errno = EINVAL;
    else {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) rc = spo_err(SPO_EIO, "%s: %s", path, strerror(errno));
    }
    if (rc) {
        int e = errno;
        close(fd);
        errno = e;
        return rc;
    }
    *out = fd;
    return SPO_OK;
}

int spo_fopen_in(FILE **fp, const char *path)
{
    *fp = NULL;
    int fd, rc = spo_open_in(&fd, path);
    if (rc) return rc;
    if (!(*fp = fdopen(fd, "rb"))) {
        int e = errno;
        close(fd);
        return spo_err(SPO_EIO, "%s: %s", path, strerror(e));
    }
    return SPO_OK;
}
