/* tok_fast.c — the normalizer and the pre-tokenizer classes of
 * transformers' CLIPTokenizerFast (the `tokenizers` library, 0.19.1), the
 * preference model's tokenizer in the official SPO code:
 *
 *   normalizer     NFC, Replace(\s+ -> " "), Lowercase
 *   pre-tokenizer  Split('s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|
 *                  [^\s\p{L}\p{N}]+, keep the matches), ByteLevel
 *
 * The library's Unicode data differ from Python's: its NFC does not know
 * the code points of tok_fast_tables.c's inert list, its regex (Oniguruma)
 * has its own letters and numbers (the rx runs), its Lowercase has no
 * final-sigma rule. tests/reference/gen_fast_tables.py measures all three
 * on the library. */
#include "text/tok_impl.h"
#include "text/unicode.h"

int spo_tok_fast_class(uint32_t cp)
{
    return cp > 0x10FFFF ? SPO_RX_O : spo_uni_run_value(spo_fasttab_rx, spo_fasttab_rx_n, cp);
}

size_t spo_tok_fast_normalize(const uint32_t *in, size_t n, uint32_t *out, uint32_t *tmp)
{
    /* NFC into tmp (4 n) */
    size_t m = spo_uni_nfc_inert(in, n, tmp, spo_fasttab_inert, spo_fasttab_inert_n);
    /* \s+ -> " " in place (the class SKIP is exactly the regex's \s) */
    size_t k = 0;
    int in_space = 0;
    for (size_t i = 0; i < m; i++) {
        if (spo_tok_fast_class(tmp[i]) == SPO_RX_SKIP) {
            if (!in_space) tmp[k++] = ' ';
            in_space = 1;
        } else {
            tmp[k++] = tmp[i];
            in_space = 0;
        }
    }
    /* lower each code point (2 k) */
    return spo_uni_lower_ex(tmp, k, out, 0);
}
