/* spo-plot — loss and mean score against the optimizer step, from a training
 * run's metrics.jsonl, as an 8-bit PNG (lib/io/metrics.c reads and draws it). */
#include <stdio.h>

#include "frame.h"
#include "io/imgout.h"
#include "io/metrics.h"
#include "io/outfile.h"

#include "spo-plot.opts.h"

int main(int argc, char **argv)
{
    tool_vals v;
    spo_args a;
    spo_parse(&tool, argc, argv, &a, &v, sizeof v, NULL);
    const char *in = a.argv[0];
    spo_metrics m;
    spo_canvas c = {0};
    int rc = spo_outfile_check(a.out, a.force);
    if (!rc && !(rc = spo_metrics_read(&m, in))) {
        if (!(rc = spo_canvas_init(&c, v.wh[0], v.wh[1])) && !(rc = spo_metrics_plot(&c, &m))) {
            spo_png_text text[] = {{"Software", "spo-plot " SPO_VERSION}, {"Source", in}};
            rc = spo_png_file_write(a.out, c.rgb, c.w, c.h, text, 2, a.force);
        }
        spo_canvas_free(&c);
        spo_metrics_free(&m);
    }
    if (rc) spo_die_lib(rc);
    return spo_finish();
}
