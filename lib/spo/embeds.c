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
