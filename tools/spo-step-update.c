/* spo-step-update — the SPO preference update of a LoRA from pairs files:
 * seeded batches of pairs, one guided policy pass (LoRA on, with backward)
 * and one guided reference pass (LoRA off) per pair, the clamped-ratio
 * loss, gradient-norm clipping and AdamW (lib/spo/update.h). Under
 * `mpirun -np R` (an MPI build) every step's batch is split across the
 * ranks and the gradients are summed with MPI_Allreduce; rank 0 writes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef SPO_HAVE_MPI
#include <mpi.h>
#define MPI_STR2(x) #x
#define MPI_STR(x) MPI_STR2(x)
#if defined(OMPI_MAJOR_VERSION)
#define MPI_NAME "Open MPI " MPI_STR(OMPI_MAJOR_VERSION) "." MPI_STR(OMPI_MINOR_VERSION) "." MPI_STR(OMPI_RELEASE_VERSION)
#else
#define MPI_NAME "MPI " MPI_STR(MPI_VERSION)
#endif
#endif

#include "frame.h"
#include "spo/update_run.h"

#ifdef SPO_HAVE_MPI
#define MPI_VERSION_LINE "MPI: built with " MPI_NAME " (mpirun -np R splits each step)\n"
#else
#define MPI_VERSION_LINE "MPI: not built (runs as one process)\n"
#endif
#include "spo-step-update.opts.h"

#ifdef SPO_HAVE_MPI
static int mpi_sum(void *ctx, double *buf, size_t n)
{
    (void)ctx;
    for (size_t o = 0; o < n; o += 1 << 28) {
        int k = (int)(n - o < (1u << 28) ? n - o : (1u << 28));
        if (MPI_Allreduce(MPI_IN_PLACE, buf + o, k, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
            return spo_err(SPO_EIO, "MPI_Allreduce failed");
    }
    return SPO_OK;
}
#endif

/* threads for this process: all cores, shared among the ranks of a host */
static int threads_of(int asked, int nranks)
{
    if (asked || nranks < 2) return asked;
    const char *ls = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    long local = ls ? atol(ls) : nranks, cores = sysconf(_SC_NPROCESSORS_ONLN);
    long t = cores / (local > 0 ? local : 1);
    return t > 0 ? (int)t : 1;
}

int main(int argc, char **argv)
{
    int rank = 0, nranks = 1;
#ifdef SPO_HAVE_MPI
    /* only under a launcher: a plain run stays one process, without MPI's start-up */
    int mpi = getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
    if (mpi) {
        MPI_Init(&argc, &argv);
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    }
#endif
    tool_vals c;
    spo_args a;
    spo_parse(&tool, argc, argv, &a, &c, sizeof c, NULL);
    for (int i = 0; i < a.argc; i++)
        if (!strcmp(a.argv[i], "-")) spo_die(2, "pairs files must be files, not '-' (they are read by rows)");
    spo_jobcb cb;
    spo_update_job j = {.model = a.model, .lora = a.lora, .out = a.out, .pairs = (const char *const *)a.argv,
                        .npairs = a.argc, .force = a.force, .batch = c.batch, .micro = c.micro,
                        .threads = threads_of(c.threads, nranks), .steps = c.steps, .seed = a.seed, .opt = c.opt,
                        .loss = c.loss, .metrics = c.metrics, .comm = {.rank = rank, .nranks = nranks},
                        .hooks = spo_jobcb_hooks(&cb, &a, "steps")};
    if (rank) j.hooks.progress = NULL; /* one progress bar, rank 0's */
#ifdef SPO_HAVE_MPI
    if (mpi) j.comm.reduce = mpi_sum;
#endif
    j.device = a.devkind;
    int rc = spo_update_run(&j);
#ifdef SPO_HAVE_MPI
    if (mpi && !rc) MPI_Finalize();
#endif
    return spo_jobcb_done(&cb, rc);
}
