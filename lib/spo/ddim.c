/* ddim.c — DDIM scheduler, as diffusers DDIMScheduler computes it (see ddim.h). */
#include "spo/ddim.h"
#include "core/infile.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/err.h"

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
static char *slurp(const char *path, size_t *len)
{
    FILE *fp;
    if (spo_fopen_in(&fp, path)) return NULL;
    char *b = NULL;
    if (fseek(fp, 0, SEEK_END) == 0) {
        long n = ftell(fp);
        if (n >= 0 && n < (1 << 24) && fseek(fp, 0, SEEK_SET) == 0 && (b = malloc((size_t)n + 1))) {
            *len = fread(b, 1, (size_t)n, fp);
            b[*len] = 0;
        }
    }
    fclose(fp);
    return b;
}

int spo_ddim_load(spo_ddim *s, const char *path)
{
    char file[4096];
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) snprintf(file, sizeof file, "%s/scheduler_config.json", path);
    else snprintf(file, sizeof file, "%s", path);
    size_t len = 0;
    char *txt = slurp(file, &len);
    if (!txt) return spo_err(SPO_EINVAL, "%s: cannot read scheduler config", file);
    cJSON *j = cJSON_ParseWithLength(txt, len);
    free(txt);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return spo_err(SPO_EINVAL, "%s: not a JSON object", file);
    }
    int rc = SPO_OK;
    const cJSON *v;
#define NUM(key, dflt) ((v = cJSON_GetObjectItemCaseSensitive(j, key)) && cJSON_IsNumber(v) ? v->valuedouble : (dflt))
#define STR(key, dflt) ((v = cJSON_GetObjectItemCaseSensitive(j, key)) && cJSON_IsString(v) ? v->valuestring : (dflt))
#define TRUE(key) cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, key))
    const char *sched = STR("beta_schedule", "linear"), *pred = STR("prediction_type", "epsilon");
    const char *spacing = STR("timestep_spacing", "leading");
    const cJSON *tb = cJSON_GetObjectItemCaseSensitive(j, "trained_betas");
    memset(s, 0, sizeof *s);
    if (strcmp(sched, "scaled_linear") && strcmp(sched, "linear"))
        rc = spo_err(SPO_EINVAL, "%s: beta_schedule '%s' is not supported (scaled_linear, linear)", file, sched);
    else if (strcmp(pred, "epsilon"))
        rc = spo_err(SPO_EINVAL, "%s: prediction_type '%s' is not supported (epsilon)", file, pred);
    else if (TRUE("clip_sample") || TRUE("thresholding") || TRUE("rescale_betas_zero_snr"))
        rc = spo_err(SPO_EINVAL, "%s: clip_sample, thresholding and rescale_betas_zero_snr must be false", file);
    else if (tb && !cJSON_IsNull(tb))
        rc = spo_err(SPO_EINVAL, "%s: trained_betas is not supported", file);
    else if (strcmp(spacing, "leading") && strcmp(spacing, "trailing") && strcmp(spacing, "linspace"))
        rc = spo_err(SPO_EINVAL, "%s: timestep_spacing '%s' is not supported", file, spacing);
    else {
        double n = NUM("num_train_timesteps", 1000);
        if (n != (int)n || n < 2 || n > SPO_MAX_TRAIN_STEPS)
            rc = spo_err(SPO_EINVAL, "%s: num_train_timesteps must be an integer 2..%d", file, SPO_MAX_TRAIN_STEPS);
        else {
            double b0 = NUM("beta_start", 0.0001);
            double b1 = NUM("beta_end", 0.02);
            rc = make_schedule(s, (int)n, b0, b1, !strcmp(sched, "scaled_linear"), TRUE("set_alpha_to_one"));
        }
        s->steps_offset = (int)NUM("steps_offset", 0);
        s->spacing = !strcmp(spacing, "leading") ? 0 : !strcmp(spacing, "trailing") ? 1 : 2;
        if (!rc) rc = spo_ddim_set_steps(s, s->num_train >= 20 ? 20 : s->num_train);
    }
#undef NUM
#undef STR
#undef TRUE
    cJSON_Delete(j);
    return rc;
}
