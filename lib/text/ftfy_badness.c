/* ftfy_badness.c — ftfy.badness.is_bad (a search for BADNESS_RE) and the
 * matcher of ftfy.chardata.UTF8_DETECTOR_RE, spelled out over the
 * category masks of ftfy_tables.c. Each alternative of BADNESS_RE is one
 * test below, in the regex's order, with the regex in its comment
 * (LA/UA lower/upper_accented, LC/UC lower/upper_common, SP/EP
 * start/end_punctuation, cur currency, num numeric, box, bad, c1). */
#include "text/ftfy_impl.h"

#define M(c, m) ((spo_ft_cat(c) & (m)) != 0)

static int in(uint32_t c, const uint32_t *set)
{
    for (; *set; set++)
        if (*set == c) return 1;
    return 0;
}

static int az(uint32_t c) { return c >= 'a' && c <= 'z'; }
static int azAZ(uint32_t c) { return az(c) || (c >= 'A' && c <= 'Z'); }
static int space(uint32_t c) { return (spo_ft_pyre(c) & SPO_FT_PYSPACE) != 0; }

enum { LA = SPO_FT_LA, UA = SPO_FT_UA, LC = SPO_FT_LC, UC = SPO_FT_UC, SP = SPO_FT_SP, EP = SPO_FT_EP,
       CUR = SPO_FT_CUR, NUM = SPO_FT_NUM, BOX = SPO_FT_BOX, BAD = SPO_FT_BAD, C1 = SPO_FT_C1,
       COMMON = SPO_FT_COMMON, KAO = SPO_FT_KAO };

/* does an alternative of BADNESS_RE match at s[i..n)? */
static int bad_at(const uint32_t *s, size_t n, size_t i)
{
    uint32_t a = s[i], b = i + 1 < n ? s[i + 1] : 0, c = i + 2 < n ? s[i + 2] : 0, d = i + 3 < n ? s[i + 3] : 0;
    int has2 = i + 1 < n, has3 = i + 2 < n, has4 = i + 3 < n;
    uint32_t ma = spo_ft_cat(a), mb = has2 ? spo_ft_cat(b) : 0, mc = has3 ? spo_ft_cat(c) : 0;
    /* [c1] */
    if (ma & C1) return 1;
    if (has2) {
        /* [bad LA UA box SP EP cur num] [bad] */
        if ((ma & (BAD | LA | UA | BOX | SP | EP | CUR | NUM)) && (mb & BAD)) return 1;
        /* [bad] [LA UA box SP EP cur num] */
        if ((ma & BAD) && (mb & (LA | UA | BOX | SP | EP | CUR | NUM))) return 1;
        /* [LA LC box EP cur num] [UA] */
        if ((ma & (LA | LC | BOX | EP | CUR | NUM)) && (mb & UA)) return 1;
        /* [box EP cur num] [LA] */
        if ((ma & (BOX | EP | CUR | NUM)) && (mb & LA)) return 1;
        /* [LA box EP] [cur] */
        if ((ma & (LA | BOX | EP)) && (mb & CUR)) return 1;
        /* [UA box] [num] */
        if ((ma & (UA | BOX)) && (mb & NUM)) return 1;
        /* [cur num box] [SP] */
        if ((ma & (CUR | NUM | BOX)) && (mb & SP)) return 1;
        /* [box] [kaomoji] */
        if ((ma & BOX) && (mb & KAO)) return 1;
        /* [LA UA cur num SP EP] [box] */
        if ((ma & (LA | UA | CUR | NUM | SP | EP)) && (mb & BOX)) return 1;
        /* [box] [EP] */
        if ((ma & BOX) && (mb & EP)) return 1;
        /* [Œœ][^A-Za-z] */
        if ((a == 0x152 || a == 0x153) && !azAZ(b)) return 1;
        /* [ÂÃÎÐ][€Šš¢£Ÿž\xa0\xad®©°·»{SP}{EP}–—´] */
        static const uint32_t s19[] = {0x20AC, 0x160, 0x161, 0xA2, 0xA3, 0x178, 0x17E, 0xA0, 0xAD, 0xAE, 0xA9,
                                       0xB0, 0xB7, 0xBB, 0x2013, 0x2014, 0xB4, 0};
        if ((a == 0xC2 || a == 0xC3 || a == 0xCE || a == 0xD0) && ((mb & (SP | EP)) || in(b, s19))) return 1;
        /* × [²³] */
        if (a == 0xD7 && (b == 0xB2 || b == 0xB3)) return 1;
        /* à[²µ¹¼½¾] */
        static const uint32_t s22[] = {0xB2, 0xB5, 0xB9, 0xBC, 0xBD, 0xBE, 0};
        if (a == 0xE0 && in(b, s22)) return 1;
        /* √[±∂†≠®™´≤≥¥µø] */
        static const uint32_t s23[] = {0xB1, 0x2202, 0x2020, 0x2260, 0xAE, 0x2122, 0xB4, 0x2264, 0x2265, 0xA5,
                                       0xB5, 0xF8, 0};
        if (a == 0x221A && in(b, s23)) return 1;
        /* ≈[°¢] */
        if (a == 0x2248 && (b == 0xB0 || b == 0xA2)) return 1;
        /* вЂ */
        if (a == 0x432 && b == 0x402) return 1;
        /* Ã[\xa0¡] */
        if (a == 0xC3 && (b == 0xA0 || b == 0xA1)) return 1;
        /* ^[ÃÂ][ ] */
        if (i == 0 && (a == 0xC3 || a == 0xC2) && b == ' ') return 1;
    }
    if (has3) {
        /* [a-zA-Z] [LC UC] [bad] */
        if (azAZ(a) && (mb & (LC | UC)) && (mc & BAD)) return 1;
        /* \s [UA] [cur] */
        if (space(a) && (mb & UA) && (mc & CUR)) return 1;
        /* [LA UA box cur EP] [SP] [num] */
        if ((ma & (LA | UA | BOX | CUR | EP)) && (mb & SP) && (mc & NUM)) return 1;
        /* [LA UA cur num box] [EP] [SP] */
        if ((ma & (LA | UA | CUR | NUM | BOX)) && (mb & EP) && (mc & SP)) return 1;
        /* [a-z] [UA] [SP cur] */
        if (az(a) && (mb & UA) && (mc & (SP | CUR))) return 1;
        /* [LA UA] [EP] \w */
        if ((ma & (LA | UA)) && (mb & EP) && (spo_ft_pyre(c) & SPO_FT_PYWORD)) return 1;
        /* ‚Ä[ìîïòôúùû†°¢π] */
        static const uint32_t s25[] = {0xEC, 0xEE, 0xEF, 0xF2, 0xF4, 0xFA, 0xF9, 0xFB, 0x2020, 0xB0, 0xA2, 0x3C0, 0};
        if (a == 0x201A && b == 0xC4 && in(c, s25)) return 1;
        /* ‚[âó][àä°ê] */
        if (a == 0x201A && (b == 0xE2 || b == 0xF3) && (c == 0xE0 || c == 0xE4 || c == 0xB0 || c == 0xEA)) return 1;
        /* [ВГРС][c1 bad SP EP cur °µ][ВГРС] */
        static const uint32_t vgrs[] = {0x412, 0x413, 0x420, 0x421, 0};
        if (in(a, vgrs) && ((mb & (C1 | BAD | SP | EP | CUR)) || b == 0xB0 || b == 0xB5) && in(c, vgrs)) return 1;
        /* [a-z]\s?[ÃÂ][ ] */
        if (az(a) && (b == 0xC3 || b == 0xC2) && c == ' ') return 1;
        if (has4 && az(a) && space(b) && (c == 0xC3 || c == 0xC2) && d == ' ') return 1;
        /* [a-z.,?!{EP}] Â [ {SP}{EP}] */
        if ((az(a) || a == '.' || a == ',' || a == '?' || a == '!' || (ma & EP)) && b == 0xC2 &&
            (c == ' ' || (mc & (SP | EP))))
            return 1;
        /* β€[™\xa0Ά\xad®°] */
        static const uint32_t s34[] = {0x2122, 0xA0, 0x386, 0xAD, 0xAE, 0xB0, 0};
        if (a == 0x3B2 && b == 0x20AC && in(c, s34)) return 1;
        /* [ΒΓΞΟ][c1 bad SP EP cur °][ΒΓΞΟ] */
        static const uint32_t bgxo[] = {0x392, 0x393, 0x39E, 0x39F, 0};
        if (in(a, bgxo) && ((mb & (C1 | BAD | SP | EP | CUR)) || b == 0xB0) && in(c, bgxo)) return 1;
    }
    if (has4) {
        /* [ØÙ] [common cur bad num SP ŸŠ®°µ»] [ØÙ] [same] */
        static const uint32_t s21[] = {0x178, 0x160, 0xAE, 0xB0, 0xB5, 0xBB, 0};
        uint32_t md = spo_ft_cat(d);
        int x = (mb & (COMMON | CUR | BAD | NUM | SP)) || in(b, s21);
        int y = (md & (COMMON | CUR | BAD | NUM | SP)) || in(d, s21);
        if ((a == 0xD8 || a == 0xD9) && x && (c == 0xD8 || c == 0xD9) && y) return 1;
    }
    /* ГўВЂВ.[A-Za-z ] ('.' is anything but a newline) */
    if (i + 5 < n && a == 0x413 && b == 0x45E && c == 0x412 && d == 0x402 && s[i + 4] == 0x412 &&
        s[i + 5] != '\n' && i + 6 < n && (azAZ(s[i + 6]) || s[i + 6] == ' '))
        return 1;
    return 0;
}

int spo_ftfy_is_bad(const uint32_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (bad_at(s, n, i)) return 1;
    return 0;
}

/* UTF8_DETECTOR_RE:
 *   (?<! [cont_strict]) ( [first2][cont] | [first3][cont]{2} | [first4][cont]{3} )+
 * The three first classes are disjoint, so each round has one choice. */
static size_t unit_len(const uint32_t *s, size_t n, size_t i)
{
    uint32_t m = spo_ft_cat(s[i]);
    size_t k = m & SPO_FT_F2 ? 1 : m & SPO_FT_F3 ? 2 : m & SPO_FT_F4 ? 3 : 0;
    if (!k || i + k >= n) return 0;
    for (size_t j = 1; j <= k; j++)
        if (!(spo_ft_cat(s[i + j]) & SPO_FT_CONT)) return 0;
    return k + 1;
}

int spo_ft_utf8_detector(const uint32_t *s, size_t n, size_t from, size_t *start, size_t *end)
{
    for (size_t p = from; p < n; p++) {
        if (p > 0 && (spo_ft_cat(s[p - 1]) & SPO_FT_CONTS)) continue;
        size_t e = p, k;
        while (e < n && (k = unit_len(s, n, e))) e += k;
        if (e > p) {
            *start = p;
            *end = e;
            return 1;
        }
    }
    return 0;
}
