/* loop_state.c — initial state, pool metadata and LoRA tags (see loop_state.h). */
#include "spo/loop_state.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spo/ddim.h"
#include "core/err.h"
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
