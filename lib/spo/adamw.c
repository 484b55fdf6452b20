/* adamw.c — gradient-norm clipping and AdamW, in the arithmetic of
 * torch.nn.utils.clip_grad_norm_ and torch.optim.AdamW (single-tensor, fp32
 * tensors, scalars rounded to float as torch's CPU kernels do). */
#include <math.h>

#include "spo/update.h"

double spo_clip_grad_norm(float *g, size_t n, double max_norm)
{
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
    double norm = sqrt(ss);
    if (max_norm > 0) {
        float coef = (float)(max_norm / (norm + 1e-6));
        if (coef < 1.0f)
            for (size_t i = 0; i < n; i++) g[i] *= coef;
    }
    return norm;
}

void spo_adamw_step(const spo_adamw_cfg *c, int64_t step, float *p, const float *g, float *m, float *v, size_t n)
{
    float decay = (float)(1.0 - c->lr * c->weight_decay);
    float w1 = (float)(1.0 - c->beta1), b2 = (float)c->beta2, w2 = (float)(1.0 - c->beta2);
    double bc1 = 1.0 - pow(c->beta1, (double)step), bc2 = 1.0 - pow(c->beta2, (double)step);
    float step_size = (float)(c->lr / bc1), bc2_sqrt = (float)sqrt(bc2), eps = (float)c->eps;
    for (size_t i = 0; i < n; i++) {
        p[i] *= decay;
        m[i] += w1 * (g[i] - m[i]); /* lerp(m, g, 1 - beta1) */
        v[i] = v[i] * b2 + w2 * g[i] * g[i];
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] += -step_size * (m[i] / denom);
    }
}
