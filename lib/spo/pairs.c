/* pairs.c — the pair rule and the merge order (pure functions; see pairs.h). */
#include "spo/pairs.h"

#include <math.h>
#include <stdlib.h>

#include "core/err.h"

void spo_pair_pick(const float *s, int k, int *best, int *worst)
{
    /* torch.sort(descending=True) is stable on the CPU: equal scores keep
     * their order, so the first of the sorted (the best) is the lowest index
     * among the largest and the last (the worst) the highest index among the
     * smallest */
    int b = 0, w = 0;
    for (int i = 1; i < k; i++) {
        if (s[i] > s[b]) b = i;  /* strict: an equal later score never replaces */
        if (s[i] <= s[w]) w = i; /* not strict: an equal later score does */
    }
    *best = b;
    *worst = w;
}

/* softmax([a, b]) = (1, e) / (1 + e), e = exp(b - a); p_a - p_b =
 * (1 - e) / (1 + e) = tanh((a - b) / 2). */
double spo_pair_gap(double s_best, double s_worst) { return tanh((s_best - s_worst) / 2); }

int spo_pair_select(const float *s, int k, double threshold, int *best, int *worst)
{
    spo_pair_pick(s, k, best, worst);
    return spo_pair_gap(s[*best], s[*worst]) > threshold;
}

int spo_key_cmp(const int64_t *a, const int64_t *b)
{
    for (int i = 0; i < 4; i++)
        if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
    return 0;
}

typedef struct {
    const int64_t *key;
    spo_pairref ref;
} entry;

static int cmp_entry(const void *pa, const void *pb)
{
    const entry *a = pa, *b = pb;
    int c = spo_key_cmp(a->key, b->key);
    if (c) return c;
    if (a->ref.src != b->ref.src) return a->ref.src < b->ref.src ? -1 : 1;
    return (a->ref.row > b->ref.row) - (a->ref.row < b->ref.row);
}

int spo_pairs_plan(const int64_t *const *keys, const int64_t *n, int nsrc, spo_pairref **out, int64_t *nout)
{
    int64_t total = 0;
    *out = NULL;
    *nout = 0;
    for (int i = 0; i < nsrc; i++) {
        if (n[i] < 0) return spo_err(SPO_EINVAL, "negative pair count");
        total += n[i];
    }
    entry *e = malloc(((size_t)total + 1) * sizeof *e);
    spo_pairref *r = malloc(((size_t)total + 1) * sizeof *r);
    if (!e || !r) {
        free(e), free(r);
        return spo_err(SPO_EIO, "out of memory");
    }
    int64_t m = 0;
    for (int i = 0; i < nsrc; i++)
        for (int64_t j = 0; j < n[i]; j++) e[m++] = (entry){keys[i] + 4 * j, {i, j}};
    qsort(e, (size_t)total, sizeof *e, cmp_entry);
    int64_t k = 0;
    for (int64_t j = 0; j < total; j++)
        if (j == 0 || spo_key_cmp(e[j].key, e[j - 1].key)) r[k++] = e[j].ref;
    free(e);
    *out = r;
    *nout = k;
    return SPO_OK;
}
