/* scorers.h — built-in image scorers: cheap stand-ins for the step-aware
 * preference model with a known optimum, so a training run can be checked
 * end to end (spo-score --scorer NAME). Host memory; no model, no timestep.
 *
 * Images come as the VAE gives them, (n,3,h,w) RGB in [-1, 1]; each value
 * is mapped to [0, 1] by x / 2 + 0.5 and clamped, then:
 *
 * saturation    mean over pixels of the HSV saturation (max - min) / max
 *               (0 where max = 0). Range [0, 1]; optimum 1, reached by any
 *               image whose every pixel has one channel at 0 and another
 *               above 0 (pure red, green, blue, yellow, cyan, magenta...).
 * colorfulness  Hasler & Suesstrunk (2003), on [0, 1] values instead of
 *               [0, 255]: rg = R - G, yb = (R + G) / 2 - B per pixel,
 *               M = sqrt(sd_rg^2 + sd_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2)
 *               with population standard deviations. Range [0, sqrt(1.3625)]:
 *               (rg, yb) lies in the hexagon of the RGB cube's corners,
 *               where |(rg, yb)|^2 <= 1.25 (red, cyan, green, magenta), so
 *               M <= max_m sqrt(1.25 - m^2) + 0.3 m = sqrt(1.25 * 1.09)
 *               = 1.16726, reached by an image of red and cyan pixels only
 *               (or green and magenta) in the ratio 64.37 : 35.63, i.e. a
 *               mean of length m = 0.3 sqrt(1.25 / 1.09) = 0.32126.
 *               A flat image scores 0.3 |(rg, yb)|; a grey one 0. */
#ifndef SPO_SCORERS_H
#define SPO_SCORERS_H

#include "core/err.h"

typedef struct {
    const char *name;    /* "saturation", "colorfulness" */
    const char *summary; /* one line for --help */
    double optimum;      /* the highest score any image can get */
    /* one image (3,h,w) in [-1, 1] -> *score */
    double (*fn)(const float *img, int h, int w);
} spo_scorer;

int spo_scorer_count(void);
const spo_scorer *spo_scorer_get(int i);
/* The scorer called name, or NULL with SPO_EINVAL set listing the names. */
const spo_scorer *spo_scorer_find(const char *name);
/* img (n,3,h,w) host in [-1, 1] -> scores (n) */
int spo_scorer_run(const spo_scorer *s, const float *img, int n, int h, int w, float *scores);

#endif
