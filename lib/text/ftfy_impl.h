/* ftfy_impl.h — inside the ftfy port (ftfy.h): growable buffers, the
 * generated tables (ftfy_tables.c) and the steps shared by ftfy.c,
 * ftfy_html.c, ftfy_badness.c and ftfy_encoding.c. Not a public header. */
#ifndef SPO_FTFY_IMPL_H
#define SPO_FTFY_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "text/ftfy.h"

/* code points / bytes with a length and a capacity */
typedef struct {
    uint32_t *p;
    size_t n, cap;
} spo_ft_str;
typedef struct {
    unsigned char *p;
    size_t n, cap;
} spo_ft_bytes;

int spo_ft_reserve(spo_ft_str *s, size_t need);
int spo_ft_push(spo_ft_str *s, uint32_t c);
int spo_ft_append(spo_ft_str *s, const uint32_t *p, size_t n);
int spo_ft_breserve(spo_ft_bytes *b, size_t need);
/* swap a and b's storage (a step writes into a scratch buffer) */
void spo_ft_swap(spo_ft_str *a, spo_ft_str *b);
int spo_ft_equal(const spo_ft_str *a, const spo_ft_str *b);

/* bits of spo_fttab_cat, in gen_ftfy_tables.py's BITS order */
enum {
    SPO_FT_C1 = 1 << 0, SPO_FT_BAD = 1 << 1, SPO_FT_COMMON = 1 << 2, SPO_FT_CUR = 1 << 3,
    SPO_FT_SP = 1 << 4,  /* start_punctuation */
    SPO_FT_EP = 1 << 5,  /* end_punctuation */
    SPO_FT_NUM = 1 << 6, SPO_FT_KAO = 1 << 7,
    SPO_FT_UA = 1 << 8,  /* upper_accented */
    SPO_FT_LA = 1 << 9,  /* lower_accented */
    SPO_FT_UC = 1 << 10, /* upper_common */
    SPO_FT_LC = 1 << 11, /* lower_common */
    SPO_FT_BOX = 1 << 12,
    SPO_FT_F2 = 1 << 13, SPO_FT_F3 = 1 << 14, SPO_FT_F4 = 1 << 15, /* utf8_first_of_2/3/4 */
    SPO_FT_CONT = 1 << 16,                                         /* utf8_continuation */
    SPO_FT_CONTS = 1 << 17                                         /* utf8_continuation_strict */
};
uint32_t spo_ft_cat(uint32_t cp);
/* Python re on str: \s, \w, \d */
enum { SPO_FT_PYSPACE = 1, SPO_FT_PYWORD = 2, SPO_FT_PYDIGIT = 4 };
int spo_ft_pyre(uint32_t cp);

/* the codecs of ftfy.chardata.CHARMAP_ENCODINGS, in its order */
enum { SPO_FT_LATIN1, SPO_FT_W1252, SPO_FT_W1251, SPO_FT_W1250, SPO_FT_W1253, SPO_FT_W1254,
       SPO_FT_ISO8859_2, SPO_FT_MACROMAN, SPO_FT_CP437, SPO_FT_NCODEC };

/* steps */
int spo_ft_unescape_html(spo_ft_str *text, spo_ft_str *tmp);
/* ftfy.fix_encoding (the loop of one-step fixes); depth counts the nesting
 * through decode_inconsistent_utf8 */
int spo_ft_fix_encoding(spo_ft_str *text, int depth);
/* the next match of UTF8_DETECTOR_RE in s[from..n): its [*start, *end), or 0 */
int spo_ft_utf8_detector(const uint32_t *s, size_t n, size_t from, size_t *start, size_t *end);

/* the generated tables */
extern const uint32_t spo_fttab_cat[], spo_fttab_cmap[], spo_fttab_cmap_rev[], spo_fttab_cp1252[], spo_fttab_charref[],
    spo_fttab_badcp[], spo_fttab_lig[], spo_fttab_width[], spo_fttab_pyre[];
extern const size_t spo_fttab_cat_n, spo_fttab_cmap_n, spo_fttab_cp1252_n, spo_fttab_charref_n,
    spo_fttab_badcp_n, spo_fttab_lig_n, spo_fttab_width_n, spo_fttab_pyre_n;
extern const char *const spo_fttab_ent_name[];
extern const uint32_t spo_fttab_ent_val[][4];
extern const size_t spo_fttab_ent_n;

#endif
