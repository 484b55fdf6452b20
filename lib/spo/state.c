/* state.c — reading, checking and writing state/1 files (see state.h). */
#include "spo/state.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "io/h5rows.h"
#include "spo/ddim.h"
#include "spo/loopfile.h"

int spo_state_meta(const spo_h5 *f, spo_statemeta *m)
{
    memset(m, 0, sizeof *m);
    const char *p = spo_h5_path(f);
    spo_dsinfo di;
    const spo_loopattrs *at = &m->attrs;
    int rc = spo_loopattrs_read(f, &m->attrs);
    if (!rc) rc = spo_h5_info(f, "/latents", &di);
    if (rc) return rc;
    if (di.ndim != 4) return spo_err(SPO_EINVAL, "%s: /latents has rank %d, expected 4", p, di.ndim);
    m->B = di.shape[0], m->C = di.shape[1], m->h = di.shape[2], m->w = di.shape[3];
    m->has_eps = spo_h5_exists(f, "/eps");
    m->has_guidance = spo_h5_get_attr_float(f, NULL, "guidance", &m->guidance) == SPO_OK;
    rc = spo_dim_check(p, "num_steps", at->num_steps, 1, SPO_MAX_INFER_STEPS);
    if (!rc) rc = spo_dim_check(p, "step", at->step, 0, at->num_steps);
    if (!rc) rc = spo_dim_check(p, "timestep", at->timestep, -SPO_MAX_TIMESTEP - 1, SPO_MAX_TIMESTEP);
    if (!rc) rc = spo_dim_check(p, "/latents C", m->C, 1, SPO_MAX_LATENT_CHANNELS);
    if (!rc) rc = spo_dim_check(p, "/latents h", m->h, 1, SPO_MAX_LATENT_SIDE);
    if (!rc) rc = spo_dim_check(p, "/latents w", m->w, 1, SPO_MAX_LATENT_SIDE);
    if (!rc) rc = spo_size_check(p, "/latents", di.shape, 4, 0, sizeof(float), NULL);
    if (!rc) rc = spo_storage_check(f, "/latents");
    if (!rc) rc = spo_storage_check(f, "/prompt_id");
    if (!rc && m->has_eps) rc = spo_storage_check(f, "/eps");
    return rc;
}

int spo_state_read(const spo_h5 *f, const spo_statemeta *m, float *x, int64_t *ids, float *eps)
{
    size_t n = (size_t)m->B * (size_t)(m->C * m->h * m->w);
    int rc = spo_h5_read_f32(f, "/latents", x, n);
    if (!rc) rc = spo_h5_read_i64(f, "/prompt_id", ids, (size_t)m->B);
    for (int64_t b = 0; b < m->B && !rc; b++) {
        uint32_t u;
        rc = spo_prompt_u32(ids[b], spo_h5_path(f), &u);
    }
    if (!rc && eps) rc = spo_h5_read_f32(f, "/eps", eps, n);
    return rc;
}

/* Read /prompt_id [n] of an embeds file; check range and that no id repeats. */
static int read_ids(const spo_h5 *f, int64_t **ids, int64_t *n)
{
    spo_dsinfo di;
    int rc = spo_h5_info(f, "/prompt_id", &di);
    if (rc) return rc;
    *n = di.ndim == 1 ? di.shape[0] : 0;
    if ((rc = spo_storage_check(f, "/prompt_id"))) return rc;
    if ((rc = spo_size_check(spo_h5_path(f), "/prompt_id", n, 1, 0, sizeof(int64_t), NULL))) return rc;
    int64_t *v = malloc(((size_t)*n + 1) * sizeof *v);
    if (!v) return spo_err(SPO_EIO, "out of memory");
    rc = spo_h5_read_i64(f, "/prompt_id", v, (size_t)*n);
    for (int64_t i = 0; i < *n && !rc; i++) {
        uint32_t u;
        rc = spo_prompt_u32(v[i], spo_h5_path(f), &u);
    }
    if (!rc) rc = spo_ids_distinct(v, *n, spo_h5_path(f));
    if (rc) free(v);
    else *ids = v;
    return rc;
}

int spo_state_init(spo_h5 *out, const spo_h5 *embeds, const spo_init_opts *o)
{
    spo_loopattrs m = {.seed = (int64_t)o->seed, .step = 0, .num_steps = o->num_steps, .timestep = o->timestep};
    int64_t *ids = NULL, P = 0;
    int rc = spo_h5_get_attr_str(embeds, NULL, "model_id", m.model_id, sizeof m.model_id);
    if (rc || (rc = read_ids(embeds, &ids, &P))) return rc;
    strcpy(m.lora_id, "none");
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
    if (!rc) rc = spo_loopattrs_write(out, &m);
    free(x);
    free(ids);
    return rc;
}
