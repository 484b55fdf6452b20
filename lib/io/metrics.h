/* metrics.h — a spo-train run's metrics.jsonl (spo-train(1), DESIGN.md §10):
 * one JSON object a line, read into the series spo-plot draws, and drawn.
 *
 * A line with "round" is a round's summary (its "loss" and
 * "mean_win_score" at its "step"); one with "val_score" a validation
 * score, placed at the last step seen; any other line with a "step" is an
 * optimizer step's "loss" (spo-step-update --metrics). A missing or null
 * value is a gap (NaN). */
#ifndef SPO_METRICS_H
#define SPO_METRICS_H

#include "io/plot.h"

typedef struct {
    double *x, *y;
    int n, cap;
} spo_series;

typedef struct {
    spo_series step_loss, round_loss, win, val;
} spo_metrics;

/* Read path ("-": stdin). SPO_EINVAL naming the file and line for a line
 * that is not a JSON object or a value that is not a number, SPO_EIO for a
 * read error or no memory. On failure *m holds nothing. */
int spo_metrics_read(spo_metrics *m, const char *path);
void spo_metrics_free(spo_metrics *m);

/* Two panels on c: the loss per step and per round above, the mean scores
 * (pool winners, validation) below, against the optimizer step. */
int spo_metrics_plot(spo_canvas *c, const spo_metrics *m);

#endif
