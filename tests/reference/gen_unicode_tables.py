#!/usr/bin/env python3
"""gen_unicode_tables.py — write lib/text/unicode_tables.c, the Unicode data the
CLIP tokenizer (lib/text/tokenizer.c) needs to match transformers' slow
CLIPTokenizer without ftfy:

  rx    the class of each code point for the pre-tokenizer regex
        <\\|startoftext\\|>|...|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+ compiled
        with regex.IGNORECASE: L, N, O (other) or SKIP (matched by no
        class: \\s, and U+0345 which case-folds to a letter yet is no letter)
  bt    BasicTokenizer._clean_text / _tokenize_chinese_chars / str.split:
        KEEP, DROP (NUL, U+FFFD, category C* but \\t\\n\\r), SPACE (\\t\\n\\r,
        Zs and the other str.isspace() separators U+2028/U+2029), CJK
  ccc   canonical combining class (NFC)
  case  for str.lower()'s final-sigma rule: CASED, IGNORABLE (case-ignorable)
        or OTHER, derived from CPython's own str.lower() behaviour
  decomp  one level of canonical decomposition (cp -> a [b]) without Hangul
  comp    primary composites (a, b) -> c without Hangul
  lower   str.lower() of single code points (cp -> l); U+0130 -> i U+0307
          and U+03A3's context rule are handled in lib/text/unicode.c

Run tables are packed as (start << 8) | value, sorted by start; a code point
takes the value of the last run starting at or before it.

The data come from the Python that runs this script (unicodedata) and the
`regex` module, the same ones transformers uses, so regenerate with the venv
that makes the fixtures:
    /work/venv/bin/python tests/reference/gen_unicode_tables.py > lib/text/unicode_tables.c
Pinned: Python 3.11 (unicodedata 14.0.0), regex 2026.11.19.
"""
import sys
import unicodedata as ud

import regex

MAXCP = 0x110000
CPS = [cp for cp in range(MAXCP) if not 0xD800 <= cp < 0xE000]


def rx_table():
    I = regex.IGNORECASE
    L = regex.compile(r"[\p{L}]", I)
    N = regex.compile(r"[\p{N}]", I)
    O = regex.compile(r"[^\s\p{L}\p{N}]", I)
    val = {}
    for cp in CPS:
        c = chr(cp)
        k = (bool(L.fullmatch(c)), bool(N.fullmatch(c)), bool(O.fullmatch(c)))
        assert sum(k) <= 1, hex(cp)
        val[cp] = 1 if k[0] else 2 if k[1] else 3 if k[2] else 0
    for cp in range(0xD800, 0xE000):  # never reached (not in valid UTF-8)
        val[cp] = 3
    # the contractions and special tokens: which code points match each
    # letter under IGNORECASE (lib/text/tokenizer.c hard-codes this)
    for ch in "strevmlodfxna":
        eq = {cp for cp in CPS if regex.fullmatch(ch, chr(cp), I)}
        want = {ord(ch), ord(ch.upper())} | ({0x17F} if ch == "s" else set())
        assert eq == want, (ch, sorted(map(hex, eq)))
    return val


def is_cjk(cp):  # BasicTokenizer._is_chinese_char
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def bt_table():
    val = {}
    for cp in range(MAXCP):
        c = chr(cp)
        cat = ud.category(c)
        if c in "\t\n\r" or cat == "Zs":
            v = 2
        elif cp == 0 or cp == 0xFFFD or cat.startswith("C"):
            v = 1
        elif c.isspace():
            v = 2  # U+2028, U+2029: str.split() separators; equivalent to ' '
            assert cp in (0x2028, 0x2029), hex(cp)
        elif is_cjk(cp):
            v = 4
        else:
            v = 0
        val[cp] = v
    # after cleaning, no kept character may be regex whitespace, nor
    # decompose to whitespace; lib/text/tokenizer.c also runs NFC word by word,
    # which needs the space to be a starter that composes with nothing
    S = regex.compile(r"\s")
    for cp in CPS:
        if val[cp] in (0, 4):
            assert not S.fullmatch(chr(cp)), hex(cp)
            assert not any(c.isspace() for c in ud.normalize("NFD", chr(cp))), hex(cp)
    assert ud.combining(" ") == 0
    for cp in CPS:
        assert ud.normalize("NFC", " " + chr(cp))[0] == " ", hex(cp)
    return val


def case_table():
    """CPython's final sigma: lower('A'+c+'Σ') and lower('ΑΣ'+c) both end
    in final sigma iff c is case-ignorable; for the others, c is cased iff
    lower(c+'Σ') ends in final sigma."""
    val = {}
    for cp in range(MAXCP):
        c = chr(cp)
        if 0xD800 <= cp < 0xE000:
            val[cp] = 0
            continue
        b = ("Α" + c + "Σ").lower()[-1] == "ς"
        cc = ("ΑΣ" + c).lower()[1] == "ς"
        if b and cc:
            val[cp] = 2
        elif (c + "Σ").lower()[-1] == "ς":
            val[cp] = 1
        else:
            val[cp] = 0
    return val


def runs(val):
    out, prev = [], None
    for cp in range(MAXCP):
        v = val[cp] if isinstance(val, dict) else val(cp)
        if v != prev:
            assert 0 <= v < 256
            out.append((cp << 8) | v)
            prev = v
    return out


def emit(name, nums, per=10):
    lines = [f"const uint32_t {name}[{len(nums)}] = {{"]
    for i in range(0, len(nums), per):
        lines.append("    " + ", ".join("0x%x" % x for x in nums[i:i + per]) + ",")
    lines.append("};")
    lines.append(f"const size_t {name}_n = {len(nums)};")
    return "\n".join(lines)


def main():
    out = []
    out.append("/* unicode_tables.c — GENERATED by tests/reference/gen_unicode_tables.py;")
    out.append(" * do not edit. Python %s, unicodedata %s, regex %s." % (
        sys.version.split()[0], ud.unidata_version, regex.__version__))
    out.append(" * Layouts are described in lib/text/unicode.h. */")
    out.append('#include "unicode.h"\n')

    out.append("/* rx: 0 SKIP, 1 L, 2 N, 3 O (runs) */")
    out.append(emit("spo_unitab_rx", runs(rx_table())))
    out.append("/* bt: 0 KEEP, 1 DROP, 2 SPACE, 4 CJK (runs) */")
    out.append(emit("spo_unitab_bt", runs(bt_table())))
    out.append("/* ccc: canonical combining class (runs) */")
    out.append(emit("spo_unitab_ccc", runs(lambda cp: ud.combining(chr(cp)))))
    out.append("/* case: 0 OTHER, 1 CASED, 2 IGNORABLE (runs) */")
    out.append(emit("spo_unitab_case", runs(case_table())))

    # one level of canonical decomposition, triples (cp, a, b or 0)
    dec = []
    comp = []
    for cp in CPS:
        if 0xAC00 <= cp <= 0xD7A3:
            continue
        d = ud.decomposition(chr(cp))
        if not d or d.startswith("<"):
            continue
        parts = [int(x, 16) for x in d.split()]
        assert 1 <= len(parts) <= 2
        dec += [cp, parts[0], parts[1] if len(parts) == 2 else 0]
        if len(parts) == 2 and ud.normalize("NFC", chr(cp)) == chr(cp):
            comp.append((parts[0], parts[1], cp))
    comp.sort()
    out.append("/* decomp: (cp, a, b or 0) sorted by cp, one level, no Hangul */")
    out.append(emit("spo_unitab_decomp", dec, 12))
    out.append("/* comp: (a, b, c) sorted by (a, b): primary composites, no Hangul */")
    out.append(emit("spo_unitab_comp", [x for t in comp for x in t], 12))

    low = []
    for cp in CPS:
        lc = chr(cp).lower()
        if lc == chr(cp):
            continue
        if len(lc) != 1:
            assert cp == 0x130 and lc == "i\u0307", hex(cp)
            continue
        low += [cp, ord(lc)]
    out.append("/* lower: (cp, lower) sorted by cp; U+0130 -> i U+0307 is in code */")
    out.append(emit("spo_unitab_lower", low, 12))
    print("\n".join(out))


if __name__ == "__main__":
    main()
