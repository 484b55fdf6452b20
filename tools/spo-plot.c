/* spo-plot — loss and mean score against the optimizer step, from a training
 * run's metrics.jsonl, as an 8-bit PNG (lib/io/plot.c draws it). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "io/image_io.h"
#include "io/outfile.h"
#include "io/plot.h"

#include "spo-plot.opts.h"

typedef struct {
    double *x, *y;
    int n, cap;
} pts;

static void add(pts *p, double x, double y)
{
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 64;
        double *nx = realloc(p->x, cap * sizeof *nx);
        if (nx) p->x = nx;
        double *ny = nx ? realloc(p->y, cap * sizeof *ny) : NULL;
        if (!nx || !ny) spo_die(1, "out of memory");
        p->y = ny, p->cap = cap;
    }
    p->x[p->n] = x, p->y[p->n] = y, p->n++;
}

static const char *bad_key; /* the first key holding something else than a number */

/* the number under key, or NAN when absent or null */
static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return NAN;
    if (!cJSON_IsNumber(v)) {
        if (!bad_key) bad_key = key;
        return NAN;
    }
    return v->valuedouble;
}

int main(int argc, char **argv)
{
    tool_vals v;
    spo_args a;
    spo_parse(&tool, argc, argv, &a, &v, sizeof v, NULL);
    const char *in = a.argv[0];
    int rc = spo_outfile_check(a.out, a.force);
    if (rc) spo_die_lib(rc);
    FILE *fp = strcmp(in, "-") ? fopen(in, "r") : stdin;
    if (!fp) spo_die(2, "%s: %s", in, strerror(errno));
    pts step_loss = {0}, round_loss = {0}, win = {0}, val = {0};
    char *buf = NULL;
    size_t cap = 0;
    long ln = 0;
    double last_step = 0;
    ssize_t len;
    while ((len = getline(&buf, &cap, fp)) >= 0) {
        ln++;
        const char *p = buf;
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
        if (!*p) continue;
        cJSON *o = cJSON_ParseWithLength(buf, (size_t)len);
        if (!o || !cJSON_IsObject(o)) {
            cJSON_Delete(o);
            free(buf);
            spo_die(2, "%s: line %ld: not a JSON object", in, ln);
        }
        double step = num(o, "step"), loss = num(o, "loss");
        if (cJSON_HasObjectItem(o, "round")) {
            add(&round_loss, step, loss);
            add(&win, step, num(o, "mean_win_score"));
        } else if (cJSON_HasObjectItem(o, "val_score")) {
            add(&val, last_step, num(o, "val_score"));
        } else if (isfinite(step)) {
            add(&step_loss, step, loss);
        }
        if (isfinite(step)) last_step = step;
        cJSON_Delete(o);
        if (bad_key) {
            free(buf);
            spo_die(2, "%s: line %ld: '%s' is not a number", in, ln, bad_key);
        }
    }
    int rerr = ferror(fp);
    free(buf);
    if (fp != stdin) fclose(fp);
    if (rerr) spo_die(1, "%s: read error", in);
    spo_canvas c;
    if ((rc = spo_canvas_init(&c, v.wh[0], v.wh[1]))) spo_die_lib(rc);
    spo_plot_series top[] = {
        {"step", step_loss.x, step_loss.y, step_loss.n, {70, 110, 200}},
        {"round mean", round_loss.x, round_loss.y, round_loss.n, {230, 120, 20}},
    };
    spo_plot_series bottom[] = {
        {"pool winners", win.x, win.y, win.n, {40, 160, 60}},
        {"validation", val.x, val.y, val.n, {200, 40, 60}},
    };
    if ((rc = spo_plot_panel(&c, 0, 2, "DPO loss", "optimizer step", top, 2)) ||
        (rc = spo_plot_panel(&c, 1, 2, "mean score", "optimizer step", bottom, 2)))
        spo_die_lib(rc);
    spo_png_text text[] = {{"Software", "spo-plot " SPO_VERSION}, {"Source", in}};
    spo_outfile o;
    if ((rc = spo_outfile_open(&o, a.out, a.force)) ||
        (rc = spo_png_write(o.fp, a.out, c.rgb, c.w, c.h, text, 2))) {
        spo_outfile_abort(&o);
        spo_die_lib(rc);
    }
    if ((rc = spo_outfile_commit(&o))) spo_die_lib(rc);
    spo_canvas_free(&c);
    free(step_loss.x), free(step_loss.y), free(round_loss.x), free(round_loss.y);
    free(win.x), free(win.y), free(val.x), free(val.y);
    return spo_finish();
}
