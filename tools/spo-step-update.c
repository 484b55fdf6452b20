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

static const spo_opt opts[] = {
    {"batch", 'b', "N", "pairs per optimizer step, over all ranks (default 40)"},
    {"steps", 0, "N", "optimizer steps (default: one pass over the pairs)"},
    {"lr", 0, "LR", "AdamW learning rate (default 6e-5)"},
    {"adam-beta1", 0, "B", "AdamW beta1 (default 0.9)"},
    {"adam-beta2", 0, "B", "AdamW beta2 (default 0.999)"},
    {"weight-decay", 0, "W", "AdamW decoupled weight decay (default 1e-4)"},
    {"adam-eps", 0, "E", "AdamW epsilon (default 1e-8)"},
    {"max-grad-norm", 0, "N", "clip the global gradient norm to N (default 1; 0: no clipping)"},
    {"beta", 0, "B", "SPO loss beta (default 10)"},
    {"ratio-clip", 0, "E", "clamp the ratios to [1-E, 1+E] (default 0.1)"},
    {"micro-batch", 0, "N", "pairs per UNet call (default 1)"},
    {"threads", '@', "N", "CPU threads (default: all cores, shared among the ranks of a host)"},
    {"metrics", 0, "FILE", "append one JSON line per optimizer step to FILE"},
    {0},
};

static const spo_tool tool = {
    .name = "spo-step-update",
    .synopsis = "-m MODEL --lora LORA [options] PAIRS... -o LORA_OUT",
    .summary = "Train a LoRA on SPO preference pairs: the step-aware DPO loss with clamped ratios, gradient\n"
               "clipping and AdamW; data parallel under mpirun.",
    .common = SPO_O_OUT | SPO_O_MODEL | SPO_O_LORA | SPO_O_SEED | SPO_O_DEVICE | SPO_O_FORCE,
    .opts = opts,
    .min_args = 1,
    .max_args = -1,
#ifdef SPO_HAVE_MPI
    .version_extra = "MPI: built with " MPI_NAME " (mpirun -np R splits each step)\n",
#else
    .version_extra = "MPI: not built (runs as one process)\n",
#endif
};

typedef struct {
    int batch, micro, threads;
    long steps;
    spo_adamw_cfg opt;
    spo_loss_cfg loss;
    const char *metrics;
} ctx_t;

static int on_opt(void *p, int idx, const char *arg)
{
    ctx_t *c = p;
    switch (idx) {
    case 0: c->batch = (int)spo_arg_long("--batch", arg, 1, 1 << 20); break;
    case 1: c->steps = spo_arg_long("--steps", arg, 0, 1L << 40); break;
    case 2: c->opt.lr = spo_arg_double("--lr", arg, 0, 1e30); break;
    case 3: c->opt.beta1 = spo_arg_double("--adam-beta1", arg, 0, 0.999999); break;
    case 4: c->opt.beta2 = spo_arg_double("--adam-beta2", arg, 0, 0.999999999); break;
    case 5: c->opt.weight_decay = spo_arg_double("--weight-decay", arg, 0, 1); break;
    case 6: c->opt.eps = spo_arg_double("--adam-eps", arg, 1e-30, 1); break;
    case 7: c->opt.max_grad_norm = spo_arg_double("--max-grad-norm", arg, 0, 1e30); break;
    case 8: c->loss.beta = spo_arg_double("--beta", arg, 1e-9, 1e6); break;
    case 9: c->loss.clip = spo_arg_double("--ratio-clip", arg, 1e-9, 0.999999); break;
    case 10: c->micro = (int)spo_arg_long("--micro-batch", arg, 1, 4096); break;
    case 11: c->threads = (int)spo_arg_long("--threads", arg, 1, 4096); break;
    case 12: c->metrics = arg; break;
    }
    return 0;
}

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
    ctx_t c = {.batch = 40,
               .micro = 1,
               .opt = {.lr = 6e-5, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 1e-4, .max_grad_norm = 1.0},
               .loss = {.beta = 10, .clip = 0.1}};
    spo_args a;
    spo_parse(&tool, argc, argv, &a, on_opt, &c);
    if (!a.model) spo_die(2, "-m MODEL is required");
    if (!a.lora) spo_die(2, "--lora LORA is required (spo-init makes a fresh one)");
    if (!a.out) spo_die(2, "-o LORA_OUT is required");
    for (int i = 0; i < a.argc; i++)
        if (!strcmp(a.argv[i], "-")) spo_die(2, "pairs files must be files, not '-' (they are read by rows)");
    spo_jobcb cb;
    spo_jobcb_init(&cb, &a, "steps", spo_now());
    spo_update_job j = {.model = a.model, .lora = a.lora, .out = a.out, .pairs = (const char *const *)a.argv,
                        .npairs = a.argc, .force = a.force, .batch = c.batch, .micro = c.micro,
                        .threads = threads_of(c.threads, nranks), .steps = c.steps, .seed = a.seed, .opt = c.opt,
                        .loss = c.loss, .metrics = c.metrics, .comm = {.rank = rank, .nranks = nranks}, .ctx = &cb,
                        .progress = rank == 0 ? spo_jobcb_progress : NULL, .time = spo_jobcb_time};
#ifdef SPO_HAVE_MPI
    if (mpi) j.comm.reduce = mpi_sum;
#endif
    j.device = a.devkind;
    int rc = spo_update_run(&j);
    spo_jobcb_end(&cb);
    if (rc) spo_die_lib(rc);
#ifdef SPO_HAVE_MPI
    if (mpi) MPI_Finalize();
#endif
    return spo_finish();
}
