/* bench_prompts — time reading a tar of N one-prompt .txt members:
 *   build/rel/bench/bench_prompts N [N...]
 * prints "N members: S s" per N (the best of 3 runs of spo_prompts_parse on
 * the archive in memory). Reading is linear: 4x the members, about 4x the
 * time (issue 9, class 6: it was quadratic). */
#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "text/prompts.h"

static char *make_tar(long n, size_t *len)
{
    size_t cap = (size_t)n * 1024 + 8192;
    char *buf = malloc(cap);
    struct archive *a = archive_write_new();
    if (!buf || !a || archive_write_set_format_ustar(a) != ARCHIVE_OK ||
        archive_write_open_memory(a, buf, cap, len) != ARCHIVE_OK)
        return NULL;
    for (long i = 0; i < n; i++) {
        char name[64], text[64];
        snprintf(name, sizeof name, "p/%07ld.txt", i);
        int k = snprintf(text, sizeof text, "prompt number %ld\n", i);
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, name);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, k);
        if (archive_write_header(a, e) != ARCHIVE_OK || archive_write_data(a, text, (size_t)k) != k) return NULL;
        archive_entry_free(e);
    }
    if (archive_write_close(a) != ARCHIVE_OK) return NULL;
    archive_write_free(a);
    return buf;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_prompts N [N...]\n");
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        long n = atol(argv[i]);
        size_t len = 0;
        char *tar = n > 0 ? make_tar(n, &len) : NULL;
        if (!tar) {
            fprintf(stderr, "bench_prompts: cannot build a tar of %s members\n", argv[i]);
            return 1;
        }
        double best = 1e30;
        for (int r = 0; r < 3; r++) {
            spo_prompts p = {0};
            double t0 = now();
            int rc = spo_prompts_parse(&p, "bench.tar", tar, len, SPO_PF_ARCHIVE);
            double t = now() - t0;
            if (rc || p.n != n) {
                fprintf(stderr, "bench_prompts: %s\n", rc ? spo_errmsg() : "wrong count");
                return 1;
            }
            spo_prompts_free(&p);
            if (t < best) best = t;
        }
        printf("%ld members: %.3f s\n", n, best);
        free(tar);
    }
    return 0;
}
