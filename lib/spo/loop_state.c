/* loop_state.c — initial state, pool metadata and LoRA tags (see loop_state.h). */
#include "spo/loop_state.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spo/ddim.h"
#include "core/err.h"
#include "io/h5rows.h"
#include "io/jsoncfg.h"
#include "io/modeldir.h"
#include "core/philox.h"

int spo_init_defaults(spo_init_opts *o, int num_steps)
{
    spo_ddim s;
    spo_ddim_sd15(&s);
    int rc = spo_ddim_set_steps(&s, num_steps);
    if (rc) return rc;
    o->num_steps = num_steps;
    o->timestep = s.timesteps[0];
    o->C = 4;
    o->h = o->w = 64;
    return SPO_OK;
}

/* unet sample_size: an integer (square) or [h, w]. */
static int sample_size(const cJSON *cfg, int *h, int *w)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, "sample_size");
    int rc = spo_cfg_require(cfg, "sample_size");
    if (rc) return rc;
    if (cJSON_IsArray(v)) {
        int hw[2], n = 0;
        if ((rc = spo_cfg_int_array(cfg, "sample_size", hw, 2, &n))) return rc;
        if (n != 2) return spo_err(SPO_EINVAL, "%s: 'sample_size' must be an integer or [h, w]", spo_cfg_name(cfg));
        *h = hw[0], *w = hw[1];
    } else {
        if ((rc = spo_cfg_int(cfg, "sample_size", 0, h))) return rc;
        *w = *h;
    }
    if (*h < 1 || *w < 1 || *h > 4096 || *w > 4096)
        return spo_err(SPO_EINVAL, "%s: 'sample_size' %dx%d out of range", spo_cfg_name(cfg), *h, *w);
    return SPO_OK;
}

int spo_init_from_model(spo_init_opts *o, const char *model_dir, int num_steps)
{
    spo_modeldir *md;
    int rc = spo_md_open(&md, model_dir);
    if (rc) return rc;
    cJSON *cfg = NULL;
    char path[4096];
    spo_ddim s;
    if ((rc = spo_md_config(md, "unet", &cfg))) goto out;
    if ((rc = sample_size(cfg, &o->h, &o->w))) goto out;
    if ((rc = spo_cfg_int(cfg, "in_channels", 4, &o->C))) goto out;
    if (o->C < 1 || o->C > 64) {
        rc = spo_err(SPO_EINVAL, "%s: 'in_channels' %d out of range", spo_cfg_name(cfg), o->C);
        goto out;
    }
    if ((rc = spo_md_file(md, "scheduler", "scheduler_config.json", path, sizeof path))) goto out;
    if ((rc = spo_ddim_load(&s, path))) goto out;
    if ((rc = spo_ddim_set_steps(&s, num_steps))) goto out;
    o->num_steps = num_steps;
    o->timestep = s.timesteps[0];
out:
    cJSON_Delete(cfg);
    spo_md_close(md);
    return rc;
}

void spo_init_noise(float *x, size_t n, uint64_t seed, uint32_t prompt_id)
{
    spo_normal_fill(x, n, seed, prompt_id, SPO_STEP_INIT_NOISE, 0);
}

int spo_prompt_u32(int64_t id, const char *file, uint32_t *out)
{
    if (id < 0 || id > (int64_t)UINT32_MAX)
        return spo_err(SPO_EINVAL, "%s: prompt id %" PRId64 " out of range 0..%" PRIu32, file, id, UINT32_MAX);
    *out = (uint32_t)id;
    return SPO_OK;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Read /prompt_id [n] of f; check range and that no id repeats. */
static int read_ids(const spo_h5 *f, int64_t **ids, int64_t *n)
{
    spo_dsinfo di;
    int rc = spo_h5_info(f, "/prompt_id", &di);
    if (rc) return rc;
    *n = di.ndim == 1 ? di.shape[0] : 0;
    int64_t *v = malloc(((size_t)*n + 1) * sizeof *v), *sorted = malloc(((size_t)*n + 1) * sizeof *v);
    if (!v || !sorted) {
        free(v), free(sorted);
        return spo_err(SPO_EIO, "out of memory");
    }
    rc = spo_h5_read_i64(f, "/prompt_id", v, (size_t)*n);
    for (int64_t i = 0; i < *n && !rc; i++) {
        uint32_t u;
        rc = spo_prompt_u32(v[i], spo_h5_path(f), &u);
    }
    if (!rc) {
        memcpy(sorted, v, (size_t)*n * sizeof *v);
        qsort(sorted, (size_t)*n, sizeof *sorted, cmp_i64);
        for (int64_t i = 1; i < *n && !rc; i++)
            if (sorted[i] == sorted[i - 1])
                rc = spo_err(SPO_EINVAL, "%s: prompt id %" PRId64 " appears more than once", spo_h5_path(f), sorted[i]);
    }
    free(sorted);
    if (rc) free(v);
    else *ids = v;
    return rc;
}

int spo_state_init(spo_h5 *out, const spo_h5 *embeds, const spo_init_opts *o)
{
    char model_id[SPO_ID_MAX];
    int64_t *ids = NULL, P = 0;
    int rc = spo_h5_get_attr_str(embeds, NULL, "model_id", model_id, sizeof model_id);
    if (rc || (rc = read_ids(embeds, &ids, &P))) return rc;
    size_t n = (size_t)o->C * (size_t)o->h * (size_t)o->w;
    float *x = malloc(n * sizeof *x);
    if (!x) {
        free(ids);
        return spo_err(SPO_EIO, "out of memory");
    }
    int64_t shape[4] = {P, o->C, o->h, o->w};
    /* latents [P,C,h,w], one prompt at a time */
    rc = spo_h5_create_rows(out, "/latents", SPO_T_F32, 4, shape);
    for (int64_t b = 0; b < P && !rc; b++) {
        spo_init_noise(x, n, o->seed, (uint32_t)ids[b]);
        rc = spo_h5_write_rows(out, "/latents", SPO_T_F32, b, 1, x);
    }
    if (!rc) rc = spo_h5_write(out, "/prompt_id", SPO_T_I64, 1, &P, ids);
    if (!rc) rc = spo_h5_attr_str(out, NULL, "model_id", model_id);
    if (!rc) rc = spo_h5_attr_str(out, NULL, "lora_id", "none");
    if (!rc) rc = spo_h5_attr_int(out, NULL, "seed", (int64_t)o->seed);
    if (!rc) rc = spo_h5_attr_int(out, NULL, "step", 0);
    if (!rc) rc = spo_h5_attr_int(out, NULL, "num_steps", o->num_steps);
    if (!rc) rc = spo_h5_attr_int(out, NULL, "timestep", o->timestep);
    free(x);
    free(ids);
    return rc;
}

int spo_pool_meta(const spo_h5 *f, spo_poolmeta *m)
{
    memset(m, 0, sizeof *m);
    spo_dsinfo di;
    int rc = spo_h5_get_attr_str(f, NULL, "model_id", m->model_id, sizeof m->model_id);
    if (!rc) rc = spo_h5_get_attr_str(f, NULL, "lora_id", m->lora_id, sizeof m->lora_id);
    if (!rc) rc = spo_h5_get_attr_int(f, NULL, "seed", &m->seed);
    if (!rc) rc = spo_h5_get_attr_int(f, NULL, "step", &m->step);
    if (!rc) rc = spo_h5_get_attr_int(f, NULL, "num_steps", &m->num_steps);
    if (!rc) rc = spo_h5_get_attr_int(f, NULL, "timestep", &m->timestep);
    if (!rc) rc = spo_h5_get_attr_int(f, NULL, "child_timestep", &m->child_timestep);
    if (!rc) rc = spo_h5_get_attr_float(f, NULL, "guidance", &m->guidance);
    if (!rc) rc = spo_h5_get_attr_float(f, NULL, "eta", &m->eta);
    if (!rc) rc = spo_h5_info(f, "/children", &di);
    if (rc) return rc;
    if (di.ndim != 5) return spo_err(SPO_EINVAL, "%s: /children has rank %d, expected 5", spo_h5_path(f), di.ndim);
    m->B = di.shape[0], m->K = di.shape[1], m->C = di.shape[2], m->h = di.shape[3], m->w = di.shape[4];
    m->has_eps = spo_h5_exists(f, "/eps");
    if (m->num_steps < 1 || m->num_steps > SPO_MAX_INFER_STEPS)
        return spo_err(SPO_EINVAL, "%s: num_steps %" PRId64 " out of range 1..%d", spo_h5_path(f), m->num_steps,
                       SPO_MAX_INFER_STEPS);
    if (m->step < 0 || m->step >= m->num_steps)
        return spo_err(SPO_EINVAL, "%s: step %" PRId64 " out of range 0..%" PRId64, spo_h5_path(f), m->step,
                       m->num_steps - 1);
    if (m->K < 1) return spo_err(SPO_EINVAL, "%s: pool has no children (K = 0)", spo_h5_path(f));
    return SPO_OK;
}
