/* frame.c — option parsing, usage, errors and progress for every tool. */
#include "frame.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/prov.h"
#include "ops/ops.h"

static const char *prog = "spo";

enum { ID_BASE = 1000, ID_HELP = 'h', ID_CONFIG = 899, ID_VERSION = 900, ID_LORA, ID_SEED, ID_DEVICE };

typedef struct {
    unsigned flag;
    const char *lname;
    int sname;
    const char *arg;
    const char *help;
} common_opt;

static const common_opt commons[] = {
    {SPO_O_OUT, "output", 'o', "FILE", "write to FILE ('-' for stdout)"},
    {SPO_O_APPEND, "append", 'a', "FILE", "append to FILE, creating it if missing"},
    {SPO_O_MODEL, "model", 'm', "DIR", "diffusers model directory"},
    {SPO_O_EMBEDS, "embeds", 'e', "FILE", "prompt embeddings (embeds.h5, '-' for stdin)"},
    {SPO_O_LORA, "lora", 0, "FILE", "LoRA weights (lora.h5)"},
    {SPO_O_SEED, "seed", 0, "N", "random seed (default 0)"},
    {SPO_O_DEVICE, "device", 0, "DEV", "cpu or cuda (default cuda if a GPU answers, else cpu)"},
    {SPO_O_VAE, "vae", 0, "DIR", "VAE directory to decode with instead of MODEL/vae (SDXL's fp16-fix)"},
    {SPO_O_FORCE, "force", 'f', NULL, "overwrite an existing output file"},
};
#define NCOMMON (int)(sizeof commons / sizeof commons[0])

static void opt_line(FILE *fp, int s, const char *l, const char *arg, const char *help)
{
    char left[96];
    if (s)
        snprintf(left, sizeof left, "-%c, --%s%s%s", s, l, arg ? " " : "", arg ? arg : "");
    else
        snprintf(left, sizeof left, "    --%s%s%s", l, arg ? " " : "", arg ? arg : "");
    fprintf(fp, "  %-26s %s\n", left, help);
}

void spo_usage(const spo_tool *t, FILE *fp)
{
    fprintf(fp, "Usage: %s %s\n%s\n\nOptions:\n", t->name, t->synopsis, t->summary);
    for (int i = 0; i < NCOMMON; i++)
        if (t->common & commons[i].flag)
            opt_line(fp, commons[i].sname, commons[i].lname, commons[i].arg, commons[i].help);
    for (const spo_opt *o = t->opts; o && o->lname; o++) opt_line(fp, o->sname, o->lname, o->arg, o->help);
    if (t->config) opt_line(fp, 0, "config", "FILE|NAME", "recipe settings (KEY = VALUE lines), or a recipe: sd15, sdxl");
    opt_line(fp, 'q', "quiet", NULL, "no progress bar");
    opt_line(fp, 'v', "verbose", NULL, "print timings (start, load, init, work) to stderr");
    opt_line(fp, 'h', "help", NULL, "print this help and exit");
    opt_line(fp, 0, "version", NULL, "print version and build information and exit");
    fprintf(fp, "\nExit status: 0 done, 1 the work failed, 2 invalid call or input.\nSee %s(1).\n", t->name);
}

_Noreturn void spo_die(int code, const char *fmt, ...)
{
    va_list ap;
    char raw[2048], line[2048];
    fflush(stdout);
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    spo_escape(line, sizeof line, raw, sizeof raw); /* file text may hold escapes */
    fprintf(stderr, "%s: %s\n", prog, line);
    exit(code);
}

_Noreturn void spo_die_lib(int code) { spo_die(code ? code : 1, "%s", spo_errmsg()); }

static _Noreturn void bad_call(const char *fmt, const char *a)
{
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, a);
    fprintf(stderr, " (try '%s --help')\n", prog);
    exit(2);
}

long spo_arg_long(const char *opt, const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        spo_die(2, "invalid value '%s' for %s (an integer from %ld to %ld)", s, opt, lo, hi);
    return v;
}

double spo_arg_double(const char *opt, const char *s, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
        spo_die(2, "invalid value '%s' for %s (a number from %g to %g)", s, opt, lo, hi);
    return v;
}

extern char *openblas_get_corename(void);

/* OpenBLAS picks its kernels from the CPU model at load time; a model newer
 * than the library (e.g. Emerald Rapids with Debian's 0.3.21) falls back to
 * the generic "Prescott" kernels, 3-4x slower. When that happened and the
 * CPU has AVX-512 or AVX2, name the matching core type and re-execute once
 * (the variable must be set before the library loads). SPO_NO_BLAS_TUNE=1
 * or an explicit OPENBLAS_CORETYPE turns this off. */
static void tune_blas(char **argv)
{
    if (getenv("OPENBLAS_CORETYPE") || getenv("SPO_NO_BLAS_TUNE")) return;
    const char *core = openblas_get_corename();
    if (!core || strcasecmp(core, "prescott")) return;
    __builtin_cpu_init();
    const char *ct = NULL;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        ct = "SkylakeX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        ct = "Haswell";
    if (!ct) return;
    setenv("OPENBLAS_CORETYPE", ct, 1);
    fflush(NULL);
    execv("/proc/self/exe", argv); /* on failure, go on with the generic kernels */
    unsetenv("OPENBLAS_CORETYPE");
}

static int choice_of(const char *opt, const spo_choice *ch, const char *s)
{
    char names[256] = "";
    size_t n = 0;
    for (int i = 0; ch[i].name; i++) {
        if (!strcmp(s, ch[i].name)) return ch[i].value;
        const char *sep = !i ? "" : ch[i + 1].name ? ", " : " or ";
        n += (size_t)snprintf(names + n, n < sizeof names ? sizeof names - n : 0, "%s%s", sep, ch[i].name);
    }
    spo_die(2, "invalid value '%s' for %s (%s)", s, opt, names);
}

/* AxB, or N for NxN; each in [lo, hi] */
static void size_of(const char *opt, const spo_opt *o, const char *s, int *v)
{
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10), y = x;
    if (end != s && (*end == 'x' || *end == 'X')) {
        const char *ys = end + 1;
        y = strtol(ys, &end, 10);
        if (end == ys) y = o->lo - 1;
    }
    if (errno || end == s || *end || x < o->lo || y < o->lo || x > o->hi || y > o->hi)
        spo_die(2, "invalid value '%s' for %s (%s or N, each from %g to %g)", s, opt, o->arg, o->lo, o->hi);
    v[0] = (int)x, v[1] = (int)y;
}

/* store one option's value in the tool's struct, by its type */
static void set_value(const spo_opt *o, int idx, void *vals, const char *arg, spo_opt_fn fn)
{
    char opt[80];
    snprintf(opt, sizeof opt, "--%s", o->lname);
    char *p = (char *)vals + o->off;
    switch (o->type) {
    case SPO_OT_INT: *(int *)p = (int)spo_arg_long(opt, arg, (long)o->lo, (long)o->hi); break;
    case SPO_OT_LONG: *(long *)p = spo_arg_long(opt, arg, (long)o->lo, (long)o->hi); break;
    case SPO_OT_DOUBLE: *(double *)p = spo_arg_double(opt, arg, o->lo, o->hi); break;
    case SPO_OT_STR: *(const char **)p = arg; break;
    case SPO_OT_FLAG: *(int *)p = (int)o->hi; break;
    case SPO_OT_CHOICE: *(int *)p = choice_of(opt, o->choices, arg); break;
    case SPO_OT_SIZE: size_of(opt, o, arg, (int *)p); break;
    case SPO_OT_CALL:
        if (fn && fn(vals, idx, arg)) spo_die(2, "%s", spo_errmsg());
        break;
    }
}

/* A recipe's path: FILE as given, or NAME.conf in the recipes beside the
 * tools (../share/spo/recipes from an installed bin/, ../pipelines/recipes
 * from the source tree's bin/), or in the source tree the tools were built
 * from (SPO_RECIPES_DIR, set by the Makefile: any build folder). */
static void recipe_path(const char *name, char *path, size_t n)
{
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    snprintf(path, n, "%s", name);
    if (strchr(name, '/') || access(name, F_OK) == 0 || len <= 0) return;
    exe[len] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    static const char *const dirs[] = {"../share/spo/recipes", "../pipelines/recipes"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, n, "%s/%s/%s.conf", exe, dirs[i], name);
        if (access(path, R_OK) == 0) return;
    }
#ifdef SPO_RECIPES_DIR
    snprintf(path, n, "%s/%s.conf", SPO_RECIPES_DIR, name);
    if (access(path, R_OK) == 0) return;
#endif
    snprintf(path, n, "%s", name);
}

/* --config: every KEY = VALUE line of the recipe sets the option its key
 * names for this tool (before the command line, which wins); a key no
 * recipe has is refused. */
static void apply_config(const spo_tool *t, const char *name, void *vals, spo_opt_fn fn)
{
    char path[PATH_MAX + 64], line[4096];
    recipe_path(name, path, sizeof path);
    FILE *fp = fopen(path, "r");
    if (!fp) spo_die(2, "%s: cannot read the config file (nor a recipe: sd15, sdxl)", name);
    for (int ln = 1; fgets(line, sizeof line, fp); ln++) {
        char *k = line, *eq = strchr(line, '='), *e;
        while (*k == ' ' || *k == '\t') k++;
        if (*k == '#' || *k == '\n' || *k == '\r' || !*k) continue;
        if (!eq) spo_die(2, "%s: line %d: expected KEY=VALUE", path, ln);
        for (e = eq; e > k && (e[-1] == ' ' || e[-1] == '\t'); e--) {}
        *e = 0;
        char *v = eq + 1;
        while (*v == ' ' || *v == '\t') v++;
        for (e = v + strlen(v); e > v && strchr(" \t\r\n", e[-1]); e--) {}
        *e = 0;
        const spo_confkey *c = t->config;
        while (c->key && strcmp(c->key, k)) c++;
        if (!c->key) spo_die(2, "%s: line %d: unknown setting '%s'", path, ln, k);
        int i = 0;
        while (c->opt && t->opts[i].lname && strcmp(t->opts[i].lname, c->opt)) i++;
        if (!c->opt || !t->opts[i].lname) continue;
        const char *arg = v;
        if (t->opts[i].type == SPO_OT_STR || t->opts[i].type == SPO_OT_CALL) { /* the value must outlive line[] */
            static char *kept[64];
            static int nkept;
            if (nkept == 64 || !(arg = kept[nkept++] = strdup(v))) spo_die(1, "%s: out of memory", path);
        }
        set_value(&t->opts[i], i, vals, arg, fn);
    }
    fclose(fp);
}

static const char *common_value(const spo_args *a, unsigned flag)
{
    return flag == SPO_O_OUT      ? a->out
           : flag == SPO_O_APPEND ? a->append
           : flag == SPO_O_MODEL  ? a->model
           : flag == SPO_O_EMBEDS ? a->embeds
                                  : a->lora;
}

void spo_parse(const spo_tool *t, int argc, char **argv, spo_args *a, void *vals, size_t nvals, spo_opt_fn fn)
{
    tune_blas(argv);
    struct option lo[64];
    char so[160];
    int nl = 0, ns = 0;
    prog = t->name;
    spo_prov_set_cmdline(argc, argv);
    memset(a, 0, sizeof *a);
    a->t0 = spo_now();
    memset(vals, 0, nvals);
    so[ns++] = ':'; /* report missing arguments as ':' */
    for (int i = 0; i < NCOMMON; i++) {
        if (!(t->common & commons[i].flag)) continue;
        int id = commons[i].sname ? commons[i].sname : ID_VERSION + 1 + i;
        lo[nl++] = (struct option){commons[i].lname, commons[i].arg ? required_argument : no_argument, NULL, id};
        if (commons[i].sname) {
            so[ns++] = (char)commons[i].sname;
            if (commons[i].arg) so[ns++] = ':';
        }
    }
    int nopt = 0;
    for (const spo_opt *o = t->opts; o && o->lname; o++, nopt++) {
        if (o->type == SPO_OT_CHOICE) *(int *)((char *)vals + o->off) = -1;
        if (o->def) set_value(o, nopt, vals, o->def, fn);
        lo[nl++] = (struct option){o->lname, o->arg ? required_argument : no_argument, NULL, ID_BASE + nopt};
        if (o->sname) {
            so[ns++] = (char)o->sname;
            if (o->arg) so[ns++] = ':';
        }
    }
    if (t->config) {
        lo[nl++] = (struct option){"config", required_argument, NULL, ID_CONFIG};
        for (int i = 1; i < argc; i++) /* the recipe first, the command line over it */
            if (!strcmp(argv[i], "--config") && i + 1 < argc) apply_config(t, argv[i + 1], vals, fn);
            else if (!strncmp(argv[i], "--config=", 9)) apply_config(t, argv[i] + 9, vals, fn);
    }
    lo[nl++] = (struct option){"quiet", no_argument, NULL, 'q'};
    lo[nl++] = (struct option){"verbose", no_argument, NULL, 'v'};
    lo[nl++] = (struct option){"help", no_argument, NULL, 'h'};
    lo[nl++] = (struct option){"version", no_argument, NULL, ID_VERSION};
    lo[nl] = (struct option){0, 0, 0, 0};
    memcpy(so + ns, "qvh", 4);

    opterr = 0;
    int c, li;
    while ((c = getopt_long(argc, argv, so, lo, &li)) != -1) {
        if (c == '?') {
            if (optopt && optopt < 256)
                bad_call("unknown option '-%c'", (char[]){(char)optopt, 0});
            bad_call("unknown option '%s'", argv[optind - 1]);
        }
        if (c == ':') bad_call("option '%s' needs an argument", argv[optind - 1]);
        if (c > 0 && c < 256)
            for (int i = 0; i < nopt; i++)
                if (t->opts[i].sname == c) c = ID_BASE + i;
        if (c >= ID_BASE) {
            set_value(&t->opts[c - ID_BASE], c - ID_BASE, vals, optarg, fn);
            continue;
        }
        if (c == ID_CONFIG) continue; /* read before the command line */
        if (c > ID_VERSION && c <= ID_VERSION + NCOMMON) c = -(c - ID_VERSION - 1) - 1; /* common without letter */
        switch (c) {
        case 'o': a->out = optarg; break;
        case 'a': a->append = optarg; break;
        case 'm': a->model = optarg; break;
        case 'e': a->embeds = optarg; break;
        case 'f': a->force = 1; break;
        case 'q': a->quiet = 1; break;
        case 'v': a->verbose = 1; break;
        case 'h': spo_usage(t, stdout); exit(spo_finish());
        case ID_VERSION: {
            char b[2048];
            spo_build_info(b, sizeof b);
            printf("%s: %s", t->name, b);
            if (t->version_extra) printf("%s", t->version_extra);
            exit(spo_finish());
        }
        default: {
            int i = -c - 1;
            if (i < 0 || i >= NCOMMON) bad_call("unknown option '%s'", argv[optind - 1]);
            unsigned f = commons[i].flag;
            if (f == SPO_O_LORA) a->lora = optarg;
            else if (f == SPO_O_VAE) a->vae = optarg;
            else if (f == SPO_O_SEED) {
                char *end;
                errno = 0;
                unsigned long long v = strtoull(optarg, &end, 0);
                if (errno || end == optarg || *end || optarg[0] == '-')
                    spo_die(2, "invalid value '%s' for --seed (a non-negative integer)", optarg);
                a->seed = v;
                a->seed_set = 1;
            } else if (f == SPO_O_DEVICE) {
                if (strcmp(optarg, "cpu") && strcmp(optarg, "cuda"))
                    spo_die(2, "invalid value '%s' for --device (cpu or cuda)", optarg);
                a->device = optarg;
            }
        }
        }
    }
    if (t->common & SPO_O_DEVICE) { /* no --device: cuda where a GPU answers (or SPO_DEVICE), else cpu */
        spo_devkind k = SPO_DEV_CPU;
        if (!a->device) k = spo_dev_default(); /* only then: it asks the CUDA driver */
        else if (spo_dev_parse(a->device, &k)) spo_die(2, "%s", spo_errmsg());
        a->device = spo_dev_name(k);
        a->devkind = k;
    }
    a->argc = argc - optind;
    a->argv = argv + optind;
    if (a->argc < t->min_args) bad_call("%s", t->min_args == 1 ? "missing input file" : "missing arguments");
    if (t->max_args >= 0 && a->argc > t->max_args) bad_call("unexpected argument '%s'", a->argv[t->max_args]);
    for (const spo_require *r = t->require; r && r->msg; r++)
        if (!common_value(a, r->common)) spo_die(2, "%s", r->msg);
}

int spo_finish(void)
{
    if (fflush(stdout) != 0 || ferror(stdout) || fclose(stdout) != 0) {
        fprintf(stderr, "%s: error writing to standard output: %s\n", prog, strerror(errno));
        return 1;
    }
    return 0;
}

struct spo_progress {
    const char *label;
    long total;
    double t0;
    int on;
};

double spo_now(void) { return spo_seconds(); }

spo_progress *spo_progress_start(const char *label, long total, int quiet)
{
    spo_progress *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->label = label;
    p->total = total > 0 ? total : 1;
    p->t0 = spo_now();
    p->on = !quiet && isatty(STDERR_FILENO);
    return p;
}

void spo_progress_update(spo_progress *p, long done)
{
    if (!p || !p->on) return;
    int w = 30, f = (int)(w * done / p->total);
    if (f > w) f = w;
    fprintf(stderr, "\r%s: %s [%.*s%*s] %ld/%ld %.1fs", prog, p->label, f,
            "##############################", w - f, "", done, p->total, spo_now() - p->t0);
    fflush(stderr);
}

void spo_progress_end(spo_progress *p)
{
    if (!p) return;
    if (p->on) fputc('\n', stderr);
    free(p);
}

void spo_vtime(const spo_args *a, const char *what, double seconds)
{
    if (a->verbose) fprintf(stderr, "%s: %s %.1f ms\n", prog, what, seconds * 1e3);
}

static void jobcb_end(spo_jobcb *cb)
{
    spo_progress_end(cb->pg);
    cb->pg = NULL;
}

static void jobcb_progress(void *p, long done, long total)
{
    spo_jobcb *cb = p;
    if (!cb->pg) cb->pg = spo_progress_start(cb->label, total, cb->a->quiet);
    spo_progress_update(cb->pg, done);
}

static void jobcb_note(void *p, const char *msg)
{
    const spo_jobcb *cb = p;
    if (cb->a->verbose) fprintf(stderr, "%s: %s\n", prog, msg);
}

static void jobcb_phase(void *p, const char *name)
{
    spo_jobcb *cb = p;
    double now = spo_now();
    jobcb_end(cb);
    spo_vtime(cb->a, name, now - cb->t);
    cb->t = now;
}

static void jobcb_time(void *p, const char *name, double seconds)
{
    spo_jobcb *cb = p;
    jobcb_end(cb);
    spo_vtime(cb->a, name, seconds);
}

spo_hooks spo_jobcb_hooks(spo_jobcb *cb, const spo_args *a, const char *label)
{
    *cb = (spo_jobcb){.a = a, .label = label, .t = a->t0};
    return (spo_hooks){.ctx = cb, .progress = jobcb_progress, .note = jobcb_note, .phase = jobcb_phase,
                       .timing = jobcb_time};
}

int spo_jobcb_done(spo_jobcb *cb, int rc)
{
    jobcb_end(cb);
    if (rc) spo_die_lib(rc);
    return spo_finish();
}
