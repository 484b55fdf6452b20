/* spo-pair — keep the best/worst pairs of a scored pool; trajectory pairs of
 * independent chains; merge pairs files. */
#include <stdio.h>
#include <string.h>

#include "frame.h"
#include "spo/pair_run.h"

#include "spo-pair.opts.h"

#define MAXIN 1024

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
    spo_jobcb cb;
    spo_pair_job j = {.mode = c.merge ? SPO_PAIR_MERGE : c.trajectory ? SPO_PAIR_CHAINS : SPO_PAIR_POOL,
                      .in = (const char *const *)a.argv, .nin = a.argc, .embeds = a.embeds,
                      .out = a.append ? a.append : a.out, .append = !!a.append, .force = a.force,
                      .threshold = c.threshold, .hooks = spo_jobcb_hooks(&cb, &a, "pairs")};
    return spo_jobcb_done(&cb, spo_pair_run(&j));
}
