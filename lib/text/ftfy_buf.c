/* ftfy_buf.c — the code-point strings and byte buffers the ftfy files share,
 * and the character classes of the generated tables (ftfy_impl.h). */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/grow.h"
#include "text/ftfy_impl.h"
#include "text/unicode.h"

/* ---- buffers ---------------------------------------------------------- */

int spo_ft_reserve(spo_ft_str *s, size_t need)
{
    uint32_t *p = spo_grow(s->p, &s->cap, need, sizeof *p, 64);
    if (!p) return SPO_EIO;
    s->p = p;
    return SPO_OK;
}

int spo_ft_push(spo_ft_str *s, uint32_t c)
{
    if (s->n == s->cap && spo_ft_reserve(s, s->n + 1)) return SPO_EIO;
    s->p[s->n++] = c;
    return SPO_OK;
}

int spo_ft_append(spo_ft_str *s, const uint32_t *p, size_t n)
{
    if (spo_ft_reserve(s, s->n + n)) return SPO_EIO;
    if (n) memcpy(s->p + s->n, p, n * sizeof *p);
    s->n += n;
    return SPO_OK;
}

int spo_ft_breserve(spo_ft_bytes *b, size_t need)
{
    unsigned char *p = spo_grow(b->p, &b->cap, need, 1, 256);
    if (!p) return SPO_EIO;
    b->p = p;
    return SPO_OK;
}

void spo_ft_swap(spo_ft_str *a, spo_ft_str *b)
{
    spo_ft_str t = *a;
    *a = *b;
    *b = t;
}

int spo_ft_equal(const spo_ft_str *a, const spo_ft_str *b)
{
    return a->n == b->n && (!a->n || !memcmp(a->p, b->p, a->n * sizeof *a->p));
}

/* ---- table lookups ---------------------------------------------------- */

uint32_t spo_ft_cat(uint32_t cp)
{
    long i = spo_uni_find_record(spo_fttab_cat, spo_fttab_cat_n / 2, 2, cp);
    return i < 0 ? 0 : spo_fttab_cat[2 * i + 1];
}

int spo_ft_pyre(uint32_t cp) { return cp > 0x10FFFF ? 0 : spo_uni_run_value(spo_fttab_pyre, spo_fttab_pyre_n, cp); }

int spo_ftfy_isspace(uint32_t cp) { return (spo_ft_pyre(cp) & SPO_FT_PYSPACE) != 0; }
