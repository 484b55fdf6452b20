/* scorers.c — built-in image scorers (see scorers.h). */
#include "spo/scorers.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

static float unit(float x)
{
    x = x / 2 + 0.5f;
    return x < 0 ? 0 : x > 1 ? 1 : x;
}

static double saturation(const float *img, int h, int w)
{
    size_t hw = (size_t)h * w;
    double sum = 0;
    for (size_t i = 0; i < hw; i++) {
        float r = unit(img[i]), g = unit(img[hw + i]), b = unit(img[2 * hw + i]);
        float mx = fmaxf(r, fmaxf(g, b)), mn = fminf(r, fminf(g, b));
        if (mx > 0) sum += (double)(mx - mn) / mx;
    }
    return sum / (double)hw;
}

/* the flipped preference: a run trained on it must lower the saturation */
static double desaturation(const float *img, int h, int w) { return 1.0 - saturation(img, h, w); }

static double colorfulness(const float *img, int h, int w)
{
    size_t hw = (size_t)h * w;
    double s_rg = 0, s_yb = 0, q_rg = 0, q_yb = 0;
    for (size_t i = 0; i < hw; i++) {
        double r = unit(img[i]), g = unit(img[hw + i]), b = unit(img[2 * hw + i]);
        double rg = r - g, yb = 0.5 * (r + g) - b;
        s_rg += rg, s_yb += yb, q_rg += rg * rg, q_yb += yb * yb;
    }
    double m_rg = s_rg / hw, m_yb = s_yb / hw;
    double v_rg = fmax(q_rg / hw - m_rg * m_rg, 0), v_yb = fmax(q_yb / hw - m_yb * m_yb, 0);
    return sqrt(v_rg + v_yb) + 0.3 * sqrt(m_rg * m_rg + m_yb * m_yb);
}

static const spo_scorer scorers[] = {
    {"saturation", "mean HSV saturation of the image, in [0, 1]", 1.0, saturation},
    {"desaturation", "1 - mean HSV saturation, in [0, 1] (saturation's flipped preference)", 1.0, desaturation},
    {"colorfulness", "Hasler-Suesstrunk colourfulness on [0, 1] RGB, in [0, 1.16726]", 1.1672617529928753,
     colorfulness},
};

int spo_scorer_count(void) { return (int)(sizeof scorers / sizeof scorers[0]); }

const spo_scorer *spo_scorer_get(int i) { return i >= 0 && i < spo_scorer_count() ? &scorers[i] : NULL; }

const spo_scorer *spo_scorer_find(const char *name)
{
    for (int i = 0; name && i < spo_scorer_count(); i++)
        if (!strcmp(scorers[i].name, name)) return &scorers[i];
    spo_err(SPO_EINVAL, "unknown scorer '%s' (saturation, desaturation or colorfulness)", name ? name : "");
    return NULL;
}

int spo_scorer_run(const spo_scorer *s, const float *img, int n, int h, int w, float *scores)
{
    if (!s || !img || !scores || n < 1 || h < 1 || w < 1)
        return spo_err(SPO_EINVAL, "scorer: bad arguments n=%d h=%d w=%d", n, h, w);
    size_t sz = (size_t)3 * h * w;
    for (int i = 0; i < n; i++) scores[i] = (float)s->fn(img + i * sz, h, w);
    return SPO_OK;
}
