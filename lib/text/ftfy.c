/* ftfy.c — ftfy 6.2.0's fix_text (see ftfy.h): the line loop, the fixing
 * loop and the character-level fixers; HTML is in ftfy_html.c, mojibake in
 * ftfy_encoding.c, the badness heuristic in ftfy_badness.c, the shared buffers and
 * character classes in ftfy_buf.c. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "text/ftfy_impl.h"
#include "text/unicode.h"

/* the record of cp in a (cp, n, text[w - 2]) table, or NULL */
static const uint32_t *strmap(const uint32_t *t, size_t tn, size_t w, uint32_t cp)
{
    long i = spo_uni_find_record(t, tn / w, w, cp);
    return i < 0 ? NULL : t + (size_t)i * w;
}

/* ---- character fixers: text -> out ------------------------------------ */

/* fix_c1_controls: U+0080..U+009F as sloppy windows-1252 */
static uint32_t c1(uint32_t c)
{
    return c >= 0x80 && c <= 0x9F ? spo_fttab_cmap[129 * SPO_FT_W1252 + (c - 0x80)] : c;
}

/* fix_latin_ligatures, fix_character_width, uncurl_quotes, one character */
static int translate(spo_ft_str *out, uint32_t c)
{
    const uint32_t *r = NULL;
    if (c >= 0x132 && c <= 0xFB06) r = strmap(spo_fttab_lig, spo_fttab_lig_n, 5, c);
    if (r) return spo_ft_append(out, r + 2, r[1]);
    return spo_ft_push(out, c);
}

static int width(spo_ft_str *out, uint32_t c)
{
    const uint32_t *r = NULL;
    if (c == 0x3000 || (c >= 0xFF01 && c < 0xFFF0)) r = strmap(spo_fttab_width, spo_fttab_width_n, 4, c);
    if (r) return spo_ft_append(out, r + 2, r[1]);
    return spo_ft_push(out, c);
}

static uint32_t uncurl(uint32_t c)
{
    if (c == 0x2BC || (c >= 0x2018 && c <= 0x201B)) return '\'';
    if (c >= 0x201C && c <= 0x201F) return '"';
    return c;
}

/* remove_control_chars */
static int control(uint32_t c)
{
    return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
           c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

/* remove_terminal_escapes: ESC [ (\d|;)* [a-zA-Z], \d being Python's */
static size_t ansi_len(const uint32_t *s, size_t n, size_t i)
{
    if (s[i] != 0x1B || i + 1 >= n || s[i + 1] != '[') return 0;
    size_t j = i + 2;
    while (j < n && (s[j] == ';' || (spo_ft_pyre(s[j]) & SPO_FT_PYDIGIT))) j++;
    if (j < n && ((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z'))) return j + 1 - i;
    return 0;
}

/* The fixers after fix_encoding, in ftfy's order, then NFC. */
static int char_fixes(spo_ft_str *t, spo_ft_str *tmp)
{
    int rc = SPO_OK;
    /* c1 controls (one for one), then ligatures */
    tmp->n = 0;
    for (size_t i = 0; i < t->n && !rc; i++) rc = translate(tmp, c1(t->p[i]));
    spo_ft_swap(t, tmp);
    /* width, then uncurl (one for one) */
    tmp->n = 0;
    for (size_t i = 0; i < t->n && !rc; i++) rc = width(tmp, t->p[i]);
    if (rc) return rc;
    spo_ft_swap(t, tmp);
    for (size_t i = 0; i < t->n; i++) t->p[i] = uncurl(t->p[i]);
    /* line breaks: \r\n, \r, U+2028, U+2029, U+0085 -> \n (in place) */
    size_t k = 0;
    for (size_t i = 0; i < t->n; i++) {
        uint32_t c = t->p[i];
        if (c == '\r' && i + 1 < t->n && t->p[i + 1] == '\n') continue;
        t->p[k++] = (c == '\r' || c == 0x2028 || c == 0x2029 || c == 0x85) ? '\n' : c;
    }
    t->n = k;
    /* (fix_surrogates: the text holds none) terminal escapes, then controls */
    k = 0;
    for (size_t i = 0; i < t->n;) {
        size_t m = ansi_len(t->p, t->n, i);
        if (m) {
            i += m;
            continue;
        }
        t->p[k++] = t->p[i++];
    }
    t->n = k;
    k = 0;
    for (size_t i = 0; i < t->n; i++)
        if (!control(t->p[i])) t->p[k++] = t->p[i];
    t->n = k;
    /* NFC */
    if (spo_ft_reserve(tmp, 4 * t->n + 1)) return SPO_EIO;
    tmp->n = spo_uni_nfc(t->p, t->n, tmp->p);
    spo_ft_swap(t, tmp);
    return SPO_OK;
}

/* fix_and_explain on one line: repeat every step until nothing changes */
static int fix_segment(spo_ft_str *t, int html, spo_ft_str *tmp, spo_ft_str *orig)
{
    for (int round = 0; round < SPO_FTFY_MAX_ROUNDS; round++) {
        orig->n = 0;
        if (spo_ft_append(orig, t->p, t->n)) return SPO_EIO;
        if (html && spo_ft_unescape_html(t, tmp)) return SPO_EIO;
        if (spo_ft_fix_encoding(t, 0)) return SPO_EIO;
        if (char_fixes(t, tmp)) return SPO_EIO;
        if (spo_ft_equal(t, orig)) break;
    }
    return SPO_OK;
}

enum { MAX_DECODE_LENGTH = 1000000 };

int spo_ftfy_fix(const uint32_t *in, size_t n, uint32_t **out, size_t *out_n)
{
    *out = NULL;
    *out_n = 0;
    spo_ft_str res = {0}, seg = {0}, tmp = {0}, orig = {0};
    int rc = spo_ft_reserve(&res, n + 1);
    int html = 1; /* "auto": off from the first line with a '<' on */
    for (size_t pos = 0; pos < n && !rc;) {
        size_t end = pos;
        while (end < n && in[end] != '\n') end++;
        end = end < n ? end + 1 : n;
        if (end - pos > MAX_DECODE_LENGTH) end = pos + MAX_DECODE_LENGTH;
        for (size_t i = pos; i < end && html; i++)
            if (in[i] == '<') html = 0;
        seg.n = 0;
        rc = spo_ft_append(&seg, in + pos, end - pos);
        if (!rc) rc = fix_segment(&seg, html, &tmp, &orig);
        if (!rc) rc = spo_ft_append(&res, seg.p, seg.n);
        pos = end;
    }
    free(seg.p);
    free(tmp.p);
    free(orig.p);
    if (rc) {
        free(res.p);
        return rc;
    }
    *out = res.p;
    *out_n = res.n;
    return SPO_OK;
}

int spo_ftfy_fix_utf8(const char *in, size_t len, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    uint32_t *cp = malloc((len + 1) * sizeof *cp), *fixed = NULL;
    if (!cp) return spo_err(SPO_EIO, "out of memory");
    size_t n = spo_utf8_decode(in, len, cp), m = 0;
    int rc = spo_ftfy_fix(cp, n, &fixed, &m);
    free(cp);
    if (rc) return rc;
    char *s = malloc(4 * m + 1);
    if (!s) {
        free(fixed);
        return spo_err(SPO_EIO, "out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < m; i++) k += (size_t)spo_utf8_encode(fixed[i], s + k);
    s[k] = 0;
    free(fixed);
    *out = s;
    *out_len = k;
    return SPO_OK;
}
