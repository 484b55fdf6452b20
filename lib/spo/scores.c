/* scores.c — writing scores/1 files and matching them to their pool (see scores.h). */
#include "spo/scores.h"

#include <inttypes.h>
#include <stdlib.h>

#include "core/err.h"

int spo_scores_write(spo_h5 *out, const spo_poolmeta *m, const char *scorer, int64_t timestep, const int64_t *pid,
                     const float *scores)
{
    int64_t shape[2] = {m->B, m->K};
    int rc = spo_h5_write(out, "/scores", SPO_T_F32, 2, shape, scores);
    if (!rc) rc = spo_h5_write(out, "/prompt_id", SPO_T_I64, 1, shape, pid);
    const spo_h5_attrval at[] = {
        {"scorer", SPO_ATTR_STR, .s = scorer},       {"step", SPO_ATTR_INT, .i = m->attrs.step},
        {"timestep", SPO_ATTR_INT, .i = timestep},   {"model_id", SPO_ATTR_STR, .s = m->attrs.model_id},
        {NULL},
    };
    return rc ? rc : spo_h5_attrs(out, NULL, at);
}

int spo_scores_match(const spo_h5 *sc, const spo_h5 *pool, const spo_poolmeta *m, const int64_t *ids)
{
    const char *pn = spo_h5_path(pool), *sn = spo_h5_path(sc);
    spo_dsinfo di;
    int64_t step;
    int rc = spo_h5_info(sc, "/scores", &di);
    if (!rc) rc = spo_h5_get_attr_int(sc, NULL, "step", &step);
    if (rc) return rc;
    if (di.ndim != 2 || di.shape[0] != m->B || di.shape[1] != m->K)
        return spo_err(SPO_EINVAL, "%s does not match %s: /scores is [%" PRId64 ",%" PRId64 "], the pool has %" PRId64
                       " prompts of %" PRId64 " children", sn, pn, di.ndim > 0 ? di.shape[0] : 0,
                       di.ndim > 1 ? di.shape[1] : 0, m->B, m->K);
    if (step != m->attrs.step)
        return spo_err(SPO_EINVAL, "%s does not match %s: scores of step %" PRId64 ", pool of step %" PRId64, sn, pn,
                       step, m->attrs.step);
    int64_t *sid = malloc(((size_t)m->B + 1) * sizeof *sid);
    if (!sid) return spo_err(SPO_EIO, "out of memory");
    rc = spo_h5_read_i64(sc, "/prompt_id", sid, (size_t)m->B);
    for (int64_t b = 0; b < m->B && !rc; b++)
        if (sid[b] != ids[b])
            rc = spo_err(SPO_EINVAL, "%s does not match %s: prompt %" PRId64 " is id %" PRId64 " in the scores, %" PRId64
                         " in the pool", sn, pn, b, sid[b], ids[b]);
    free(sid);
    return rc;
}
