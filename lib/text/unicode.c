/* unicode.c — class lookups, NFC, str.lower() and UTF-8 for the CLIP
 * tokenizer (see unicode.h; data in the generated unicode_tables.c). */
#include "text/unicode.h"

int spo_uni_run_value(const uint32_t *t, size_t n, uint32_t cp)
{
    uint32_t key = (cp << 8) | 0xFF;
    size_t lo = 0, hi = n; /* find the first entry > key */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t[mid] <= key) lo = mid + 1;
        else hi = mid;
    }
    return lo ? (int)(t[lo - 1] & 0xFF) : 0;
}

int spo_uni_rx_class(uint32_t cp)
{
    return cp > 0x10FFFF ? SPO_RX_O : spo_uni_run_value(spo_unitab_rx, spo_unitab_rx_n, cp);
}

int spo_uni_bt_class(uint32_t cp)
{
    return cp > 0x10FFFF ? SPO_BT_DROP : spo_uni_run_value(spo_unitab_bt, spo_unitab_bt_n, cp);
}

int spo_uni_ccc(uint32_t cp)
{
    return cp > 0x10FFFF ? 0 : spo_uni_run_value(spo_unitab_ccc, spo_unitab_ccc_n, cp);
}

int spo_uni_case_class(uint32_t cp)
{
    return cp > 0x10FFFF ? 0 : spo_uni_run_value(spo_unitab_case, spo_unitab_case_n, cp);
}

long spo_uni_find_record(const uint32_t *t, size_t nrec, size_t w, uint32_t key)
{
    size_t lo = 0, hi = nrec;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t v = t[mid * w];
        if (v == key) return (long)mid;
        if (v < key) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

/* Hangul syllable arithmetic (Unicode ch. 3.12) */
enum { S_BASE = 0xAC00, L_BASE = 0x1100, V_BASE = 0x1161, T_BASE = 0x11A7,
       L_COUNT = 19, V_COUNT = 21, T_COUNT = 28, N_COUNT = V_COUNT * T_COUNT, S_COUNT = L_COUNT * N_COUNT };

/* is cp in the sorted list inert[0..ni)? (spo_uni_nfc_inert) */
static int is_inert(uint32_t cp, const uint32_t *inert, size_t ni)
{
    return ni && spo_uni_find_record(inert, ni, 1, cp) >= 0;
}

/* full canonical decomposition of cp appended at out; returns its length */
static size_t decompose(uint32_t cp, uint32_t *out, const uint32_t *inert, size_t ni)
{
    if (cp >= S_BASE && cp < S_BASE + S_COUNT) {
        uint32_t s = cp - S_BASE;
        out[0] = L_BASE + s / N_COUNT;
        out[1] = V_BASE + (s % N_COUNT) / T_COUNT;
        if (s % T_COUNT == 0) return 2;
        out[2] = T_BASE + s % T_COUNT;
        return 3;
    }
    long r = is_inert(cp, inert, ni) ? -1 : spo_uni_find_record(spo_unitab_decomp, spo_unitab_decomp_n / 3, 3, cp);
    if (r < 0) {
        out[0] = cp;
        return 1;
    }
    size_t k = decompose(spo_unitab_decomp[3 * r + 1], out, inert, ni);
    if (spo_unitab_decomp[3 * r + 2]) k += decompose(spo_unitab_decomp[3 * r + 2], out + k, inert, ni);
    return k;
}

/* the primary composite of (a, b), or 0 */
static uint32_t compose(uint32_t a, uint32_t b, const uint32_t *inert, size_t ni)
{
    if (a >= L_BASE && a < L_BASE + L_COUNT && b >= V_BASE && b < V_BASE + V_COUNT)
        return S_BASE + ((a - L_BASE) * V_COUNT + (b - V_BASE)) * T_COUNT;
    if (a >= S_BASE && a < S_BASE + S_COUNT && (a - S_BASE) % T_COUNT == 0 && b > T_BASE && b < T_BASE + T_COUNT)
        return a + (b - T_BASE);
    size_t lo = 0, hi = spo_unitab_comp_n / 3;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const uint32_t *e = spo_unitab_comp + 3 * mid;
        if (e[0] == a && e[1] == b) return is_inert(e[2], inert, ni) || is_inert(a, inert, ni) || is_inert(b, inert, ni) ? 0 : e[2];
        if (e[0] < a || (e[0] == a && e[1] < b)) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

static int ccc(uint32_t cp, const uint32_t *inert, size_t ni)
{
    int c = spo_uni_ccc(cp);
    return c && is_inert(cp, inert, ni) ? 0 : c;
}

size_t spo_uni_nfc(const uint32_t *in, size_t n, uint32_t *out) { return spo_uni_nfc_inert(in, n, out, NULL, 0); }

size_t spo_uni_nfc_inert(const uint32_t *in, size_t n, uint32_t *out, const uint32_t *inert, size_t ni)
{
    /* 1. canonical decomposition (at most 4 code points each) */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) m += decompose(in[i], out + m, inert, ni);
    /* 2. canonical ordering: stable sort of each run of non-starters */
    for (size_t i = 1; i < m; i++) {
        int c = ccc(out[i], inert, ni);
        if (c == 0) continue;
        uint32_t cp = out[i];
        size_t j = i;
        while (j > 0 && ccc(out[j - 1], inert, ni) > c) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = cp;
    }
    /* 3. canonical composition, in place: a character joins the last
     * starter unless blocked by a character in between whose class is 0 or
     * not below its own */
    size_t k = 0;
    long starter = -1;
    int last = -1; /* class of the last character kept after the starter; -1 none */
    for (size_t i = 0; i < m; i++) {
        uint32_t cp = out[i];
        int c = ccc(cp, inert, ni);
        if (starter >= 0 && (last == -1 || (last != 0 && last < c))) {
            uint32_t comp = compose(out[starter], cp, inert, ni);
            if (comp) {
                out[starter] = comp;
                continue;
            }
        }
        if (c == 0) {
            starter = (long)k;
            last = -1;
        } else {
            last = c;
        }
        out[k++] = cp;
    }
    return k;
}

/* CPython's final sigma: U+03A3 lowers to U+03C2 when preceded by a cased
 * letter (skipping case-ignorables) and not followed by one. */
static uint32_t lower_sigma(const uint32_t *s, size_t n, size_t i)
{
    size_t j = i;
    int c = SPO_CASE_OTHER;
    while (j > 0) {
        c = spo_uni_case_class(s[--j]);
        if (c != SPO_CASE_IGNORABLE) break;
    }
    if (c != SPO_CASE_CASED) return 0x3C3;
    for (j = i + 1; j < n; j++) {
        c = spo_uni_case_class(s[j]);
        if (c != SPO_CASE_IGNORABLE) return c == SPO_CASE_CASED ? 0x3C3 : 0x3C2;
    }
    return 0x3C2;
}

size_t spo_uni_lower(const uint32_t *in, size_t n, uint32_t *out) { return spo_uni_lower_ex(in, n, out, 1); }

size_t spo_uni_lower_ex(const uint32_t *in, size_t n, uint32_t *out, int final_sigma)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = in[i];
        if (cp < 0x80) {
            out[k++] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
        } else if (cp == 0x3A3 && final_sigma) {
            out[k++] = lower_sigma(in, n, i);
        } else if (cp == 0x130) { /* the one multi-character lowercase */
            out[k++] = 'i';
            out[k++] = 0x307;
        } else {
            long r = spo_uni_find_record(spo_unitab_lower, spo_unitab_lower_n / 2, 2, cp);
            out[k++] = r < 0 ? cp : spo_unitab_lower[2 * r + 1];
        }
    }
    return k;
}

size_t spo_utf8_decode(const char *str, size_t len, uint32_t *out)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, k = 0;
    while (i < len) {
        uint32_t b = s[i];
        if (b < 0x80) {
            out[k++] = b;
            i++;
            continue;
        }
        int need;
        uint32_t cp, lo = 0x80, hi = 0xBF;
        if (b >= 0xC2 && b <= 0xDF) {
            need = 1;
            cp = b & 0x1F;
        } else if (b >= 0xE0 && b <= 0xEF) {
            need = 2;
            cp = b & 0x0F;
            if (b == 0xE0) lo = 0xA0; /* overlong */
            if (b == 0xED) hi = 0x9F; /* surrogates */
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3;
            cp = b & 0x07;
            if (b == 0xF0) lo = 0x90; /* overlong */
            if (b == 0xF4) hi = 0x8F; /* > U+10FFFF */
        } else {
            out[k++] = 0xFFFD;
            i++;
            continue;
        }
        int ok = (size_t)need < len - i; /* all its bytes are there */
        for (int j = 1; ok && j <= need; j++) {
            uint32_t c = s[i + j];
            if (c < (j == 1 ? lo : 0x80) || c > (j == 1 ? hi : 0xBF)) ok = 0;
            else cp = (cp << 6) | (c & 0x3F);
        }
        if (ok) {
            out[k++] = cp;
            i += need + 1;
        } else {
            out[k++] = 0xFFFD;
            i++;
        }
    }
    return k;
}

int spo_utf8_encode(uint32_t cp, char *buf)
{
    unsigned char *b = (unsigned char *)buf;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | (cp >> 6));
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | (cp >> 12));
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    b[0] = (unsigned char)(0xF0 | (cp >> 18));
    b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}
