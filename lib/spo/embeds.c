/* embeds.c — prompt id to row of an embeddings file (see embeds.h). */
#include "spo/embeds.h"

#include <inttypes.h>
#include <stdlib.h>

#include "core/err.h"
#include "spo/loopfile.h"

typedef struct {
    int64_t id, row;
} idrow;

static int cmp_idrow(const void *pa, const void *pb)
{
    const idrow *a = pa, *b = pb;
    return a->id < b->id ? -1 : a->id > b->id;
}

int spo_embeds_rows(const spo_h5 *emb, const int64_t *ids, int64_t n, const char *where, int64_t *row)
{
    spo_dsinfo di;
    int rc = spo_h5_info(emb, "/prompt_id", &di);
    if (rc) return rc;
    int64_t P = di.shape[0];
    if ((rc = spo_storage_check(emb, "/prompt_id")) ||
        (rc = spo_size_check(spo_h5_path(emb), "/prompt_id", &P, 1, 0, sizeof(int64_t) + sizeof(idrow), NULL)))
        return rc;
    int64_t *eid = malloc(((size_t)P + 1) * sizeof *eid);
    idrow *t = malloc(((size_t)P + 1) * sizeof *t);
    if (!eid || !t) rc = spo_err(SPO_EIO, "out of memory");
    if (!rc) rc = spo_h5_read_i64(emb, "/prompt_id", eid, (size_t)P);
    if (!rc) {
        for (int64_t p = 0; p < P; p++) t[p] = (idrow){eid[p], p};
        qsort(t, (size_t)P, sizeof *t, cmp_idrow); /* equal ids: any one of them */
        for (int64_t i = 0; i < n && !rc; i++) {
            idrow k = {ids[i], 0}, *hit = bsearch(&k, t, (size_t)P, sizeof *t, cmp_idrow);
            if (!hit)
                rc = spo_err(SPO_EINVAL, "%s: no prompt id %" PRId64 " (it is in %s)", spo_h5_path(emb), ids[i], where);
            else row[i] = hit->row;
        }
    }
    free(eid);
    free(t);
    return rc;
}

int spo_embeds_write_xl(spo_h5 *out, spo_dtype_t dtype, int64_t P, int64_t L, int64_t E, const int32_t *ids2,
                        const float *pooled, const float *uncond_pooled, const char *tokdir2, int zeros)
{
    int64_t s_ids[2] = {P, L}, s_p[2] = {P, E}, s_u[2] = {1, E};
    int rc;
    if ((rc = spo_h5_write(out, "/token_ids_2", SPO_T_I32, 2, s_ids, ids2)) ||
        (rc = spo_h5_write(out, "/pooled", dtype, 2, s_p, pooled)) ||
        (rc = spo_h5_write(out, "/uncond_pooled", dtype, 2, s_u, uncond_pooled)) ||
        (rc = spo_h5_attr_str(out, NULL, "tokenizer_2", tokdir2)))
        return rc;
    return spo_h5_attr_str(out, NULL, "uncond", zeros ? "zeros" : "empty prompt");
}

int spo_embeds_pooled_dim(const spo_h5 *emb, int64_t *E)
{
    *E = 0;
    int p = spo_h5_exists(emb, "/pooled"), u = spo_h5_exists(emb, "/uncond_pooled");
    if (!p && !u) return SPO_OK;
    if (!p || !u)
        return spo_err(SPO_EINVAL, "%s: %s without %s", spo_h5_path(emb), p ? "/pooled" : "/uncond_pooled",
                       p ? "/uncond_pooled" : "/pooled");
    spo_dsinfo di;
    int rc = spo_h5_info(emb, "/pooled", &di);
    if (rc) return rc;
    if (di.ndim != 2 || di.shape[1] < 1) return spo_err(SPO_EINVAL, "%s: /pooled is not (P, E)", spo_h5_path(emb));
    *E = di.shape[1];
    return SPO_OK;
}
