/* ftfy_encoding.c — ftfy's fix_encoding: undo mojibake (see ftfy.h). One
 * step, as ftfy's _fix_encoding_one_step_and_explain:
 *
 *   nothing for ASCII text or text that is not bad (ftfy_badness.c);
 *   for each single-byte codec in order that can encode the text: encode,
 *     restore 0xA0 bytes (not for macroman), replace lossy sequences
 *     (sloppy codecs), decode as UTF-8 (utf-8-variants when the bytes hold
 *     0xED or 0xC0); the first that decodes is the result;
 *   else fix the UTF-8 mojibake embedded in the text (decode_inconsistent_utf8);
 *   else, if latin-1 could encode it, latin-1 -> strict windows-1252;
 *   else C1 controls as windows-1252.
 * fix_encoding repeats the step until it changes nothing. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "text/ftfy_impl.h"
#include "text/unicode.h"

static const uint32_t *cmap(int codec) { return spo_fttab_cmap + 129 * (size_t)codec; }
static int sloppy(int codec) { return codec >= SPO_FT_W1252 && codec <= SPO_FT_W1254; }

/* the byte of c in codec, or -1 (ftfy's possible_encoding regex: ASCII but
 * 0x1A, plus what 0x80..0xFF and 0x1A decode to) */
static int encode_byte(int codec, uint32_t c)
{
    if (c < 0x80 && c != 0x1A) return (int)c;
    const uint32_t *r = spo_fttab_cmap_rev + 2 * 129 * (size_t)codec;
    long i = spo_uni_find_record(r, 129, 2, c);
    return i < 0 ? -1 : (int)r[2 * i + 1];
}

static int encode(const spo_ft_str *t, int codec, spo_ft_bytes *out)
{
    if (spo_ft_breserve(out, t->n + 1)) return -2;
    out->n = 0;
    for (size_t i = 0; i < t->n; i++) {
        int b = encode_byte(codec, t->p[i]);
        if (b < 0) return -1;
        out->p[out->n++] = (unsigned char)b;
    }
    return 0;
}

/* ---- byte rewrites ---------------------------------------------------- */

static int is_cont_nosp(unsigned b) { return (b >= 0x80 && b <= 0x84) || (b >= 0x86 && b <= 0x9F) || (b >= 0xA1 && b <= 0xBF); }
static int is_cont(unsigned b) { return b >= 0x80 && b <= 0xBF; }

/* ALTERED_UTF8_RE at p: the match length, 0 for none */
static size_t altered_at(const unsigned char *s, size_t n, size_t p)
{
    unsigned a = s[p], b = p + 1 < n ? s[p + 1] : 0x100, c = p + 2 < n ? s[p + 2] : 0x100,
             d = p + 3 < n ? s[p + 3] : 0x100;
    if ((a == 0xC2 || a == 0xC3 || a == 0xC5 || a == 0xCE || a == 0xD0 || a == 0xD9) && b == ' ') return 2;
    if ((a == 0xE2 || a == 0xE3) && b == ' ' && c < 0x100 && is_cont_nosp(c)) return 3;
    if (a >= 0xE0 && a <= 0xE3 && b < 0x100 && is_cont_nosp(b) && c == ' ') return 3;
    if (a == 0xF0) {
        if (b == ' ' && c < 0x100 && is_cont(c) && d < 0x100 && is_cont(d)) return 4;
        if (b < 0x100 && is_cont(b) && c == ' ' && d < 0x100 && is_cont(d)) return 4;
        if (b < 0x100 && is_cont(b) && c < 0x100 && is_cont(c) && d == ' ') return 4;
    }
    return 0;
}

static int has_altered(const spo_ft_bytes *b)
{
    for (size_t p = 0; p < b->n; p++)
        if (altered_at(b->p, b->n, p)) return 1;
    return 0;
}

/* restore_byte_a0: "\xc3 " not followed by " ", "quele", "quela", "quilo"
 * or "s " becomes "\xc3\xa0 "; then the spaces of each ALTERED_UTF8_RE
 * match become 0xA0 */
static int restore_byte_a0(spo_ft_bytes *b, spo_ft_bytes *tmp)
{
    if (spo_ft_breserve(tmp, 2 * b->n + 1)) return SPO_EIO;
    tmp->n = 0;
    const unsigned char *s = b->p;
    size_t n = b->n;
    for (size_t i = 0; i < n; i++) {
        tmp->p[tmp->n++] = s[i];
        if (s[i] == 0xC3 && i + 1 < n && s[i + 1] == ' ') {
            const unsigned char *r = s + i + 2;
            size_t m = n - (i + 2);
            int no = (m >= 1 && r[0] == ' ') || (m >= 5 && (!memcmp(r, "quele", 5) || !memcmp(r, "quela", 5) ||
                                                            !memcmp(r, "quilo", 5))) ||
                     (m >= 2 && r[0] == 's' && r[1] == ' ');
            if (!no) {
                tmp->p[tmp->n++] = 0xA0;
                tmp->p[tmp->n++] = ' ';
                i++;
            }
        }
    }
    spo_ft_bytes t = *b;
    *b = *tmp;
    *tmp = t;
    s = b->p;
    n = b->n;
    for (size_t p = 0; p < n;) {
        size_t m = altered_at(s, n, p);
        if (!m) {
            p++;
            continue;
        }
        for (size_t j = p; j < p + m; j++)
            if (b->p[j] == ' ') b->p[j] = 0xA0;
        p += m;
    }
    return SPO_OK;
}

/* LOSSY_UTF8_RE at p (0x1A stands for a byte lost as U+FFFD, '?' too, once) */
static size_t lossy_at(const unsigned char *s, size_t n, size_t p)
{
#define B(k) (p + (k) < n ? (unsigned)s[p + (k)] : 0x100u)
#define SUB(x) ((x) == 0x1A)
#define SUBQ(x) ((x) == 0x1A || (x) == '?')
#define SUBC(x) ((x) == 0x1A || ((x) >= 0x80 && (x) <= 0xBF))
#define SUBQC(x) ((x) == 0x1A || (x) == '?' || ((x) >= 0x80 && (x) <= 0xBF))
    unsigned a = B(0), b = B(1), c = B(2), d = B(3), e = B(4), f = B(5);
    if (a >= 0xC2 && a <= 0xDF && SUB(b)) return 2;
    if ((a == 0xC2 || a == 0xC3) && b == '?') return 2;
    if (a == 0xED && b >= 0xA0 && b <= 0xAF && SUBQ(c) && d == 0xED && e >= 0xB0 && e <= 0xBF && SUBQC(f)) return 6;
    if (a == 0xED && b >= 0xA0 && b <= 0xAF && SUBQC(c) && d == 0xED && e >= 0xB0 && e <= 0xBF && SUBQ(f)) return 6;
    if (a >= 0xE0 && a <= 0xEF) {
        if (SUBQ(b) && SUBC(c)) return 3;
        if (SUBC(b) && SUBQ(c)) return 3;
    }
    if (a >= 0xF0 && a <= 0xF4) {
        if (SUBQ(b) && SUBC(c) && SUBC(d)) return 4;
        if (SUBC(b) && SUBQ(c) && SUBC(d)) return 4;
        if (SUBC(b) && SUBC(c) && SUBQ(d)) return 4;
    }
    if (SUB(a)) return 1;
    return 0;
#undef B
#undef SUB
#undef SUBQ
#undef SUBC
#undef SUBQC
}

/* replace_lossy_sequences: each match becomes EF BF BD */
static int replace_lossy(spo_ft_bytes *b, spo_ft_bytes *tmp)
{
    if (spo_ft_breserve(tmp, 3 * b->n + 1)) return SPO_EIO;
    tmp->n = 0;
    for (size_t p = 0; p < b->n;) {
        size_t m = lossy_at(b->p, b->n, p);
        if (m) {
            tmp->p[tmp->n++] = 0xEF;
            tmp->p[tmp->n++] = 0xBF;
            tmp->p[tmp->n++] = 0xBD;
            p += m;
        } else {
            tmp->p[tmp->n++] = b->p[p++];
        }
    }
    spo_ft_bytes t = *b;
    *b = *tmp;
    *tmp = t;
    return SPO_OK;
}

/* ---- decoders --------------------------------------------------------- */

/* Python's strict UTF-8 of s[0..n) appended to out: 0 ok, -1 invalid */
static int utf8_strict(const unsigned char *s, size_t n, spo_ft_str *out)
{
    for (size_t i = 0; i < n;) {
        unsigned b = s[i];
        if (b < 0x80) {
            out->p[out->n++] = b;
            i++;
            continue;
        }
        int need;
        unsigned lo = 0x80, hi = 0xBF;
        uint32_t cp;
        if (b >= 0xC2 && b <= 0xDF) need = 1, cp = b & 0x1F;
        else if (b >= 0xE0 && b <= 0xEF) {
            need = 2, cp = b & 0x0F;
            if (b == 0xE0) lo = 0xA0;
            if (b == 0xED) hi = 0x9F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3, cp = b & 0x07;
            if (b == 0xF0) lo = 0x90;
            if (b == 0xF4) hi = 0x8F;
        } else
            return -1;
        if ((size_t)need >= n - i) return -1;
        for (int j = 1; j <= need; j++) {
            unsigned c = s[i + j];
            if (c < (j == 1 ? lo : 0x80) || c > (j == 1 ? hi : 0xBF)) return -1;
            cp = (cp << 6) | (c & 0x3F);
        }
        out->p[out->n++] = cp;
        i += (size_t)need + 1;
    }
    return 0;
}

/* Python's `$` in a bytes regex: at the end, or before a final "\n" */
static int at_end(const unsigned char *s, size_t n, size_t p) { return p == n || (p + 1 == n && s[p] == '\n'); }

/* ftfy's utf-8-variants SPECIAL_BYTES_RE at p: NULL_EXPR \xc0(\x80|$),
 * CESU8_EXPR or SURROGATE_EXPR \xed([\xa0-\xbf]|$)([\x80-\xbf]|$) */
static int special_at(const unsigned char *s, size_t n, size_t p)
{
    if (s[p] == 0xC0) return (p + 1 < n && s[p + 1] == 0x80) || at_end(s, n, p + 1);
    if (s[p] != 0xED) return 0;
    size_t q = p + 1;
    if (q < n && s[q] >= 0xA0 && s[q] <= 0xBF) q++;
    else if (!at_end(s, n, q)) return 0;
    /* SURROGATE_EXPR's third part (CESU8_EXPR's begins the same way) */
    return (q < n && s[q] >= 0x80 && s[q] <= 0xBF) || at_end(s, n, q);
}

/* CESU8_RE.match at the start of s[0..n) (n >= 6) */
static int cesu8(const unsigned char *s, size_t n)
{
    size_t q = 1;
    static const unsigned char lo[] = {0, 0xA0, 0x80, 0xED, 0xB0, 0x80}, hi[] = {0, 0xAF, 0xBF, 0xED, 0xBF, 0xBF};
    for (int k = 1; k < 6; k++) {
        if (q < n && s[q] >= lo[k] && s[q] <= hi[k]) q++;
        else if (!at_end(s, n, q)) return 0;
    }
    return 1;
}

/* bytes.decode("utf-8-variants"): 0 ok, -1 invalid */
static int utf8_variants(const unsigned char *s, size_t n, spo_ft_str *out)
{
    size_t pos = 0;
    while (pos < n) {
        const unsigned char *r = s + pos;
        size_t m = n - pos, cut = 0;
        while (cut < m && !special_at(r, m, cut)) cut++;
        if (cut == m) return utf8_strict(r, m, out);
        if (cut > 0) {
            if (utf8_strict(r, cut, out)) return -1;
            pos += cut;
            continue;
        }
        if (r[0] == 0xC0) {
            if (m < 2) return -1;
            out->p[out->n++] = 0;
            pos += 2;
            continue;
        }
        if (m < 6 || !cesu8(r, m)) return -1;
        out->p[out->n++] = (((uint32_t)r[1] & 0x0F) << 16) + (((uint32_t)r[2] & 0x3F) << 10) +
                           (((uint32_t)r[4] & 0x0F) << 6) + ((uint32_t)r[5] & 0x3F) + 0x10000;
        pos += 6;
    }
    return 0;
}

/* ---- one step --------------------------------------------------------- */

typedef struct {
    spo_ft_bytes b, tmp;
    spo_ft_str out;
} scratch;

static int ascii_only(const spo_ft_str *t)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->p[i] >= 0x80) return 0;
    return 1;
}

/* 1: *t was changed, 0: nothing to do, <0 error */
static int one_step(spo_ft_str *t, scratch *x, int depth);

/* decode_inconsistent_utf8: each UTF8_DETECTOR_RE match shorter than the
 * text that is bad by itself goes through fix_encoding */
static int inconsistent(spo_ft_str *t, scratch *x, int depth, int *changed)
{
    spo_ft_str res = {0}, sub = {0};
    size_t from = 0, st, en;
    int rc = SPO_OK;
    *changed = 0;
    while (!rc && spo_ft_utf8_detector(t->p, t->n, from, &st, &en)) {
        rc = spo_ft_append(&res, t->p + from, st - from);
        sub.n = 0;
        if (!rc) rc = spo_ft_append(&sub, t->p + st, en - st);
        if (!rc && en - st < t->n && spo_ftfy_is_bad(sub.p, sub.n) && depth < SPO_FTFY_MAX_ROUNDS)
            rc = spo_ft_fix_encoding(&sub, depth + 1);
        if (!rc) rc = spo_ft_append(&res, sub.p, sub.n);
        from = en;
    }
    if (!rc) rc = spo_ft_append(&res, t->p + from, t->n - from);
    (void)x;
    if (!rc && !spo_ft_equal(&res, t)) {
        spo_ft_swap(&res, t);
        *changed = 1;
    }
    free(res.p);
    free(sub.p);
    return rc;
}

static int one_step(spo_ft_str *t, scratch *x, int depth)
{
    if (!t->n || ascii_only(t) || !spo_ftfy_is_bad(t->p, t->n)) return 0;
    int possible_latin1 = 0;
    for (int codec = 0; codec < SPO_FT_NCODEC; codec++) {
        int e = encode(t, codec, &x->b);
        if (e == -2) return -1;
        if (e < 0) continue;
        if (codec == SPO_FT_LATIN1) possible_latin1 = 1;
        if (codec != SPO_FT_MACROMAN && has_altered(&x->b) && restore_byte_a0(&x->b, &x->tmp)) return -1;
        if (sloppy(codec) && replace_lossy(&x->b, &x->tmp)) return -1;
        int variants = memchr(x->b.p, 0xED, x->b.n) || memchr(x->b.p, 0xC0, x->b.n);
        x->out.n = 0;
        if (spo_ft_reserve(&x->out, x->b.n + 1)) return -1;
        int d = variants ? utf8_variants(x->b.p, x->b.n, &x->out) : utf8_strict(x->b.p, x->b.n, &x->out);
        if (d == 0) {
            spo_ft_swap(t, &x->out);
            return 1;
        }
    }
    size_t st, en;
    if (spo_ft_utf8_detector(t->p, t->n, 0, &st, &en)) {
        int changed;
        if (inconsistent(t, x, depth, &changed)) return -1;
        if (changed) return 1;
    }
    if (possible_latin1) {
        /* latin-1 -> strict windows-1252 (fails on 0x81 0x8D 0x8F 0x90 0x9D) */
        int ok = 1, diff = 0;
        for (size_t i = 0; i < t->n && ok; i++) {
            uint32_t c = t->p[i];
            if (c >= 0x80 && c <= 0x9F) {
                ok = spo_fttab_cp1252[c - 0x80] != 0;
                diff = 1;
            }
        }
        if (ok && diff) {
            for (size_t i = 0; i < t->n; i++)
                if (t->p[i] >= 0x80 && t->p[i] <= 0x9F) t->p[i] = spo_fttab_cp1252[t->p[i] - 0x80];
            return 1;
        }
    }
    /* fix_c1_controls */
    int any = 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->p[i] >= 0x80 && t->p[i] <= 0x9F) {
            t->p[i] = cmap(SPO_FT_W1252)[t->p[i] - 0x80];
            any = 1;
        }
    return any;
}

int spo_ft_fix_encoding(spo_ft_str *t, int depth)
{
    scratch x = {0};
    int rc = SPO_OK;
    for (int round = 0; round < SPO_FTFY_MAX_ROUNDS; round++) {
        int r = one_step(t, &x, depth);
        if (r < 0) {
            rc = SPO_EIO;
            break;
        }
        if (r == 0) break;
    }
    free(x.b.p);
    free(x.tmp.p);
    free(x.out.p);
    return rc;
}
