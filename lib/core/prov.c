/* prov.c — provenance strings (see prov.h). */
#include "core/prov.h"

#include <archive.h>
#include <hdf5.h>
#include <png.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#ifndef SPO_VERSION
#define SPO_VERSION "0.0.0"
#endif

static char cmdline[4096];

static int needs_quote(const char *s)
{
    if (!*s) return 1;
    for (; *s; s++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%", *s)) return 1;
    return 0;
}

void spo_prov_set_cmdline(int argc, char **argv)
{
    size_t n = 0;
    cmdline[0] = 0;
    for (int i = 0; i < argc && n + 4 < sizeof cmdline; i++) {
        const char *s = argv[i];
        if (i) cmdline[n++] = ' ';
        int q = needs_quote(s);
        if (q) cmdline[n++] = '\'';
        for (; *s && n + 6 < sizeof cmdline; s++) {
            if (*s == '\'') { memcpy(cmdline + n, "'\\''", 4); n += 4; }
            else cmdline[n++] = *s;
        }
        if (q) cmdline[n++] = '\'';
        cmdline[n] = 0;
    }
}

const char *spo_prov_cmdline(void) { return cmdline; }

void spo_prov_history_line(char *buf, size_t n)
{
    char ts[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(buf, n, "%s spo %s: %s", ts, SPO_VERSION, cmdline[0] ? cmdline : "(library)");
}

#ifdef SPO_HAVE_CUDA
int spo_cuda_build_info(char *buf, size_t n); /* kernels/ */
#endif

extern const char *openblas_get_config(void);

void spo_build_info(char *buf, size_t n)
{
    unsigned maj, min, rel;
    H5get_libversion(&maj, &min, &rel);
    char cuda[256] = "CUDA: not built (CPU only)";
#ifdef SPO_HAVE_CUDA
    spo_cuda_build_info(cuda, sizeof cuda);
#endif
    snprintf(buf, n,
             "spo %s\n%s\nHDF5: %u.%u.%u\nlibarchive: %s\nlibpng: %s\nBLAS: %s\n",
             SPO_VERSION, cuda, maj, min, rel, archive_version_details(), png_get_libpng_ver(NULL),
             openblas_get_config());
}
