/* spo-pair — keep the best/worst pairs of a scored pool; trajectory pairs of
 * independent chains; merge pairs files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "frame.h"
#include "io/h5io.h"
#include "spo/pairs.h"

#include "spo-pair.opts.h"

#define MAXIN 1024
static spo_h5 *files[MAXIN + 4];
static spo_pairs *pfiles[MAXIN + 2];
static spo_pairsrc *srcs[MAXIN + 2];
static int nfiles, npfiles, nsrcs;
static spo_h5 *out;

static _Noreturn void fail(int rc)
{
    spo_h5_abort(out);
    for (int i = 0; i < nsrcs; i++) spo_pairsrc_free(srcs[i]);
    for (int i = 0; i < nfiles; i++) spo_h5_close(files[i]);
    for (int i = 0; i < npfiles; i++) spo_pairs_close(pfiles[i]);
    spo_die_lib(rc);
}

static spo_h5 *open_in(const char *path, const char *schema)
{
    spo_h5 *f;
    int rc = spo_h5_open(&f, path, schema, NULL);
    if (rc) fail(rc);
    return files[nfiles++] = f;
}

static void add_pairs_file(const char *path)
{
    spo_pairsrc *s;
    int rc = spo_pairs_open(&pfiles[npfiles], path, NULL);
    if (rc) fail(rc);
    if ((rc = spo_pairsrc_open(&s, pfiles[npfiles++]))) fail(rc);
    srcs[nsrcs++] = s;
}

int main(int argc, char **argv)
{
    tool_vals c;
    spo_args a;
    spo_parse(&tool, argc, argv, &a, &c, sizeof c, NULL);
    if (!a.out == !a.append) spo_die(2, "give one of -o FILE or -a FILE (try 'spo-pair --help')");
    if (a.append && !strcmp(a.append, "-")) spo_die(2, "-a needs a file, not '-' (use -o - to write to stdout)");
    if (c.merge && c.trajectory) spo_die(2, "give --merge or --trajectory, not both");
    if (c.trajectory && (a.argc < 4 || a.argc % 2))
        spo_die(2, "--trajectory expects POOL FINAL for each of 2 or more chains (try 'spo-pair --help')");
    if (!c.merge && !c.trajectory && a.argc != 2) spo_die(2, "expected POOL and SCORES (try 'spo-pair --help')");
    if (!c.merge && !a.embeds) spo_die(2, "missing -e/--embeds FILE (try 'spo-pair --help')");
    if (c.merge && a.embeds) spo_die(2, "--merge takes no -e/--embeds");
    if (a.argc > MAXIN) spo_die(2, "too many input files (at most %d)", MAXIN);
    int stdin_used = a.embeds && !strcmp(a.embeds, "-");
    for (int i = 0; i < a.argc; i++)
        if (!strcmp(a.argv[i], "-") && stdin_used++) spo_die(2, "'-' (stdin) given more than once");
    double t0 = spo_now();

    /* the existing file comes first: on a repeated key its pair is kept */
    const char *target = a.append ? a.append : a.out;
    struct stat st;
    int have_old = a.append && stat(a.append, &st) == 0;
    if (a.append && !have_old && errno != ENOENT) spo_die(1, "%s: %s", a.append, strerror(errno));
    if (have_old) add_pairs_file(a.append);
    int64_t kept = 0;
    if (c.merge)
        for (int i = 0; i < a.argc; i++) add_pairs_file(a.argv[i]);
    else if (c.trajectory) {
        const spo_h5 *pools[MAXIN / 2], *finals[MAXIN / 2];
        int nch = a.argc / 2;
        for (int i = 0; i < nch; i++)
            pools[i] = open_in(a.argv[2 * i], "pool"), finals[i] = open_in(a.argv[2 * i + 1], "scores");
        spo_h5 *e = open_in(a.embeds, "embeds");
        int rc = spo_pairsrc_from_chains(&srcs[nsrcs], pools, finals, nch, e, c.threshold);
        if (rc) fail(rc);
        kept = spo_pairsrc_count(srcs[nsrcs++]);
    } else {
        spo_h5 *pool = open_in(a.argv[0], "pool"), *sc = open_in(a.argv[1], "scores");
        spo_h5 *e = open_in(a.embeds, "embeds");
        int rc = spo_pairsrc_from_pool(&srcs[nsrcs], pool, sc, e, c.threshold);
        if (rc) fail(rc);
        kept = spo_pairsrc_count(srcs[nsrcs++]);
    }
    spo_vtime(&a, "load", spo_now() - t0);

    int rc = spo_h5_create(&out, target, "pairs", a.force || have_old);
    if (rc) fail(rc);
    /* history continues that of the appended file, else of the first input */
    const spo_h5 *hsrc = have_old || c.merge ? spo_pairs_h5(pfiles[0]) : NULL;
    static char hist[65536];
    if (hsrc && !spo_h5_get_attr_str(hsrc, NULL, "history", hist, sizeof hist) && (rc = spo_h5_set_history(out, hist)))
        fail(rc);
    int64_t n = 0;
    if ((rc = spo_pairs_write(out, srcs, nsrcs, &n))) fail(rc);
    rc = spo_h5_commit(out);
    out = NULL;
    if (rc) fail(rc);
    if (a.verbose && !c.merge) fprintf(stderr, "spo-pair: kept %lld pairs; %s holds %lld\n", (long long)kept, target,
                                       (long long)n);
    else if (a.verbose) fprintf(stderr, "spo-pair: %s holds %lld pairs\n", target, (long long)n);
    spo_vtime(&a, "work", spo_now() - t0);
    for (int i = 0; i < nsrcs; i++) spo_pairsrc_free(srcs[i]);
    for (int i = 0; i < nfiles; i++) spo_h5_close(files[i]);
    for (int i = 0; i < npfiles; i++) spo_pairs_close(pfiles[i]);
    return spo_finish();
}
