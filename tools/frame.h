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
};

/* A tool-specific option. sname is a short letter or 0. */
typedef struct {
    const char *lname;
    int sname;
    const char *arg; /* argument name for usage, NULL for a flag */
    const char *help;
} spo_opt;

typedef struct {
    const char *name;     /* "spo-inspect" */
    const char *synopsis; /* "[options] FILE|-" */
    const char *summary;  /* one line: what it does */
    unsigned common;      /* SPO_O_* */
    const spo_opt *opts;  /* tool options, ended by {0} */
    int min_args, max_args; /* positional arguments (max -1: any) */
    const char *version_extra; /* more --version lines, or NULL */
} spo_tool;

typedef struct {
    const char *out, *model, *embeds, *lora, *device, *append;
    int devkind; /* --device as an spo_devkind (ops/ops.h); its default is spo_dev_default() */
    uint64_t seed;
    int seed_set, quiet, force, verbose;
    int argc;    /* positional arguments */
    char **argv;
} spo_args;

/* Called for each tool option: idx into spo_tool.opts, arg or NULL.
 * Return 0, or SPO_EINVAL after spo_err() to refuse the value. */
typedef int (*spo_opt_fn)(void *ctx, int idx, const char *arg);

/* Parse argv. Handles -h (usage to stdout, exit 0), --version (exit 0), a bad
 * option or argument count (one line + hint to stderr, exit 2). */
void spo_parse(const spo_tool *t, int argc, char **argv, spo_args *a, spo_opt_fn fn, void *ctx);

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

/* Callbacks for a library job (lib/spo/pool_run.h and the other *_run.h):
 * a progress bar labelled label (started at the first report), -v notes,
 * and a -v timing line per phase (seconds since t0 or the previous phase). */
typedef struct {
    const spo_args *a;
    const char *label;
    spo_progress *pg;
    double t;
} spo_jobcb;
void spo_jobcb_init(spo_jobcb *cb, const spo_args *a, const char *label, double t0);
void spo_jobcb_progress(void *cb, long done, long total);
void spo_jobcb_note(void *cb, const char *msg);
void spo_jobcb_phase(void *cb, const char *name);
/* A -v timing line for a part of the work the job timed itself (the time
 * of every batch's decoding, say); ends the progress bar. */
void spo_jobcb_time(void *cb, const char *name, double seconds);
/* End the progress bar (if any). */
void spo_jobcb_end(spo_jobcb *cb);

#endif
