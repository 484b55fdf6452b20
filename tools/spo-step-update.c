/* spo-step-update — the SPO preference update of a LoRA from pairs files:
 * seeded batches of pairs, one guided policy pass (LoRA on, with backward)
 * and one guided reference pass (LoRA off) per pair, the clamped-ratio
 * loss, gradient-norm clipping and AdamW (lib/spo/update.h). Under
 * `mpirun -np R` (an MPI build) every step's batch is split across the
 * ranks and the gradients are summed with MPI_Allreduce; rank 0 writes. */
#include <math.h>
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
#include "io/h5io.h"
#include "io/modelid.h"
#include "nn/lora.h"
#include "nn/lora_opt.h"
#include "nn/lora_train.h"
#include "spo/update.h"

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

static void *xcalloc(size_t n, size_t s)
{
    void *p = calloc(n ? n : 1, s);
    if (!p) spo_die(1, "out of memory");
    return p;
}

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
    if (strcmp(a.device, "cpu")) spo_die(2, "--device %s: spo-step-update runs on the cpu in this build", a.device);
    for (int i = 0; i < a.argc; i++)
        if (!strcmp(a.argv[i], "-")) spo_die(2, "pairs files must be files, not '-' (they are read by rows)");
    double t0 = spo_now();

    /* inputs: pairs, LoRA, model */
    int rc;
    spo_pairs_in *pin;
    if ((rc = spo_pairs_in_open(&pin, (const char *const *)a.argv, a.argc))) spo_die_lib(rc);
    const spo_pairs_meta *mt = spo_pairs_in_meta(pin);
    char want[256];
    if ((rc = spo_model_id(a.model, want, sizeof want))) spo_die_lib(rc);
    spo_h5 *lf;
    spo_lora lora;
    if ((rc = spo_h5_open(&lf, a.lora, "lora", NULL)) || (rc = spo_lora_read(&lora, lf))) spo_die_lib(rc);
    if (lora.model_id[0] && strcmp(lora.model_id, want))
        spo_die(2, "%s: a LoRA of model '%s', but %s is model '%s'", a.lora, lora.model_id, a.model, want);
    if (strcmp(want, mt->model_id))
        spo_die(2, "%s: pairs of model '%s', but %s is model '%s'", a.argv[0], mt->model_id, a.model, want);
    size_t numel = spo_lora_numel(&lora);
    float *theta = xcalloc(numel, sizeof *theta), *m = xcalloc(numel, sizeof *m), *v = xcalloc(numel, sizeof *v);
    int has_opt;
    double lg, le;
    if ((rc = spo_lora_opt_read(lf, &lora, m, v, &has_opt, &lg, &le))) spo_die_lib(rc);
    spo_h5_close(lf);
    if ((!isnan(lg) && lg != mt->guidance) || (!isnan(le) && le != mt->eta))
        spo_die(2, "%s: pairs sampled with guidance %g, eta %g, but %s was trained on guidance %g, eta %g", a.argv[0],
                mt->guidance, mt->eta, a.lora, lg, le);
    if (!(mt->eta > 0))
        spo_die(2, "%s: eta %g: a deterministic DDIM step has no log-probability to train on", a.argv[0], mt->eta);
    spo_lora_pack(&lora, theta);

    spo_dev *dev;
    if ((rc = spo_dev_open(&dev, SPO_DEV_CPU, threads_of(c.threads, nranks)))) spo_die_lib(rc);
    char path[4096];
    spo_update u = {.guidance = (float)mt->guidance, .eta = (float)mt->eta, .loss = c.loss, .micro = c.micro};
    snprintf(path, sizeof path, "%s/unet", a.model);
    if ((rc = spo_unet_load(&u.unet, path, dev))) spo_die_lib(rc);
    snprintf(path, sizeof path, "%s/scheduler", a.model);
    if ((rc = spo_ddim_load(&u.sched, path))) spo_die_lib(rc);
    if ((rc = spo_ddim_set_steps(&u.sched, (int)mt->num_steps))) spo_die(2, "%s: %s", a.argv[0], spo_errmsg());
    if ((rc = spo_lora_check(&lora, u.unet))) spo_die(2, "%s: %s", a.lora, spo_errmsg());
    if ((rc = spo_lora_train_new(&u.lt, u.unet, &lora))) spo_die(rc, "%s: %s", a.lora, spo_errmsg());
    FILE *mf = NULL;
    if (c.metrics && rank == 0 && !(mf = fopen(c.metrics, "a"))) spo_die(1, "%s: cannot open for appending", c.metrics);
    spo_vtime(&a, "load", spo_now() - t0);

    /* the steps */
    int64_t N = mt->n, nbp = (N + c.batch - 1) / c.batch, step0 = lora.step;
    long steps = c.steps ? c.steps : (long)nbp;
    int64_t *perm = xcalloc((size_t)N, sizeof *perm), pass = -1;
    spo_update_comm comm = {.rank = rank, .nranks = nranks};
#ifdef SPO_HAVE_MPI
    if (mpi) comm.reduce = mpi_sum;
#endif
    spo_progress *pg = spo_progress_start("steps", steps, a.quiet || rank != 0);
    for (long s = 0; s < steps; s++) {
        double ts = spo_now();
        if (s / nbp != pass) pass = s / nbp, spo_update_perm(perm, N, a.seed, step0, pass);
        int64_t b0 = (s % nbp) * c.batch, nb = N - b0 < c.batch ? N - b0 : c.batch;
        spo_step_result r;
        int64_t gstep = step0 + s + 1;
        if ((rc = spo_update_step(&u, pin, perm + b0, (int)nb, &comm, &c.opt, gstep, theta, m, v, &r)))
            spo_die(rc, "step %lld: %s", (long long)gstep, spo_errmsg());
        if (mf) {
            fprintf(mf,
                    "{\"step\": %lld, \"loss\": %.9g, \"ratio_win\": %.9g, \"ratio_lose\": %.9g, \"clamped\": %.6g, "
                    "\"grad_norm\": %.9g, \"lr\": %.9g, \"pairs\": %lld, \"seconds\": %.4f}\n",
                    (long long)gstep, r.loss, r.rw, r.rl, r.clamped, r.grad_norm, c.opt.lr, (long long)r.pairs,
                    spo_now() - ts);
            fflush(mf);
        }
        spo_progress_update(pg, s + 1);
    }
    spo_progress_end(pg);
    if (mf && fclose(mf)) spo_die(1, "%s: write failed", c.metrics);

    /* rank 0 writes the LoRA with its optimizer state */
    if (rank == 0) {
        spo_lora_unpack(&lora, theta);
        lora.step = step0 + steps;
        if (!lora.model_id[0]) snprintf(lora.model_id, sizeof lora.model_id, "%s", want);
        spo_h5 *out;
        if ((rc = spo_h5_create(&out, a.out, "lora", a.force))) spo_die_lib(rc);
        if ((rc = spo_lora_write(out, &lora)) || (rc = spo_lora_opt_write(out, &lora, m, v, mt->guidance, mt->eta))) {
            spo_h5_abort(out);
            spo_die_lib(rc);
        }
        if ((rc = spo_h5_commit(out))) spo_die_lib(rc);
    }
    spo_vtime(&a, "total", spo_now() - t0);
    spo_lora_train_free(u.lt);
    spo_unet_free(u.unet);
    spo_dev_close(dev);
    spo_pairs_in_close(pin);
    spo_lora_free(&lora);
    free(theta), free(m), free(v), free(perm);
#ifdef SPO_HAVE_MPI
    if (mpi) MPI_Finalize();
#endif
    return spo_finish();
}
