/* grow.c — room in a growing array (see grow.h). */
#include "core/grow.h"

#include <stdint.h>
#include <stdlib.h>

#include "core/err.h"

void *spo_grow(void *arr, size_t *cap, size_t need, size_t size, size_t first)
{
    if (arr && need <= *cap) return arr;
    size_t c = arr && *cap ? *cap : first;
    while (c < need) c = c > SIZE_MAX / 2 ? need : 2 * c;
    void *p = c > SIZE_MAX / size ? NULL : realloc(arr, c * size);
    if (!p) {
        spo_err(SPO_EIO, "out of memory");
        return NULL;
    }
    *cap = c;
    return p;
}
