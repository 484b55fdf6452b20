/* tokenizer.c — encode text with the CLIP BPE tokenizer (the steps are in
 * tokenizer.h). Words are processed one at a time and encoding stops once
 * max_len - 2 tokens are out, so a long prompt costs only its first words. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "text/ftfy.h"
#include "text/tok_impl.h"
#include "text/unicode.h"

typedef struct {
    int32_t *ids; /* the tokens between bos and eos */
    int n, cap;
    uint32_t *seg, *nfc, *low, *sym;
    size_t seg_n, seg_cap, nfc_cap, low_cap, sym_cap;
    char *bytes;
    size_t bytes_cap;
} enc;

static int grow(void *pp, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return SPO_OK;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *p = realloc(*(void **)pp, c * elem);
    if (!p) return spo_err(SPO_EIO, "out of memory");
    *(void **)pp = p;
    *cap = c;
    return SPO_OK;
}

static void push(enc *e, int32_t id)
{
    if (e->n < e->cap) e->ids[e->n++] = id;
}

static int32_t id_of(const spo_tok *t, uint32_t sym)
{
    int32_t id = t->s.id[sym];
    return id >= 0 ? id : t->unk_id;
}

/* One pre-tokenizer match w[0..m): bytes -> symbols -> BPE -> ids. */
static int bpe_word(const spo_tok *t, enc *e, const uint32_t *w, size_t m)
{
    if (grow(&e->bytes, &e->bytes_cap, 4 * m, 1)) return SPO_EIO;
    size_t nb = 0;
    for (size_t i = 0; i < m; i++) nb += (size_t)spo_utf8_encode(w[i], e->bytes + nb);
    /* CLIPTokenizer's cache: these two come out whole */
    if ((nb == 15 && !memcmp(e->bytes, "<|startoftext|>", 15)) || (nb == 13 && !memcmp(e->bytes, "<|endoftext|>", 13))) {
        long k = spo_strtab_find(&t->s, e->bytes, nb);
        push(e, k >= 0 && t->s.id[k] >= 0 ? t->s.id[k] : t->unk_id);
        return SPO_OK;
    }
    if (grow(&e->sym, &e->sym_cap, nb, sizeof *e->sym)) return SPO_EIO;
    uint32_t *s = e->sym;
    size_t n = nb;
    for (size_t i = 0; i < nb; i++) s[i] = t->base[(unsigned char)e->bytes[i]];
    s[nb - 1] = t->base_w[(unsigned char)e->bytes[nb - 1]];
    while (n > 1) {
        const spo_pair *best = NULL;
        for (size_t i = 0; i + 1 < n; i++) {
            const spo_pair *p = spo_pair_find(t, s[i], s[i + 1]);
            if (p && (!best || p->rank < best->rank)) best = p;
        }
        if (!best) break;
        /* merge every occurrence of the pair, left to right */
        uint32_t a = (uint32_t)(best->key >> 32), b = (uint32_t)best->key;
        size_t k = 0;
        for (size_t i = 0; i < n;) {
            if (i + 1 < n && s[i] == a && s[i + 1] == b) {
                s[k++] = best->merged;
                i += 2;
            } else {
                s[k++] = s[i++];
            }
        }
        n = k;
    }
    for (size_t i = 0; i < n; i++) push(e, id_of(t, s[i]));
    return SPO_OK;
}

/* regex literal under IGNORECASE: ASCII case, and ſ (U+017F) for s (the
 * slow tokenizer); exact (the fast one) */
static size_t match_lit(const uint32_t *w, size_t m, const char *lit, int fold)
{
    size_t n = strlen(lit);
    if (n > m) return 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = w[i], l = (unsigned char)lit[i];
        int ok = c == l || (fold && l >= 'a' && l <= 'z' && (c == l - 32 || (l == 's' && c == 0x17F)));
        if (!ok) return 0;
    }
    return n;
}

/* The pre-tokenizer regex over lowered text w[0..m): the slow tokenizer's
 * (IGNORECASE, with the special tokens) or the fast one's Split. */
static int pretokenize(const spo_tok *t, enc *e, const uint32_t *w, size_t m)
{
    static const char *lits[] = {"<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    int fast = t->mode == SPO_TOK_FAST;
    size_t i = 0;
    while (i < m && e->n < e->cap) {
        size_t len = 0;
        if ((w[i] == '<' && !fast) || w[i] == '\'')
            for (size_t k = fast ? 2 : 0; k < sizeof lits / sizeof *lits && !len; k++)
                len = match_lit(w + i, m - i, lits[k], !fast);
        if (!len) {
            int c = fast ? spo_tok_fast_class(w[i]) : spo_uni_rx_class(w[i]);
            if (c == SPO_RX_SKIP) {
                i++;
                continue;
            }
            len = 1;
            if (c != SPO_RX_N)
                while (i + len < m && (fast ? spo_tok_fast_class(w[i + len]) : spo_uni_rx_class(w[i + len])) == c)
                    len++;
        }
        if (bpe_word(t, e, w + i, len)) return SPO_EIO;
        i += len;
    }
    return SPO_OK;
}

/* One whitespace-separated word of BasicTokenizer: NFC, lower, regex. */
static int word(const spo_tok *t, enc *e)
{
    if (!e->seg_n || e->n >= e->cap) return SPO_OK;
    if (grow(&e->nfc, &e->nfc_cap, 4 * e->seg_n, sizeof *e->nfc)) return SPO_EIO;
    size_t n = spo_uni_nfc(e->seg, e->seg_n, e->nfc);
    if (grow(&e->low, &e->low_cap, 2 * n, sizeof *e->low)) return SPO_EIO;
    n = spo_uni_lower(e->nfc, n, e->low);
    e->seg_n = 0;
    return pretokenize(t, e, e->low, n);
}

/* A piece of text between added tokens: BasicTokenizer's cleaning and CJK
 * spacing cut it into words (NFC never joins across a space). */
static int chunk(const spo_tok *t, enc *e, const uint32_t *cp, size_t n)
{
    if (grow(&e->seg, &e->seg_cap, n, sizeof *e->seg)) return SPO_EIO;
    e->seg_n = 0;
    for (size_t i = 0; i < n && e->n < e->cap; i++) {
        switch (spo_uni_bt_class(cp[i])) {
        case SPO_BT_DROP:
            break;
        case SPO_BT_SPACE:
            if (word(t, e)) return SPO_EIO;
            break;
        case SPO_BT_CJK:
            if (word(t, e)) return SPO_EIO;
            e->seg[e->seg_n++] = cp[i];
            if (word(t, e)) return SPO_EIO;
            break;
        default:
            e->seg[e->seg_n++] = cp[i];
        }
    }
    return word(t, e);
}

/* A piece of text between added tokens with ftfy installed (CLIPTokenizer
 * 4.40.1): whitespace_clean(ftfy.fix_text(text)).lower(), then the regex;
 * whitespace_clean is re.sub(r"\s+", " ", text).strip(). */
static int chunk_ftfy(const spo_tok *t, enc *e, const uint32_t *cp, size_t n)
{
    uint32_t *fx;
    size_t m;
    if (!n) return SPO_OK;
    int rc = spo_ftfy_fix(cp, n, &fx, &m);
    if (rc) return rc;
    size_t k = 0;
    int in_space = 0;
    for (size_t i = 0; i < m; i++) {
        if (spo_ftfy_isspace(fx[i])) {
            if (!in_space) fx[k++] = ' ';
            in_space = 1;
        } else {
            fx[k++] = fx[i];
            in_space = 0;
        }
    }
    size_t b = 0;
    while (b < k && fx[b] == ' ') b++;
    while (k > b && fx[k - 1] == ' ') k--;
    rc = grow(&e->low, &e->low_cap, 2 * (k - b) + 1, sizeof *e->low);
    if (!rc) rc = pretokenize(t, e, e->low, spo_uni_lower(fx + b, k - b, e->low));
    free(fx);
    return rc;
}

/* the longest added token at cp[i..n), its index or -1 */
static int special_at(const spo_tok *t, const uint32_t *cp, size_t n, size_t i, size_t *len)
{
    int best = -1;
    *len = 0;
    for (int k = 0; k < SPO_TOK_NSPECIAL; k++) {
        size_t m = t->special_n[k];
        if (m > *len && m <= n - i && !memcmp(cp + i, t->special_cp[k], m * sizeof *cp)) {
            best = k;
            *len = m;
        }
    }
    return best;
}

/* a piece between added tokens, by mode */
static int piece(const spo_tok *t, enc *e, const uint32_t *cp, size_t n)
{
    if (t->mode == SPO_TOK_FTFY) return chunk_ftfy(t, e, cp, n);
    if (t->mode == SPO_TOK_FAST) return pretokenize(t, e, cp, n);
    return chunk(t, e, cp, n);
}

int spo_tok_encode(const spo_tok *t, const char *utf8, int32_t *ids, int max_len, int *n_real)
{
    if (!t || !utf8 || !ids) return spo_err(SPO_EINVAL, "spo_tok_encode: null argument");
    if (max_len < 2) return spo_err(SPO_EINVAL, "spo_tok_encode: max_len %d < 2", max_len);
    size_t len = strlen(utf8);
    int fast = t->mode == SPO_TOK_FAST;
    if (len > SIZE_MAX / 64) return spo_err(SPO_EINVAL, "spo_tok_encode: text too long");
    uint32_t *cp = malloc((fast ? 13 * len + 1 : len + 1) * sizeof *cp);
    if (!cp) return spo_err(SPO_EIO, "out of memory");
    size_t n = spo_utf8_decode(utf8, len, cp);
    if (fast) { /* normalize first: the added tokens match the normalized text */
        uint32_t *norm = cp + len + 1;
        n = spo_tok_fast_normalize(cp, n, norm, norm + 8 * len);
        memmove(cp, norm, n * sizeof *cp);
    }
    enc e = {.ids = ids + 1, .cap = max_len - 2};
    int rc = SPO_OK;
    size_t start = 0;
    for (size_t i = 0; i < n && e.n < e.cap && !rc;) {
        size_t m;
        int k = special_at(t, cp, n, i, &m);
        if (k < 0) {
            i++;
            continue;
        }
        rc = piece(t, &e, cp + start, i - start);
        push(&e, t->special_id[k]);
        i += m;
        start = i;
    }
    if (!rc && start < n) rc = piece(t, &e, cp + start, n - start);
    free(cp);
    free(e.seg);
    free(e.nfc);
    free(e.low);
    free(e.sym);
    free(e.bytes);
    if (rc) return rc;
    ids[0] = t->bos_id;
    ids[1 + e.n] = t->eos_id;
    for (int i = e.n + 2; i < max_len; i++) ids[i] = t->pad_id;
    if (n_real) *n_real = e.n + 2;
    return SPO_OK;
}
