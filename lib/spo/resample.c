/* resample.c — the next state from a pool (see resample.h). */
#include "spo/resample.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "io/h5rows.h"
#include "spo/loop_state.h"
#include "spo/pool.h"
#include "spo/state.h"
#include "core/philox.h"

uint32_t spo_choose_child(uint64_t seed, uint32_t prompt_id, uint32_t step, uint32_t k)
{
    if (k <= 1) return 0;
    /* limit = 2^32 - (2^32 mod k): the largest multiple of k that fits */
    uint64_t limit = (1ull << 32) - ((1ull << 32) % k);
    for (uint64_t j = 0;; j++) {
        uint32_t w = spo_uniform_u32(seed, prompt_id, step, SPO_PHILOX_CHILD_CHOICE, j);
        if (w < limit) return w % k;
    }
}

/* Copy row b, latent i of a [B,...,chw] pool dataset into row b of a
 * [B,chw] state dataset. */
static int copy_child(spo_h5 *out, const spo_h5 *pool, const char *src, const char *dst, int64_t b, size_t i,
                      float *buf, size_t chw)
{
    /* one prompt's row at a time: buf holds its K (or K * inner) latents */
    int rc = spo_h5_read_rows(pool, src, SPO_T_F32, b, 1, buf);
    if (!rc) rc = spo_h5_write_rows(out, dst, SPO_T_F32, b, 1, buf + i * chw);
    return rc;
}

int spo_resample(spo_h5 *out, const spo_h5 *pool, uint64_t seed)
{
    spo_poolmeta m;
    int rc = spo_pool_meta(pool, &m);
    if (rc) return rc;
    size_t B = (size_t)m.B, chw = (size_t)(m.C * m.h * m.w);
    int64_t *ids = malloc((B + 1) * sizeof *ids);
    int32_t *chosen = malloc((B + 1) * sizeof *chosen);
    size_t N = (size_t)m.inner;
    float *buf = malloc(((size_t)m.K * (N ? N : 1) * chw + 1) * sizeof *buf);
    if (!ids || !chosen || !buf) {
        rc = spo_err(SPO_EIO, "out of memory");
        goto out;
    }
    if ((rc = spo_h5_read_i64(pool, "/prompt_id", ids, B))) goto out;
    for (size_t b = 0; b < B && !rc; b++) {
        uint32_t pid;
        if ((rc = spo_prompt_u32(ids[b], spo_h5_path(pool), &pid))) break;
        chosen[b] = (int32_t)spo_choose_child(seed, pid, (uint32_t)m.attrs.step, (uint32_t)m.K);
    }
    int64_t shape[4] = {m.B, m.C, m.h, m.w};
    /* the chosen child's chain end (the child itself without inner steps) */
    int64_t end = m.attrs.step + 1 + m.inner;
    int eps = m.has_eps && end < m.attrs.num_steps; /* no eps once the latents are final */
    if (!rc) rc = spo_h5_create_rows(out, "/latents", SPO_T_F32, 4, shape);
    if (!rc && eps) rc = spo_h5_create_rows(out, "/eps", SPO_T_F32, 4, shape);
    for (size_t b = 0; b < B && !rc; b++) {
        size_t c = (size_t)chosen[b];
        rc = N ? copy_child(out, pool, "/inner", "/latents", (int64_t)b, c * N + N - 1, buf, chw)
               : copy_child(out, pool, "/children", "/latents", (int64_t)b, c, buf, chw);
        if (!rc && eps) rc = copy_child(out, pool, "/eps", "/eps", (int64_t)b, c, buf, chw);
    }
    if (!rc) rc = spo_h5_write(out, "/prompt_id", SPO_T_I64, 1, &m.B, ids);
    if (!rc) rc = spo_h5_write(out, "/chosen", SPO_T_I32, 1, &m.B, chosen);
    spo_loopattrs next = m.attrs; /* the state after the pool's step */
    next.step = end, next.timestep = m.inner ? m.end_timestep : m.child_timestep;
    if (!rc) rc = spo_loopattrs_write(out, &next);
    if (!rc) rc = spo_h5_attr_int(out, NULL, "choice_seed", (int64_t)seed);
    /* what the cached /eps was computed with: spo-pool reuses it only when
     * it samples with the same guidance, eta and LoRA */
    if (!rc) rc = spo_h5_attr_float(out, NULL, "guidance", m.guidance);
    if (!rc) rc = spo_h5_attr_float(out, NULL, "eta", m.eta);
out:
    free(ids);
    free(chosen);
    free(buf);
    return rc;
}
