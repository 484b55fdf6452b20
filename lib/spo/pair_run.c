/* pair_run.c — spo-pair's job (pair_run.h): open the sources, then write
 * their union into one new pairs file. */
#include "spo/pair_run.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/clock.h"
#include "core/err.h"
#include "spo/pairs.h"

/* everything the job opens, so one place closes it */
typedef struct {
    spo_h5 **files;
    spo_pairs **pfiles;
    spo_pairsrc **srcs;
    int nfiles, npfiles, nsrcs;
    spo_h5 *out;
} run_t;

static void release(run_t *r)
{
    spo_h5_abort(r->out);
    for (int i = 0; i < r->nsrcs; i++) spo_pairsrc_free(r->srcs[i]);
    for (int i = 0; i < r->nfiles; i++) spo_h5_close(r->files[i]);
    for (int i = 0; i < r->npfiles; i++) spo_pairs_close(r->pfiles[i]);
    free(r->files), free(r->pfiles), free(r->srcs);
}

static int open_in(run_t *r, const char *path, const char *schema, const spo_h5 **f)
{
    SPO_TRY(spo_h5_open(&r->files[r->nfiles], path, schema, NULL));
    *f = r->files[r->nfiles++];
    return SPO_OK;
}

static int add_pairs_file(run_t *r, const char *path)
{
    SPO_TRY(spo_pairs_open(&r->pfiles[r->npfiles], path, NULL));
    SPO_TRY(spo_pairsrc_open(&r->srcs[r->nsrcs], r->pfiles[r->npfiles++]));
    r->nsrcs++;
    return SPO_OK;
}

/* the pairs chosen from a pool (or from chains): one source */
static int choose(run_t *r, const spo_pair_job *j)
{
    const spo_h5 *e;
    if (j->mode == SPO_PAIR_POOL) {
        const spo_h5 *pool, *sc;
        SPO_TRY(open_in(r, j->in[0], "pool", &pool));
        SPO_TRY(open_in(r, j->in[1], "scores", &sc));
        SPO_TRY(open_in(r, j->embeds, "embeds", &e));
        SPO_TRY(spo_pairsrc_from_pool(&r->srcs[r->nsrcs], pool, sc, e, j->threshold));
    } else {
        int nch = j->nin / 2;
        const spo_h5 **pools = (const spo_h5 **)calloc((size_t)nch * 2, sizeof *pools), **finals = pools + nch;
        if (!pools) return spo_err(SPO_EIO, "out of memory");
        int rc = SPO_OK;
        for (int i = 0; i < nch && !rc; i++)
            if (!(rc = open_in(r, j->in[2 * i], "pool", &pools[i])))
                rc = open_in(r, j->in[2 * i + 1], "scores", &finals[i]);
        if (!rc && !(rc = open_in(r, j->embeds, "embeds", &e)))
            rc = spo_pairsrc_from_chains(&r->srcs[r->nsrcs], pools, finals, nch, e, j->threshold);
        free(pools);
        SPO_TRY(rc);
    }
    r->nsrcs++;
    return SPO_OK;
}

static int run(run_t *r, const spo_pair_job *j)
{
    double t0 = spo_seconds();
    /* the existing file comes first: on a repeated key its pair is kept */
    struct stat st;
    int have_old = j->append && stat(j->out, &st) == 0;
    if (j->append && !have_old && errno != ENOENT) return spo_err(SPO_EIO, "%s: %s", j->out, strerror(errno));
    if (have_old) SPO_TRY(add_pairs_file(r, j->out));
    int64_t kept = 0;
    if (j->mode == SPO_PAIR_MERGE)
        for (int i = 0; i < j->nin; i++) SPO_TRY(add_pairs_file(r, j->in[i]));
    else {
        SPO_TRY(choose(r, j));
        kept = spo_pairsrc_count(r->srcs[r->nsrcs - 1]);
    }
    spo_hook_timing(&j->hooks, "load", spo_seconds() - t0);

    SPO_TRY(spo_h5_create(&r->out, j->out, "pairs", j->force || have_old));
    /* history continues that of the appended file, else of the first input */
    if (have_old || j->mode == SPO_PAIR_MERGE) {
        static char hist[65536];
        if (!spo_h5_get_attr_str(spo_pairs_h5(r->pfiles[0]), NULL, "history", hist, sizeof hist))
            SPO_TRY(spo_h5_set_history(r->out, hist));
    }
    int64_t n = 0;
    SPO_TRY(spo_pairs_write(r->out, r->srcs, r->nsrcs, &n));
    int rc = spo_h5_commit(r->out);
    r->out = NULL;
    SPO_TRY(rc);
    char msg[4200];
    if (j->mode == SPO_PAIR_MERGE)
        snprintf(msg, sizeof msg, "%s holds %lld pairs", j->out, (long long)n);
    else
        snprintf(msg, sizeof msg, "kept %lld pairs; %s holds %lld", (long long)kept, j->out, (long long)n);
    spo_hook_note(&j->hooks, msg);
    spo_hook_timing(&j->hooks, "work", spo_seconds() - t0);
    return SPO_OK;
}

int spo_pair_run(const spo_pair_job *j)
{
    if (j->nin < 1 || (j->mode != SPO_PAIR_MERGE && !j->embeds))
        return spo_err(SPO_EINVAL, "spo_pair_run: no input");
    size_t m = (size_t)j->nin + 4;
    run_t r = {.files = calloc(m, sizeof *r.files), .pfiles = calloc(m, sizeof *r.pfiles),
               .srcs = calloc(m, sizeof *r.srcs)};
    int rc = r.files && r.pfiles && r.srcs ? run(&r, j) : spo_err(SPO_EIO, "out of memory");
    release(&r);
    return rc;
}
