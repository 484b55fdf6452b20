/* fuzz_ftfy.c — libFuzzer target for the text fixer (text/ftfy.h), which
 * reads users' prompt text, and the tokenizer modes around it: the input is
 * fixed as UTF-8 (invalid bytes read as U+FFFD), and tokenized with the CLIP
 * vocabulary of tests/fixtures/clip-tokenizer in the ftfy, basic and fast
 * modes. The fixed text must be valid UTF-8 holding none of the characters
 * fix_text removes or replaces (controls, CR, U+2028/9, the C1 controls
 * windows-1252 maps, curly quotes, ligatures, fullwidth ASCII)
 * and at most 4 bytes for each input byte; ids must be in the vocabulary.
 * Run with `sh tests/fuzz/run.sh SECONDS ftfy` (from the repository root). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text/ftfy.h"
#include "text/prompts.h"
#include "text/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int removed(uint32_t c)
{
    return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || c == '\r' ||
           (c >= 0x80 && c <= 0x9F && c != 0x81 && c != 0x8D && c != 0x8F && c != 0x90 && c != 0x9D) ||
           c == 0x2028 || c == 0x2029 || (c >= 0x2018 && c <= 0x201F) || c == 0x2BC || c == 0xFEFF ||
           (c >= 0x206A && c <= 0x206F) || (c >= 0xFFF9 && c <= 0xFFFC) || (c >= 0xFB00 && c <= 0xFB06) ||
           (c >= 0xFF01 && c <= 0xFF5E) || c == 0x3000;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static spo_tok *tok;
    if (!tok && spo_tok_load(&tok, "tests/fixtures/clip-tokenizer")) abort();
    char *out;
    size_t n;
    if (spo_ftfy_fix_utf8((const char *)data, size, &out, &n)) abort();
    if (n > 4 * size + 4 || strlen(out) > n || !spo_utf8_valid(out, n)) abort();
    for (size_t i = 0; i < n;) { /* decode and check each character */
        unsigned char b = (unsigned char)out[i];
        int len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
        uint32_t c = len == 1 ? b : b & (0x7F >> len);
        for (int k = 1; k < len; k++) c = (c << 6) | ((unsigned char)out[i + k] & 0x3F);
        if (removed(c)) abort();
        i += (size_t)len;
    }
    free(out);
    /* the tokenizer takes a C string: stop at the first NUL */
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = 0;
    for (int mode = SPO_TOK_BASIC; mode <= SPO_TOK_FAST; mode++) {
        int32_t ids[77];
        int n_real;
        spo_tok_set_mode(tok, mode);
        if (spo_tok_encode(tok, s, ids, 77, &n_real) || n_real < 2 || n_real > 77) abort();
        for (int i = 0; i < 77; i++)
            if (ids[i] < 0 || ids[i] >= spo_tok_vocab_size(tok)) abort();
    }
    free(s);
    return 0;
}
