/* pool.c — reading, checking and writing pool/1 files (see pool.h). */
#include "spo/pool.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "core/err.h"
#include "spo/ddim.h"
#include "spo/loopfile.h"

static int check(const spo_h5 *f, const spo_poolmeta *m)
{
    const char *p = spo_h5_path(f);
    int64_t d5[5] = {m->B, m->K, m->C, m->h, m->w};
    const spo_loopattrs *at = &m->attrs;
    int rc = spo_dim_check(p, "num_steps", at->num_steps, 1, SPO_MAX_INFER_STEPS);
    if (!rc) rc = spo_dim_check(p, "step", at->step, 0, at->num_steps - 1);
    if (!rc) rc = spo_timestep_check(p, "timestep", at->timestep);
    if (!rc) rc = spo_dim_check(p, "child_timestep", m->child_timestep, -SPO_MAX_TIMESTEP - 1, at->timestep);
    if (!rc) rc = spo_dim_check(p, "inner_steps", m->inner, 0, at->num_steps - at->step - 1);
    if (!rc) rc = spo_dim_check(p, "end_timestep", m->end_timestep, 0, m->child_timestep < 0 ? 0 : m->child_timestep);
    if (!rc && !isfinite(m->guidance)) rc = spo_err(SPO_EINVAL, "%s: guidance %g is not finite", p, m->guidance);
    if (!rc && !isfinite(m->eta)) rc = spo_err(SPO_EINVAL, "%s: eta %g is not finite", p, m->eta);
    if (!rc && m->K < 1) rc = spo_err(SPO_EINVAL, "%s: pool has no children (K = 0)", p);
    if (!rc) rc = spo_dim_check(p, "/children K", m->K, 1, SPO_MAX_CHILDREN);
    if (!rc) rc = spo_dim_check(p, "/children C", m->C, 1, SPO_MAX_LATENT_CHANNELS);
    if (!rc) rc = spo_dim_check(p, "/children h", m->h, 1, SPO_MAX_LATENT_SIDE);
    if (!rc) rc = spo_dim_check(p, "/children w", m->w, 1, SPO_MAX_LATENT_SIDE);
    if (!rc) rc = spo_size_check(p, "/children", d5, 5, 0, sizeof(float), NULL);
    static const char *const ds[] = {"/prompt_id", "/parent", "/parent_eps", "/children", "/x0_hat", "/eps", "/inner"};
    for (int i = 0; i < 7 && !rc; i++)
        if (i < 5 || (i == 5 && m->has_eps) || (i == 6 && m->inner)) rc = spo_storage_check(f, ds[i]);
    return rc;
}

int spo_pool_meta(const spo_h5 *f, spo_poolmeta *m)
{
    memset(m, 0, sizeof *m);
    spo_dsinfo di;
    int rc = spo_loopattrs_read(f, &m->attrs);
    if (!rc) rc = spo_h5_get_attr_int(f, NULL, "child_timestep", &m->child_timestep);
    if (!rc) rc = spo_h5_get_attr_float(f, NULL, "guidance", &m->guidance);
    if (!rc) rc = spo_h5_get_attr_float(f, NULL, "eta", &m->eta);
    if (!rc && spo_h5_has_attr(f, NULL, "text_clean"))
        rc = spo_h5_get_attr_str(f, NULL, "text_clean", m->text_clean, sizeof m->text_clean);
    if (!rc) rc = spo_h5_info(f, "/children", &di);
    if (rc) return rc;
    if (di.ndim != 5) return spo_err(SPO_EINVAL, "%s: /children has rank %d, expected 5", spo_h5_path(f), di.ndim);
    m->B = di.shape[0], m->K = di.shape[1], m->C = di.shape[2], m->h = di.shape[3], m->w = di.shape[4];
    m->has_eps = spo_h5_exists(f, "/eps");
    m->end_timestep = m->child_timestep < 0 ? 0 : m->child_timestep;
    if (spo_h5_has_attr(f, NULL, "inner_steps") && (rc = spo_h5_get_attr_int(f, NULL, "inner_steps", &m->inner)))
        return rc;
    if (spo_h5_has_attr(f, NULL, "end_timestep") &&
        (rc = spo_h5_get_attr_int(f, NULL, "end_timestep", &m->end_timestep)))
        return rc;
    if (m->inner && !spo_h5_exists(f, "/inner"))
        return spo_err(SPO_EINVAL, "%s: inner_steps is %" PRId64 " but there is no /inner", spo_h5_path(f), m->inner);
    if (m->inner) {
        int64_t want[6] = {m->B, m->K, m->inner, m->C, m->h, m->w};
        if ((rc = spo_h5_info(f, "/inner", &di))) return rc;
        if (di.ndim != 6 || memcmp(di.shape, want, sizeof want))
            return spo_err(SPO_EINVAL, "%s: /inner is not [B,K,inner_steps,C,h,w]", spo_h5_path(f));
    }
    return check(f, m);
}

int spo_pool_write(spo_h5 *out, const spo_poolmeta *m, const int64_t *pid, const float *parent,
                   const float *parent_eps, const float *children, const float *inner, const float *x0,
                   const float *eps)
{
    int64_t s6[6] = {m->B, m->K, m->inner, m->C, m->h, m->w};
    int64_t s1[1] = {m->B}, s4[4] = {m->B, m->C, m->h, m->w}, s5[5] = {m->B, m->K, m->C, m->h, m->w};
    int rc = spo_h5_write(out, "/prompt_id", SPO_T_I64, 1, s1, pid);
    if (!rc) rc = spo_h5_write(out, "/parent", SPO_T_F32, 4, s4, parent);
    if (!rc) rc = spo_h5_write(out, "/parent_eps", SPO_T_F32, 4, s4, parent_eps);
    if (!rc) rc = spo_h5_write(out, "/children", SPO_T_F32, 5, s5, children);
    if (!rc && m->inner) rc = spo_h5_write(out, "/inner", SPO_T_F32, 6, s6, inner);
    if (!rc) rc = spo_h5_write(out, "/x0_hat", SPO_T_F32, 5, s5, x0);
    if (!rc && eps) rc = spo_h5_write(out, "/eps", SPO_T_F32, 5, s5, eps);
    if (!rc) rc = spo_loopattrs_write(out, &m->attrs);
    if (!rc) rc = spo_h5_attr_int(out, NULL, "child_timestep", m->child_timestep);
    if (!rc && m->inner) rc = spo_h5_attr_int(out, NULL, "inner_steps", m->inner);
    if (!rc && m->inner) rc = spo_h5_attr_int(out, NULL, "end_timestep", m->end_timestep);
    if (!rc) rc = spo_h5_attr_float(out, NULL, "guidance", m->guidance);
    if (!rc) rc = spo_h5_attr_float(out, NULL, "eta", m->eta);
    if (!rc && m->text_clean[0]) rc = spo_h5_attr_str(out, NULL, "text_clean", m->text_clean);
    return rc;
}
