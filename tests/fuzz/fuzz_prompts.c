/* fuzz_prompts.c — libFuzzer target for the prompt reader: the first byte
 * picks the format (auto, text, JSON, JSON lines, archive), the rest goes to
 * spo_prompts_parse. Accepted sets must hold valid UTF-8 without NUL bytes
 * and distinct ids; a failed parse must leave the set empty. Build and run
 * with `sh tests/fuzz/run.sh SECONDS prompts`. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text/prompts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    spo_prompts p = {0};
    int rc = spo_prompts_parse(&p, "fuzz", (const char *)data + 1, size - 1, (spo_pformat)(data[0] % 5));
    if (rc) {
        if (p.n != 0) abort();
        spo_prompts_free(&p);
        return 0;
    }
    int64_t *ids = malloc(((size_t)p.n + 1) * sizeof *ids);
    if (!ids) abort();
    for (int i = 0; i < p.n; i++) {
        if (!spo_utf8_valid(p.text[i], strlen(p.text[i]))) abort();
        ids[i] = p.id[i];
    }
    qsort(ids, (size_t)p.n, sizeof *ids, cmp);
    for (int i = 1; i < p.n; i++)
        if (ids[i] == ids[i - 1]) abort();
    free(ids);
    spo_prompts_shard(&p, 0, 2);
    spo_prompts_free(&p);
    return 0;
}
