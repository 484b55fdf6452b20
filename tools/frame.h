/* frame.h — the frame every spo tool stands on (DESIGN.md §10).
 *
 * One option helper with the same letters everywhere (-o output, -m model
 * dir, -e embeddings, --lora, --seed, --device, -q, -f, -v), usage generated
 * from the option table (so --help and the man page list the same options),
 * --version with the build, one-line errors "spo-x: ...", exit 0/1/2.
 * Only tools exit: the library returns codes and messages (lib/core/err.h). */
#ifndef SPO_FRAME_H
#define SPO_FRAME_H

#include <stdint.h>
#include <stdio.h>

#include "core/err.h"
#include "core/hooks.h"

/* common options a tool may accept: or them together in spo_tool.common */
enum {
    SPO_O_OUT = 1 << 0,    /* -o, --output FILE|- */
    SPO_O_MODEL = 1 << 1,  /* -m, --model DIR */
    SPO_O_EMBEDS = 1 << 2, /* -e, --embeds FILE */
    SPO_O_LORA = 1 << 3,   /* --lora FILE */
    SPO_O_SEED = 1 << 4,   /* --seed N */
    SPO_O_DEVICE = 1 << 5, /* --device cpu|cuda */
    SPO_O_FORCE = 1 << 6,  /* -f, --force */
    SPO_O_APPEND = 1 << 7, /* -a, --append FILE */
    SPO_O_VAE = 1 << 8,    /* --vae DIR */
};

/* A tool-specific option. Every tool describes its command line in
 * tools/<tool>.opts; scripts/optgen.awk turns that into the option table,
 * the struct of parsed values (tool_vals) and the spo_tool below, so the
 * tools hold no tables. spo_parse stores each value in the struct at `off`
 * by its type, after the defaults (parsed like arguments). */
enum {
    SPO_OT_INT,    /* int in [lo, hi] */
    SPO_OT_LONG,   /* long in [lo, hi] */
    SPO_OT_DOUBLE, /* double in [lo, hi] */
    SPO_OT_STR,    /* const char *: the argument */
    SPO_OT_FLAG,   /* int: set to hi */
    SPO_OT_CHOICE, /* int: the value of the named choice; -1 when not given and no default */
    SPO_OT_SIZE,   /* int[2]: AxB, or N for NxN, each in [lo, hi] */
    SPO_OT_CALL,   /* the tool's spo_opt_fn parses it */
};

typedef struct {
    const char *name;
    int value;
} spo_choice;

typedef struct {
    const char *lname;
    int sname;       /* a short letter or 0 */
    const char *arg; /* argument name for usage, NULL for a flag */
    const char *help;
    int type;        /* SPO_OT_* */
    size_t off;      /* where the value goes in the tool's struct */
    double lo, hi;   /* range (flag: hi is the value) */
    const char *def; /* default, parsed as an argument, or NULL */
    const spo_choice *choices; /* SPO_OT_CHOICE: ended by {0} */
} spo_opt;

/* a common option the tool needs: exit 2 with msg when it is missing */
typedef struct {
    unsigned common; /* SPO_O_OUT, _APPEND, _MODEL, _EMBEDS or _LORA */
    const char *msg;
} spo_require;

/* a recipe setting (spo-train's config keys, pipelines/recipes/NAME.conf) and
 * the tool option it sets, or NULL when the tool has no use for it */
typedef struct {
    const char *key, *opt;
} spo_confkey;

typedef struct {
    const char *name;     /* "spo-inspect" */
    const char *synopsis; /* "[options] FILE|-" */
    const char *summary;  /* one line: what it does */
    unsigned common;      /* SPO_O_* */
    const spo_opt *opts;  /* tool options, ended by {0} */
    const spo_require *require; /* ended by {0}, or NULL */
    int min_args, max_args; /* positional arguments (max -1: any) */
    const char *version_extra; /* more --version lines, or NULL */
    const spo_confkey *config; /* --config FILE|NAME reads recipes (ended by {0}), or NULL */
} spo_tool;

typedef struct {
    const char *out, *model, *embeds, *lora, *device, *append, *vae;
    int devkind; /* --device as an spo_devkind (ops/ops.h); its default is spo_dev_default() */
    uint64_t seed;
    int seed_set, quiet, force, verbose;
    double t0;   /* when the tool started (spo_now) */
    int argc;    /* positional arguments */
    char **argv;
} spo_args;

/* Called for each SPO_OT_CALL option: vals, its index, its argument.
 * Return 0, or SPO_EINVAL after spo_err() to refuse the value. */
typedef int (*spo_opt_fn)(void *vals, int idx, const char *arg);

/* Parse argv into a (common options) and vals (the tool's struct, zeroed
 * here, then the defaults). Handles -h (usage to stdout, exit 0), --version
 * (exit 0), a bad option, value or argument count and a missing required
 * option (one line to stderr, exit 2). fn may be NULL when no option is
 * SPO_OT_CALL. */
void spo_parse(const spo_tool *t, int argc, char **argv, spo_args *a, void *vals, size_t nvals, spo_opt_fn fn);

void spo_usage(const spo_tool *t, FILE *fp);

/* Print "spo-x: message" and exit with code (1 or 2). */
_Noreturn void spo_die(int code, const char *fmt, ...) SPO_PRINTF(2, 3);
/* Print "spo-x: <spo_errmsg()>" and exit with code. */
_Noreturn void spo_die_lib(int code);
/* Parse helpers for option values; on a bad value they die with exit 2. */
long spo_arg_long(const char *opt, const char *s, long lo, long hi);
double spo_arg_double(const char *opt, const char *s, double lo, double hi);

/* Flush and close stdout; returns the exit status the tool should use. */
int spo_finish(void);

/* Progress on stderr, only when stderr is a terminal and not -q. */
typedef struct spo_progress spo_progress;
spo_progress *spo_progress_start(const char *label, long total, int quiet);
void spo_progress_update(spo_progress *p, long done);
void spo_progress_end(spo_progress *p);

/* Verbose timing line: "spo-x: <what> 12.3 ms" when -v. */
void spo_vtime(const spo_args *a, const char *what, double seconds);
double spo_now(void);

/* How a tool shows a library job's reports (lib/core/hooks.h): a progress
 * bar labelled label (started at the first report), -v notes, a -v timing
 * line per phase (seconds since the tool started or the previous phase) and
 * per part the job timed itself (the time of every batch's decoding, say). */
typedef struct {
    const spo_args *a;
    const char *label;
    spo_progress *pg;
    double t;
} spo_jobcb;
/* The hooks to put in the job: they report through cb. */
spo_hooks spo_jobcb_hooks(spo_jobcb *cb, const spo_args *a, const char *label);
/* The job returned rc: end the progress bar, then exit with the library's
 * message when rc is not 0, else return spo_finish() (the exit status). */
int spo_jobcb_done(spo_jobcb *cb, int rc);

#endif
