/* pair_run.h — spo-pair's whole job: choose the pairs of a scored pool (or
 * of independent chains), or merge pairs files, together with an existing
 * pairs file when appending, and write the union (spo/pairs.h: sorted by
 * key, each key once, the existing file's pair winning). The library
 * prints nothing: the tool gets notes and timings through its hooks. */
#ifndef SPO_PAIR_RUN_H
#define SPO_PAIR_RUN_H

#include "core/hooks.h"

enum { SPO_PAIR_POOL, SPO_PAIR_CHAINS, SPO_PAIR_MERGE };

typedef struct {
    int mode;               /* SPO_PAIR_*: in is POOL SCORES; POOL1 FINAL1 POOL2 FINAL2...; PAIRS... */
    const char *const *in;  /* nin input files ("-": stdin, once) */
    int nin;
    const char *embeds;     /* the prompts' embeddings (not for SPO_PAIR_MERGE) */
    const char *out;        /* the pairs file to write ("-": stdout) */
    int append;             /* out may exist: its pairs come first and stay */
    int force;
    double threshold;       /* keep a pair when p_best - p_worst > threshold */
    spo_hooks hooks;        /* notes: how many pairs were kept and written; timings "load", "work" */
} spo_pair_job;

/* SPO_EINVAL naming the file for bad input (files of other models or
 * settings, see spo/pairs.h), SPO_EIO for a failed job. Nothing is written
 * at out on failure; an appended file is left as it was. */
int spo_pair_run(const spo_pair_job *j);

#endif
