/* ftfy_html.c — ftfy's unescape_html: every match of &#?[0-9A-Za-z]{1,24};
 * (left to right, not overlapping) that is in ftfy's HTML_ENTITIES (the
 * HTML5 names with their semicolon, and the upper-case forms of the
 * lower-case ones that html.unescape does not know) becomes its text; a
 * numeric one (&#123; &#x7B;) becomes what html.unescape makes of it,
 * unless that keeps a ';'; anything else stays. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "text/ftfy_impl.h"
#include "text/unicode.h"

static int alnum(uint32_t c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

static int hexval(uint32_t c)
{
    if (c >= '0' && c <= '9') return (int)(c - '0');
    if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return (int)(c - 'A' + 10);
    return -1;
}

static int in_sorted(const uint32_t *t, size_t n, size_t w, uint32_t key, size_t *at)
{
    long i = spo_uni_find_record(t, n / w, w, key);
    if (i >= 0 && at) *at = (size_t)i;
    return i >= 0;
}

/* html.unescape of "&#<body>;": 1 and the text in r (*rn code points), or
 * 0 when the result would keep a ';' (then ftfy keeps the match) */
static int numeric(const uint32_t *body, size_t m, uint32_t *r, size_t *rn)
{
    int hex = body[0] == 'x' || body[0] == 'X';
    size_t i = hex ? 1 : 0;
    if (i >= m) return 0;
    uint64_t num = 0;
    for (; i < m; i++) {
        int v = hex ? hexval(body[i]) : (body[i] >= '0' && body[i] <= '9' ? (int)(body[i] - '0') : -1);
        if (v < 0) return 0; /* html.unescape stops early: a ';' is left */
        num = num * (hex ? 16 : 10) + (uint64_t)v;
        if (num > 0x10FFFF) num = 0x110000; /* saturate: only "too large" matters */
    }
    size_t at;
    *rn = 1;
    if (in_sorted(spo_fttab_charref, spo_fttab_charref_n, 2, (uint32_t)num, &at)) {
        r[0] = spo_fttab_charref[2 * at + 1];
    } else if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) {
        r[0] = 0xFFFD;
    } else if (in_sorted(spo_fttab_badcp, spo_fttab_badcp_n, 1, (uint32_t)num, NULL)) {
        *rn = 0;
    } else {
        r[0] = (uint32_t)num;
    }
    return !(*rn == 1 && r[0] == ';');
}

/* the HTML_ENTITIES value of "&<name>;", or NULL */
static const uint32_t *named(const uint32_t *name, size_t m)
{
    char key[32];
    key[0] = '&';
    for (size_t i = 0; i < m; i++) key[1 + i] = (char)name[i];
    key[1 + m] = ';';
    key[2 + m] = 0;
    size_t lo = 0, hi = spo_fttab_ent_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(spo_fttab_ent_name[mid], key);
        if (!c) return spo_fttab_ent_val[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

int spo_ft_unescape_html(spo_ft_str *text, spo_ft_str *tmp)
{
    const uint32_t *s = text->p;
    size_t n = text->n;
    tmp->n = 0;
    int changed = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] == '&') {
            size_t b = i + 1 + (i + 1 < n && s[i + 1] == '#'), e = b;
            while (e < n && alnum(s[e])) e++;
            if (e > b && e - b <= 24 && e < n && s[e] == ';') {
                uint32_t r[4];
                size_t rn = 0;
                const uint32_t *v = NULL;
                int ok = 0;
                if (b == i + 2) {
                    ok = numeric(s + b, e - b, r, &rn);
                } else if ((v = named(s + b, e - b))) {
                    ok = 1;
                    rn = v[0];
                    memcpy(r, v + 1, rn * sizeof *r);
                }
                if (ok) {
                    if (spo_ft_append(tmp, r, rn)) return SPO_EIO;
                    changed = 1;
                    i = e + 1;
                    continue;
                }
                /* no replacement: the match is kept and scanning resumes after it */
                if (spo_ft_append(tmp, s + i, e + 1 - i)) return SPO_EIO;
                i = e + 1;
                continue;
            }
        }
        if (spo_ft_push(tmp, s[i++])) return SPO_EIO;
    }
    if (changed) spo_ft_swap(text, tmp);
    return SPO_OK;
}
