/* unet_bench.c — time the C UNet forward and forward+backward (to the
 * sample only, like tests/bench/torch_unet_bench.py) on the CPU device (or
 * the GPU with -d cuda).
 *
 *   tiny  tests/fixtures/tiny-sd/unet (real weights), batch 2, 16x16, ctx 77
 *   mid   tests/bench/mid_unet_config.json, random weights, batch 1, 32x32, ctx 77
 *   sd15  tests/bench/sd15_unet_config.json, random weights, batch 1, 64x64, ctx 77
 *         (forward only unless --sd15-bwd)
 *
 * One warm-up run, then the median of --runs runs; one JSON line per
 * (config, pass):  {"impl":"spo","config":"tiny","pass":"fwd","ms":1.23,...}
 *
 * Usage: unet_bench [-t THREADS] [-r RUNS] [-d cpu|cuda] [-c tiny,mid,sd15,MODEL_DIR/] [--sd15-bwd]
 * Run from the repository root (or set SPO_ROOT). Built by `make bench`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/params.h"
#include "nn/unet.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void die(const char *what)
{
    fprintf(stderr, "unet_bench: %s: %s\n", what, spo_errmsg());
    exit(1);
}

/* random weights: N(0, 0.02^2), norm scales 1 (keeps activations O(1)) */
static void randomize(spo_unet *u)
{
    spo_params *ps = spo_unet_params(u);
    if (spo_params_randn(ps, 1, 0.02f)) die("randn");
    for (int i = 0; i < ps->n; i++) {
        const spo_param *p = &ps->p[i];
        size_t l = strlen(p->name);
        if (p->ndim == 1 && strstr(p->name, "norm") && l > 7 && !strcmp(p->name + l - 7, ".weight")) {
            float *one = malloc(p->numel * sizeof *one);
            for (size_t k = 0; k < p->numel; k++) one[k] = 1;
            if (spo_params_set(ps, p->name, one, p->numel)) die("set");
            free(one);
        }
    }
}

typedef struct {
    spo_unet *u;
    spo_dev *d;
    float *x, *t, *c, *out, *dout, *dx;
    int n, hw, L;
} job;

static void run(job *j, int bwd)
{
    if (spo_unet_forward(j->u, j->out, j->x, j->t, j->c, j->n, j->hw, j->hw, j->L, bwd)) die("forward");
    if (bwd && spo_unet_backward(j->u, j->dx, NULL, j->dout)) die("backward");
    spo_dev_sync(j->d);
}

static void bench(spo_dev *d, const char *root, const char *name, int runs, int threads, int do_bwd)
{
    char path[2048];
    spo_unet *u;
    int n, hw, L = 77;
    if (strchr(name, '/')) { /* a model directory's unet/, e.g. from spo-mkmodel --preset sd15 */
        snprintf(path, sizeof path, "%s/unet", name);
        if (spo_unet_load(&u, path, d)) die(path);
        n = 1, hw = spo_unet_cfg(u)->sample_size;
    } else if (!strcmp(name, "tiny")) {
        snprintf(path, sizeof path, "%s/tests/fixtures/tiny-sd/unet", root);
        if (spo_unet_load(&u, path, d)) die(path);
        n = 2, hw = 16;
    } else {
        spo_unet_config cfg;
        snprintf(path, sizeof path, "%s/tests/bench/%s_unet_config.json", root, name);
        if (spo_unet_config_load(&cfg, path)) die(path);
        if (spo_unet_create(&u, &cfg, d)) die("create");
        randomize(u);
        n = 1, hw = !strcmp(name, "mid") ? 32 : 64;
    }
    const spo_unet_config *cf = spo_unet_cfg(u);
    size_t nx = (size_t)n * cf->in_channels * hw * hw, no = (size_t)n * cf->out_channels * hw * hw;
    size_t nc = (size_t)n * L * cf->cross_dim, np = 0;
    for (int i = 0; i < spo_unet_params(u)->n; i++) np += spo_unet_params(u)->p[i].numel;
    job j = {.u = u, .d = d, .n = n, .hw = hw, .L = L};
    j.x = spo_dev_alloc(d, nx), j.dx = spo_dev_alloc(d, nx), j.out = spo_dev_alloc(d, no);
    j.dout = spo_dev_alloc(d, no), j.c = spo_dev_alloc(d, nc), j.t = spo_dev_alloc(d, n);
    float *h = malloc((nc > nx ? nc : nx) * sizeof *h);
    srand(1);
    for (size_t i = 0; i < nx; i++) h[i] = (float)rand() / RAND_MAX * 2 - 1;
    spo_dev_upload(d, j.x, h, nx);
    spo_dev_upload(d, j.dout, h, no);
    for (size_t i = 0; i < nc; i++) h[i] = (float)rand() / RAND_MAX * 2 - 1;
    spo_dev_upload(d, j.c, h, nc);
    for (int i = 0; i < n; i++) h[i] = 500;
    spo_dev_upload(d, j.t, h, n);
    free(h);

    double *ms = malloc(runs * sizeof *ms);
    for (int pass = 0; pass < 1 + do_bwd; pass++) {
        run(&j, pass); /* warm-up (and arena planning) */
        for (int r = 0; r < runs; r++) {
            double t0 = now_ms();
            run(&j, pass);
            ms[r] = now_ms() - t0;
        }
        qsort(ms, runs, sizeof *ms, cmp);
        size_t fb, bb;
        spo_unet_arena_bytes(u, &fb, &bb);
        printf("{\"impl\": \"spo\", \"config\": \"%s\", \"pass\": \"%s\", \"ms\": %.3f, \"min_ms\": %.3f, \"runs\": %d, "
               "\"threads\": %d, \"batch\": %d, \"latent\": %d, \"params\": %zu, \"arena_mib\": %zu, \"device\": \"%s\"}\n",
               name, pass ? "fwd_bwd" : "fwd", ms[runs / 2], ms[0], runs, threads, n, hw, np, (fb + bb) >> 20,
               spo_dev_name(spo_dev_kind(d)));
        fflush(stdout);
    }
    free(ms);
    spo_dev_free(d, j.x), spo_dev_free(d, j.dx), spo_dev_free(d, j.out);
    spo_dev_free(d, j.dout), spo_dev_free(d, j.c), spo_dev_free(d, j.t);
    spo_unet_free(u);
}

int main(int argc, char **argv)
{
    int threads = 1, runs = 5, sd15_bwd = 0;
    spo_devkind kind = SPO_DEV_CPU;
    const char *configs = "tiny,mid";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-c") && i + 1 < argc) configs = argv[++i];
        else if (!strcmp(argv[i], "--sd15-bwd")) sd15_bwd = 1;
        else if (!strcmp(argv[i], "-d") && i + 1 < argc) {
            if (spo_dev_parse(argv[++i], &kind)) die("-d");
        }
        else {
            fprintf(stderr, "Usage: unet_bench [-t THREADS] [-r RUNS] [-d cpu|cuda] [-c tiny,mid,sd15,MODEL_DIR/] [--sd15-bwd]\n");
            return 2;
        }
    }
    if (runs < 1 || threads < 1) {
        fprintf(stderr, "unet_bench: runs and threads must be positive\n");
        return 2;
    }
    const char *root = getenv("SPO_ROOT") ? getenv("SPO_ROOT") : ".";
    spo_dev *d;
    if (spo_dev_open(&d, kind, threads)) die("device");
    char *list = strdup(configs), *save = NULL;
    for (char *c = strtok_r(list, ",", &save); c; c = strtok_r(NULL, ",", &save)) {
        if (strcmp(c, "tiny") && strcmp(c, "mid") && strcmp(c, "sd15") && !strchr(c, '/')) {
            fprintf(stderr, "unet_bench: unknown config '%s' (tiny, mid, sd15)\n", c);
            return 2;
        }
        bench(d, root, c, runs, threads, strcmp(c, "sd15") && !strchr(c, '/') ? 1 : sd15_bwd);
    }
    free(list);
    spo_dev_close(d);
    return 0;
}
