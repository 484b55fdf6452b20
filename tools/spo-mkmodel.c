/* spo-mkmodel — write a diffusers-layout model directory with seeded random
 * weights (tiny for tests and demos, sd15 at the real SD v1.5 sizes). */
#include <stdio.h>
#include <string.h>

#include "frame.h"
#include "nn/mkmodel.h"

#include "spo-mkmodel.opts.h"

static void progress(void *quiet, const char *what)
{
    if (!*(int *)quiet) fprintf(stderr, "spo-mkmodel: writing %s\n", what);
}

int main(int argc, char **argv)
{
    tool_vals c;
    spo_args a;
    spo_parse(&tool, argc, argv, &a, &c, sizeof c, NULL);
    if (!strcmp(a.out, "-")) spo_die(2, "-o: a model is a directory, it cannot go to stdout");
    int tiny = !strcmp(c.preset, "tiny") || !strcmp(c.preset, "sdxl-tiny");
    if (!tiny && strcmp(c.preset, "sd15") && strcmp(c.preset, "sdxl"))
        spo_die(2, "unknown preset '%s' (tiny, sd15, sdxl-tiny or sdxl)", c.preset);
    int quiet = a.quiet || !a.verbose;
    spo_mkmodel_opts o = {.preset = c.preset, .seed = a.seed, .force = a.force, .progress = progress, .ctx = &quiet};
    o.dtype = c.dtype >= 0 ? c.dtype : tiny ? SPO_ST_F32 : SPO_ST_F16;
    o.spm = c.spm ? c.spm == 1 : tiny;
    double t0 = spo_now();
    int rc = spo_mkmodel(a.out, &o);
    if (rc) spo_die_lib(rc);
    spo_vtime(&a, "work", spo_now() - t0);
    return spo_finish();
}
