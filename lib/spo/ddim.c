/* ddim.c — DDIM scheduler, as diffusers DDIMScheduler computes it (see ddim.h). */
#include "spo/ddim.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/err.h"
#include "io/jsoncfg.h"

/* torch.linspace for float32 on the CPU: step in float, first half counted
 * from the start, second half from the end. */
static void linspace_f32(float *out, int n, float a, float b)
{
    float step = n > 1 ? (b - a) / (float)(n - 1) : 0.0f;
    int half = n / 2;
    for (int i = 0; i < n; i++) out[i] = i < half ? a + step * (float)i : b - step * (float)(n - i - 1);
}

static int make_schedule(spo_ddim *s, int n, double beta_start, double beta_end, int scaled, int alpha_one)
{
    if (n < 2 || n > SPO_MAX_TRAIN_STEPS) return spo_err(SPO_EINVAL, "num_train_timesteps %d out of range", n);
    float *betas = malloc((size_t)n * sizeof *betas);
    if (!betas) return spo_err(SPO_EIO, "out of memory");
    if (scaled) {
        linspace_f32(betas, n, (float)sqrt(beta_start), (float)sqrt(beta_end));
        for (int i = 0; i < n; i++) betas[i] = betas[i] * betas[i];
    } else
        linspace_f32(betas, n, (float)beta_start, (float)beta_end);
    float acc = 1.0f;
    for (int i = 0; i < n; i++) {
        acc *= 1.0f - betas[i];
        s->alphas_cumprod[i] = acc;
    }
    free(betas);
    s->num_train = n;
    s->final_alpha_cumprod = alpha_one ? 1.0f : s->alphas_cumprod[0];
    return SPO_OK;
}

void spo_ddim_sd15(spo_ddim *s)
{
    memset(s, 0, sizeof *s);
    make_schedule(s, 1000, 0.00085, 0.012, 1, 0);
    s->steps_offset = 1;
    s->spacing = 0;
    spo_ddim_set_steps(s, 20);
}

int spo_ddim_set_steps(spo_ddim *s, int n)
{
    if (n < 1 || n > s->num_train || n > SPO_MAX_INFER_STEPS)
        return spo_err(SPO_EINVAL, "number of inference steps %d out of range 1..%d", n, s->num_train);
    s->num_steps = n;
    if (s->spacing == 0) { /* leading: (arange(n) * (N // n)).round()[::-1] + offset */
        int r = s->num_train / n;
        for (int i = 0; i < n; i++) s->timesteps[i] = (n - 1 - i) * r + s->steps_offset;
    } else if (s->spacing == 1) { /* trailing: round(arange(N, 0, -N/n)) - 1 */
        double r = (double)s->num_train / n;
        for (int i = 0; i < n; i++) s->timesteps[i] = (int)nearbyint(s->num_train - i * r) - 1;
    } else { /* linspace(0, N - 1, n).round()[::-1] */
        for (int i = 0; i < n; i++)
            s->timesteps[i] = (int)nearbyint((double)(s->num_train - 1) * (n - 1 - i) / (n > 1 ? n - 1 : 1));
    }
    return SPO_OK;
}

int spo_ddim_prev(const spo_ddim *s, int t) { return t - s->num_train / s->num_steps; }

float spo_ddim_abar(const spo_ddim *s, int t)
{
    if (t < 0) return s->final_alpha_cumprod;
    if (t >= s->num_train) t = s->num_train - 1;
    return s->alphas_cumprod[t];
}

float spo_ddim_sigma(const spo_ddim *s, int t, int prev, float eta)
{
    float a = spo_ddim_abar(s, t), ap = spo_ddim_abar(s, prev);
    float b = 1.0f - a, bp = 1.0f - ap;
    float var = (bp / b) * (1.0f - a / ap);
    return eta * sqrtf(var);
}

void spo_ddim_mean(const spo_ddim *s, int t, int prev, float eta, const float *x, const float *eps, float *x0_hat,
                   float *mu, float *sigma, size_t n)
{
    float a = spo_ddim_abar(s, t), ap = spo_ddim_abar(s, prev);
    float sb = sqrtf(1.0f - a), sa = sqrtf(a), sap = sqrtf(ap);
    float sd = spo_ddim_sigma(s, t, prev, eta);
    float dir = sqrtf(1.0f - ap - sd * sd);
    for (size_t i = 0; i < n; i++) {
        float x0 = (x[i] - sb * eps[i]) / sa;
        if (x0_hat) x0_hat[i] = x0;
        mu[i] = sap * x0 + dir * eps[i];
    }
    *sigma = sd;
}

void spo_ddim_add_noise(float *x_prev, const float *mu, float sigma, const float *z, size_t n)
{
    for (size_t i = 0; i < n; i++) x_prev[i] = mu[i] + sigma * z[i];
}

double spo_ddim_logprob(const float *x_prev, const float *mu, float sigma, size_t n)
{
    double s2 = 2.0 * (double)sigma * sigma, c = log((double)sigma) + 0.5 * log(2.0 * M_PI), acc = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)x_prev[i] - mu[i];
        acc += -d * d / s2 - c;
    }
    return n ? acc / (double)n : 0.0;
}

/* ---- scheduler_config.json ------------------------------------------------- */

/* The index of str in the NULL-ended names, or SPO_EINVAL naming the key. */
static int one_of(const cJSON *j, const char *key, const char *def, const char *const *names, int *idx)
{
    const char *v;
    SPO_TRY(spo_cfg_str(j, key, def, &v));
    for (int i = 0; names[i]; i++)
        if (!strcmp(v, names[i])) return *idx = i, SPO_OK;
    char list[128] = "";
    for (int i = 0; names[i]; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
    return spo_err(SPO_EINVAL, "%s: '%s' \"%.64s\" is not supported (%s)", spo_cfg_name(j), key, v, list);
}

int spo_ddim_check_betas(double beta_start, double beta_end)
{
    if (!(beta_start > 0 && beta_start < 1))
        return spo_err(SPO_EINVAL, "'beta_start' %g is not in (0, 1)", beta_start);
    if (!(beta_end > 0 && beta_end < 1)) return spo_err(SPO_EINVAL, "'beta_end' %g is not in (0, 1)", beta_end);
    if (beta_start > beta_end)
        return spo_err(SPO_EINVAL, "'beta_start' %g is greater than 'beta_end' %g", beta_start, beta_end);
    return SPO_OK;
}

int spo_ddim_check(const spo_ddim *s)
{
    if (s->num_train < 2 || s->num_train > SPO_MAX_TRAIN_STEPS)
        return spo_err(SPO_EINVAL, "'num_train_timesteps' %d is not in 2..%d", s->num_train, SPO_MAX_TRAIN_STEPS);
    float prev = 1.0f;
    for (int t = 0; t < s->num_train; t++) {
        float a = s->alphas_cumprod[t];
        if (!(a > SPO_MIN_ALPHA_CUMPROD && a < prev))
            return spo_err(SPO_EINVAL,
                           "the betas give alphas_cumprod[%d] = %g (must fall from 1 and stay above %g: no step "
                           "may be all noise)",
                           t, a, SPO_MIN_ALPHA_CUMPROD);
        prev = a;
    }
    if (s->steps_offset < 0 || s->steps_offset >= s->num_train)
        return spo_err(SPO_EINVAL, "'steps_offset' %d is not in 0..%d", s->steps_offset, s->num_train - 1);
    if (s->spacing < 0 || s->spacing > 2) return spo_err(SPO_EINVAL, "timestep spacing %d is unknown", s->spacing);
    return SPO_OK;
}

/* Read and check one scheduler config object (messages name its file). */
static int from_json(spo_ddim *s, const cJSON *j)
{
    static const char *const schedules[] = {"linear", "scaled_linear", NULL};
    static const char *const preds[] = {"epsilon", NULL};
    static const char *const spacings[] = {"leading", "trailing", "linspace", NULL};
    static const char *const falses[] = {"clip_sample", "thresholding", "rescale_betas_zero_snr"};
    const char *file = spo_cfg_name(j);
    int sched, pred, n, alpha_one, flag;
    double b0, b1;
    memset(s, 0, sizeof *s);
    SPO_TRY(one_of(j, "beta_schedule", "linear", schedules, &sched));
    SPO_TRY(one_of(j, "prediction_type", "epsilon", preds, &pred));
    SPO_TRY(one_of(j, "timestep_spacing", "leading", spacings, &s->spacing));
    for (int i = 0; i < 3; i++) {
        SPO_TRY(spo_cfg_bool(j, falses[i], 0, &flag));
        if (flag) return spo_err(SPO_EINVAL, "%s: '%s' true is not supported", file, falses[i]);
    }
    if (cJSON_GetObjectItemCaseSensitive(j, "trained_betas") &&
        !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "trained_betas")))
        return spo_err(SPO_EINVAL, "%s: 'trained_betas' is not supported", file);
    SPO_TRY(spo_cfg_int(j, "num_train_timesteps", 1000, &n));
    if (n < 2 || n > SPO_MAX_TRAIN_STEPS)
        return spo_err(SPO_EINVAL, "%s: 'num_train_timesteps' %d is not in 2..%d", file, n, SPO_MAX_TRAIN_STEPS);
    SPO_TRY(spo_cfg_double(j, "beta_start", 0.0001, &b0));
    SPO_TRY(spo_cfg_double(j, "beta_end", 0.02, &b1));
    SPO_TRY(spo_cfg_bool(j, "set_alpha_to_one", 1, &alpha_one));
    SPO_TRY(spo_cfg_int(j, "steps_offset", 0, &s->steps_offset));
    int rc = spo_ddim_check_betas(b0, b1);
    if (!rc) rc = make_schedule(s, n, b0, b1, sched == 1, alpha_one);
    if (!rc) rc = spo_ddim_check(s);
    if (!rc) rc = spo_ddim_set_steps(s, n >= 20 ? 20 : n);
    return rc ? spo_err_prefix(rc, "%s", file) : SPO_OK;
}

int spo_ddim_load(spo_ddim *s, const char *path)
{
    char file[4096];
    struct stat st;
    int k = stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? snprintf(file, sizeof file, "%s/scheduler_config.json", path)
                                                         : snprintf(file, sizeof file, "%s", path);
    if (k < 0 || (size_t)k >= sizeof file) return spo_err(SPO_EINVAL, "%s: path too long", path);
    cJSON *j;
    SPO_TRY(spo_cfg_load(&j, file));
    int rc = from_json(s, j);
    cJSON_Delete(j);
    return rc;
}
