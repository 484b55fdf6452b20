/* grow.h — room in a growing array: its capacity doubles, from a first
 * capacity, until what is needed fits (tensor lists, stacks, buffers). */
#ifndef SPO_GROW_H
#define SPO_GROW_H

#include <stddef.h>

/* arr, of *cap elements of size bytes (NULL with *cap 0), with room for
 * need elements: arr itself when it has that room, else arr reallocated to
 * first (or *cap) doubled until need fits, and *cap updated; an array never
 * allocated gets first elements even for need 0. NULL only when out of
 * memory or the size overflows: SPO_EIO "out of memory" in spo_err, arr
 * still valid and *cap unchanged. first > 0. The use:
 *   T *p = spo_grow(a->v, &a->cap, a->n + 1, sizeof *p, 16);
 *   if (!p) return SPO_EIO;
 *   a->v = p; */
void *spo_grow(void *arr, size_t *cap, size_t need, size_t size, size_t first);

#endif
