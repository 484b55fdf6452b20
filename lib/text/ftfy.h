/* ftfy.h — ftfy 6.2.0's fix_text with its default configuration, in C: the
 * text fixer that transformers' CLIPTokenizer runs when ftfy is installed
 * (as in the official SPO environment). Line by line (each line keeps its
 * "\n"), repeated until nothing changes:
 *
 *   unescape HTML entities ("&amp;", "&eacute;", "&EACUTE;", "&#233;") —
 *     in no line from the first one that holds a '<' on
 *   fix mojibake: if the text looks bad (ftfy's badness heuristic), encode
 *     it in the first of latin-1, sloppy-windows-1252/1251/1250/1253/1254,
 *     iso-8859-2, macroman, cp437 that can hold it and whose bytes (after
 *     restoring 0xA0 bytes turned into spaces, and lossy sequences) decode
 *     as UTF-8 (or CESU-8 / Java's C0 80); else fix UTF-8 mojibake embedded
 *     in other text; else latin-1 -> windows-1252; else C1 controls
 *   C1 controls as windows-1252, Latin ligatures, fullwidth/halfwidth forms,
 *   curly quotes to straight ones, line breaks to "\n", ANSI terminal
 *   escapes and control characters removed, NFC.
 *
 * The data are generated from ftfy itself (lib/text/ftfy_tables.c by
 * tests/reference/gen_ftfy_tables.py); tests/unit/test_ftfy.c compares with
 * ftfy on a corpus byte for byte. Text is code points; it never holds
 * surrogates here (UTF-8 decoding gives U+FFFD for them), so ftfy's
 * fix_surrogates has nothing to do.
 *
 * Bounds: the fixing loops stop after SPO_FTFY_MAX_ROUNDS rounds even where
 * ftfy would go on (it never needs that many on real text), so any input
 * ends; memory is a small multiple of the input. */
#ifndef SPO_FTFY_H
#define SPO_FTFY_H

#include <stddef.h>
#include <stdint.h>

enum { SPO_FTFY_MAX_ROUNDS = 64 };

/* fix_text(in[0..n)) into *out (malloc'd, *out_n code points; free it). */
int spo_ftfy_fix(const uint32_t *in, size_t n, uint32_t **out, size_t *out_n);
/* The same on UTF-8 (invalid bytes read as U+FFFD); *out is NUL-terminated. */
int spo_ftfy_fix_utf8(const char *in, size_t len, char **out, size_t *out_len);
/* ftfy.badness.is_bad: does the text look like mojibake? */
int spo_ftfy_is_bad(const uint32_t *s, size_t n);
/* Python's str.isspace() (re's \s on str), for CLIPTokenizer's whitespace_clean */
int spo_ftfy_isspace(uint32_t cp);

#endif
