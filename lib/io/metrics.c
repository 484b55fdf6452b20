/* metrics.c — reading and drawing a run's metrics.jsonl (metrics.h). */
#include "io/metrics.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int add(spo_series *p, double x, double y)
{
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 64;
        double *nx = realloc(p->x, cap * sizeof *nx);
        if (nx) p->x = nx;
        double *ny = nx ? realloc(p->y, cap * sizeof *ny) : NULL;
        if (!nx || !ny) return spo_err(SPO_EIO, "out of memory");
        p->y = ny, p->cap = cap;
    }
    p->x[p->n] = x, p->y[p->n] = y, p->n++;
    return SPO_OK;
}

/* the number under key, or NAN when absent or null; *bad names the first
 * key holding something else */
static double num(const cJSON *o, const char *key, const char **bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return NAN;
    if (!cJSON_IsNumber(v)) {
        if (!*bad) *bad = key;
        return NAN;
    }
    return v->valuedouble;
}

/* one line's object into the series; *last_step is the last step seen */
static int add_line(spo_metrics *m, const cJSON *o, double *last_step, const char **bad)
{
    double step = num(o, "step", bad), loss = num(o, "loss", bad);
    int rc = SPO_OK;
    if (cJSON_HasObjectItem(o, "round")) {
        if (!(rc = add(&m->round_loss, step, loss))) rc = add(&m->win, step, num(o, "mean_win_score", bad));
    } else if (cJSON_HasObjectItem(o, "val_score")) {
        rc = add(&m->val, *last_step, num(o, "val_score", bad));
    } else if (isfinite(step)) {
        rc = add(&m->step_loss, step, loss);
    }
    if (isfinite(step)) *last_step = step;
    return rc;
}

static int read_lines(spo_metrics *m, FILE *fp, const char *path)
{
    char *buf = NULL;
    size_t cap = 0;
    long ln = 0;
    double last_step = 0;
    ssize_t len;
    int rc = SPO_OK;
    while (!rc && (len = getline(&buf, &cap, fp)) >= 0) {
        ln++;
        const char *p = buf;
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
        if (!*p) continue;
        cJSON *o = cJSON_ParseWithLength(buf, (size_t)len);
        const char *bad = NULL;
        if (!o || !cJSON_IsObject(o)) rc = spo_err(SPO_EINVAL, "%s: line %ld: not a JSON object", path, ln);
        else if (!(rc = add_line(m, o, &last_step, &bad)) && bad)
            rc = spo_err(SPO_EINVAL, "%s: line %ld: '%s' is not a number", path, ln, bad);
        cJSON_Delete(o);
    }
    if (!rc && ferror(fp)) rc = spo_err(SPO_EIO, "%s: read error", path);
    free(buf);
    return rc;
}

int spo_metrics_read(spo_metrics *m, const char *path)
{
    memset(m, 0, sizeof *m);
    /* fopen, not spo_fopen_in: a pipe (spo-plot <(...)) is a fine text stream */
    FILE *fp = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!fp) return spo_err(SPO_EINVAL, "%s: %s", path, strerror(errno));
    int rc = read_lines(m, fp, path);
    if (fp != stdin) fclose(fp);
    if (rc) spo_metrics_free(m);
    return rc;
}

void spo_metrics_free(spo_metrics *m)
{
    spo_series *s[] = {&m->step_loss, &m->round_loss, &m->win, &m->val};
    for (int i = 0; i < 4; i++) free(s[i]->x), free(s[i]->y);
    memset(m, 0, sizeof *m);
}

int spo_metrics_plot(spo_canvas *c, const spo_metrics *m)
{
    spo_plot_series top[] = {
        {"step", m->step_loss.x, m->step_loss.y, m->step_loss.n, {70, 110, 200}},
        {"round mean", m->round_loss.x, m->round_loss.y, m->round_loss.n, {230, 120, 20}},
    };
    spo_plot_series bottom[] = {
        {"pool winners", m->win.x, m->win.y, m->win.n, {40, 160, 60}},
        {"validation", m->val.x, m->val.y, m->val.n, {200, 40, 60}},
    };
    SPO_TRY(spo_plot_panel(c, 0, 2, "DPO loss", "optimizer step", top, 2));
    return spo_plot_panel(c, 1, 2, "mean score", "optimizer step", bottom, 2);
}
