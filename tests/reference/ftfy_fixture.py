#!/usr/bin/env python3
"""ftfy_fixture.py — the corpus and expected outputs of tests/unit/test_ftfy.c:
ftfy 6.2.0's fix_text, and the ids of the two tokenizers of the official SPO
run, on >= 1000 generated prompts heavy in what users' prompt files hold:
curly quotes, HTML entities, mojibake of every codec ftfy knows (plain,
double, embedded, with 0xA0 turned into a space, lossy), fullwidth and
halfwidth forms, ligatures, C0/C1 controls and terminal escapes, line
breaks, emoji, CJK, Arabic and other scripts, combining marks, very long
words and prompts longer than 77 tokens.

Writes tests/fixtures/ftfy/corpus.jsonl.gz, one JSON array per line:
  [prompt, fixed, slow_ids, fast_ids, is_bad]
  fixed     ftfy.fix_text(prompt), or null when equal to the prompt
  slow_ids  transformers 4.40.1 CLIPTokenizer WITH ftfy installed (the
            diffusion pipeline's tokenizer), max_length 77, truncation,
            the trailing padding cut off
  fast_ids  CLIPTokenizerFast (tokenizers 0.19.1), the same way (the
            preference model's tokenizer, AutoTokenizer in the official code)
  is_bad    ftfy.badness.is_bad(prompt)
and tests/fixtures/ftfy/noise.jsonl.gz: [text, fixed, is_bad] for random short
strings over the characters ftfy's heuristics name (no ids), which drive the
mojibake repair through its corners. (gzip, no name or time in the header:
the same bytes on every run.)

The vocabulary is tests/fixtures/clip-tokenizer (make_clip_vocab.py: the
CLIP BPE of open_clip, the vocabulary of SD v1.5 and of
laion/CLIP-ViT-H-14-laion2B-s32B-b79K; the hub is out of reach here, so the
fast tokenizer is converted from it by transformers, as the hub's
tokenizer.json was).

Usage: /work/venv/bin/python tests/reference/ftfy_fixture.py
Pinned: ftfy==6.2.0, transformers==4.40.1, tokenizers==0.19.1, Python 3.11.
"""
import gzip
import io
import json
import os
import random

import ftfy
import ftfy.bad_codecs  # noqa: F401
import tokenizers
import transformers
from ftfy.badness import MOJIBAKE_CATEGORIES, is_bad
from ftfy.chardata import UTF8_CLUES
from transformers import CLIPTokenizer, CLIPTokenizerFast

assert ftfy.__version__ == "6.2.0" and transformers.__version__ == "4.40.1" and tokenizers.__version__ == "0.19.1"
FIX = "tests/fixtures"
OUT = os.path.join(FIX, "ftfy")

PHRASES = [
    "a photo of a cat", "an astronaut riding a horse on mars", "portrait of a woman, oil on canvas",
    "cyberpunk city at night, neon signs, rain", "a red apple on a wooden table", "studio ghibli style, anime",
    "the café on the corner of the rue de rivoli", "naïve art of a fjord in norway", "a crème brûlée with berries",
    "señor garcía's piñata party", "über-detailed straße in münchen", "a smörgåsbord at the skånska fair",
    "ancient château near the côte d'azur", "jalapeño nachos, 8k, hdr", "Zoë and Chloé at the rendez-vous",
    "São Paulo skyline at dawn", "Dvořák's symphony in a concert hall", "Łódź old town in winter",
    "Ελληνικό χωριό στο ηλιοβασίλεμα", "Москва, красная площадь, зима", "Київ вночі, ліхтарі",
    "日本の桜の木の下の猫", "一只在桌子上的猫", "서울의 밤거리, 네온사인", "مدينة عربية قديمة في الصحراء",
    "עיר עתיקה בירושלים", "नमस्ते दुनिया, रंगीन त्योहार", "สวัสดี ตลาดน้ำ", "Türkçe İstanbul manzarası",
    "a dragon made of fire – epic, highly detailed — trending", "price: 5€ or £4 or ¥600", "it's 25°C and sunny",
    "≥ 90% quality ± 5", "the “best” café’s ‘special’ crêpe", "a knight… standing • alone", "™ ® © logos",
]
WORDS = ("masterpiece best quality ultra detailed cinematic lighting bokeh portrait landscape sunset forest castle "
         "dragon robot city night rain neon watercolor sketch painting photorealistic 4k 8k hdr trending artstation "
         "octane render unreal engine volumetric fog golden hour wide angle macro close-up").split()

CURLY = ["\u2018", "\u2019", "\u201a", "\u201b", "\u201c", "\u201d", "\u201e", "\u201f", "\u02bc", "\u2032", "\u2033",
         "\u00ab", "\u00bb", "\u2039", "\u203a"]
ENTITIES = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&nbsp;", "&eacute;", "&EACUTE;", "&Eacute;", "&ntilde;",
            "&NTILDE;", "&nTILDE;", "&szlig;", "&SZLIG;", "&mdash;", "&ndash;", "&hellip;", "&rsquo;", "&ldquo;",
            "&rdquo;", "&copy;", "&COPY;", "&reg;", "&trade;", "&deg;", "&euro;", "&pound;", "&yen;", "&frac12;",
            "&Jscr;", "&HilbertSpace;", "&checkmark;", "&NotNestedGreaterGreater;", "&CounterClockwiseContourIntegral;",
            "&amp", "&ampx;", "&foo;", "&AMP;", "&Amp;", "&#39;", "&#8217;", "&#x2019;", "&#X201C;", "&#0;", "&#128;",
            "&#150;", "&#129;", "&#59;", "&#x3b;", "&#xD800;", "&#1114112;", "&#99999999999999999999;", "&#65abc;",
            "&#x;", "&#;", "&#xZZ;", "&#13;", "&#1;", "&#11;", "&#127;", "&#xFFFE;", "&#x1FFFF;", "&#x1F600;",
            "&#12354;", "&#0065;", "&lt;|endoftext|&gt;", "&amp;amp;", "&amp;lt;b&amp;gt;", "&AElig;", "&aelig;",
            "&AELIG;", "&Dagger;", "&dagger;", "&DAGGER;", "&thetasym;", "&THETASYM;", "&igrave;", "&IGRAVE;"]
MOJI_CODECS = ["sloppy-windows-1252", "latin-1", "sloppy-windows-1251", "sloppy-windows-1250",
               "sloppy-windows-1253", "sloppy-windows-1254", "iso-8859-2", "macroman", "cp437", "windows-1252"]
WIDE = ["\uff21\uff22\uff23", "\uff41\uff42\uff43", "\uff11\uff12\uff13", "\uff0c", "\uff01", "\uff1f", "\uff08",
        "\uff09", "\u3000", "\uff76\uff80\uff76\uff85", "\uff73\uff9e", "\uffe5", "\uffe3", "\uff5e", "\uffa1\uffa4",
        "\uffe8", "\uff0e", "\uff1a", "\uff1b", "\uff02", "\uff07"]
LIGS = ["\ufb00", "\ufb01", "\ufb02", "\ufb03", "\ufb04", "\ufb05", "\ufb06", "\u0132", "\u0133", "\u0149",
        "\u01c4", "\u01c5", "\u01c6", "\u01c7", "\u01c8", "\u01c9", "\u01ca", "\u01cb", "\u01cc", "\u01f1", "\u01f2",
        "\u01f3", "\u00e6", "\u0153"]
CONTROLS = ["\x01", "\x07", "\x08", "\x0b", "\x0c", "\x0e", "\x1a", "\x1b", "\x1f", "\x7f", "\x80", "\x81",
            "\x85", "\x8d", "\x91", "\x92", "\x93", "\x94", "\x96", "\x9d", "\x9f", "\u200b", "\u200c", "\u200d",
            "\u200e", "\u202e", "\u2060", "\u206a", "\u206f", "\ufeff", "\ufff9", "\ufffb", "\ufffc", "\ufffd",
            "\r\n", "\r", "\n", "\t", "\u2028", "\u2029", "\x1b[31m", "\x1b[0m", "\x1b[1;32;44m", "\x1b[\u0663m",
            "\x1b[", "\U000e0067", "\U0001d173", "\u00ad", "\u180e", "\u3164", "\u115f"]
EMOJI = ["\U0001f600", "\U0001f431", "\U0001f680", "\u2764\ufe0f", "\U0001f468\u200d\U0001f469\u200d\U0001f467",
         "\U0001f44d\U0001f3fd", "\U0001f1fa\U0001f1f8", "\U0001f3f4\U000e0067\U000e0062\U000e0077\U000e006c\U000e0073\U000e007f",
         "\u2603", "\u2600\ufe0e", "\U0001f9d1\u200d\U0001f680", "\u00a9\ufe0f", "#\ufe0f\u20e3", "\U0001fae0"]
SCRIPTS = ["\u732b\u5728\u684c\u5b50\u4e0a", "\u6771\u4eac\u30bf\u30ef\u30fc", "\u3072\u3089\u304c\u306a",
           "\ud55c\uad6d\uc5b4", "\u1100\u1161\u11a8", "\u0645\u0631\u062d\u0628\u0627", "\u0627\u0644\u0639\u0631\u0628\u064a\u0629",
           "\ufefb\ufef7", "\u05e9\u05dc\u05d5\u05dd", "\u0928\u092e\u0938\u094d\u0924\u0947", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35",
           "\u10d2\u10d0\u10db\u10d0\u10e0\u10ef\u10dd\u10d1\u10d0", "\u0561\u0562\u0563", "\u1780\u1781", "\u4e00\u4e8c\u4e09",
           "\uf900\uf901", "\U0002f800", "\U00020000", "\u0391\u03a3 \u039f\u0394\u039f\u03a3", "\u03a3\u0391",
           "\u0130stanbul", "\u017ftar", "\u212a\u212b", "\u1e9e\u00df", "\u0149", "\u1f08\u0345", "\U00011935\U00011930"]
MARKS = ["\u0301", "\u0300", "\u0308", "\u0327", "\u0323", "\u0345", "\u0338", "\u0334", "\u0316", "\u0f71",
         "\u0f72", "\u0f80", "\u1ac0", "\u1dfa", "\u0898", "\u08ca", "\U00010d24", "\u302a", "\u3099", "\u309a",
         "\u093c", "\u094d", "\u05b0", "\u064b", "\u0670", "\u20d7", "\ufe20"]


def mojibake(rng, s):
    codec = rng.choice(MOJI_CODECS)
    b = s.encode("utf-8")
    try:
        if codec == "windows-1252":  # lossy: undefined bytes become U+FFFD
            return b.decode(codec, errors="replace")
        out = b.decode(codec)
    except UnicodeDecodeError:
        return s
    r = rng.random()
    if r < 0.15:
        out = out.replace("\u00a0", " ")  # a program turned 0xA0 into a space
    elif r < 0.25:
        try:  # double mojibake
            out = out.encode("utf-8").decode(rng.choice(["sloppy-windows-1252", "latin-1"]))
        except UnicodeDecodeError:
            pass
    return out


def words(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def sprinkle(rng, base, pool, k):
    s = list(base)
    for _ in range(k):
        s.insert(rng.randrange(len(s) + 1), rng.choice(pool))
    return "".join(s)


def special_mojibake():
    """Hand-made corners: CESU-8 and Java's C0 80 (utf-8-variants), 0xA0
    bytes turned into spaces (restore_byte_a0), lossy windows-1252, and
    Python's '$' before a final newline in ftfy's byte regexes."""
    out = []
    for s in ["\U0001f600 smile", "cat \U0001f431 and \U0001f680 rocket", "caf\u00e9 \U0001f60d"]:
        b = s.encode("utf-16-le").decode("utf-16-le", "surrogatepass")  # as is; then CESU-8:
        cesu = "".join(c.encode("utf-8") .decode("latin-1") if ord(c) < 0x10000 else
                       "".join(u.encode("utf-8", "surrogatepass").decode("latin-1")
                               for u in c.encode("utf-16-be").decode("utf-16-be", "surrogatepass")
                               .encode("utf-16-be", "surrogatepass").decode("utf-16-be", "surrogatepass"))
                       for c in b)
        out.append(cesu)
        surr = "".join(chr(0xD800 + ((ord(c) - 0x10000) >> 10)) + chr(0xDC00 + ((ord(c) - 0x10000) & 0x3FF))
                       if ord(c) >= 0x10000 else c for c in s)
        raw = surr.encode("utf-8", "surrogatepass")
        out.append(raw.decode("latin-1"))
        out.append(raw.decode("sloppy-windows-1252"))
        out.append("caf\u00c3\u00a9 " + raw.decode("sloppy-windows-1252") + "\n")
    for raw in [b"abc\xc0\x80def \xc3\xa9", b"null\xc0\x80 caf\xc3\xa9\n", b"caf\xc3\xa9 \xc0\n",
                b"caf\xc3\xa9 \xc0", b"\xc3\xa9\xed\xa0\xbd\xed\xb8\n", b"\xc3\xa9\xed\xa0\xbd\xed\xb8\x80",
                b"\xc3\xa9\xed\xa0\xbd\xed", b"\xc3\xa9 \xed\xa0\x80 x", b"\xc3\xa9 \xed\x9f\xbf x"]:
        for codec in ["latin-1", "sloppy-windows-1252"]:
            out.append(raw.decode(codec))
    for word in ["\u00e0 la mode", "voil\u00e0 tout", "\u00e0 quele", "\u00e0s vezes", "\u00e0  deux",
                 "\u0160koda", "\u03a0\u03b1\u03c1\u03af\u03c3\u03b9", "\u0420\u043e\u0441\u0441\u0438\u044f",
                 "\u0660\u0661", "a \u2020 dagger", "\u2800 braille", "\U0001f620 angry", "\U0001f8a0\U0001f0a0",
                 "f\u00e0 cil", "\u00e0"]:
        for codec in ["sloppy-windows-1252", "latin-1", "sloppy-windows-1251", "macroman"]:
            try:
                m = word.encode("utf-8").decode(codec)
            except UnicodeDecodeError:
                continue
            out.append(m.replace("\u00a0", " "))
            out.append("the " + m.replace("\u00a0", " ") + " is nice")
    for s in ["\u201cquoted\u201d", "it\u2019s", "\u2014 dash \u2026"]:
        out.append(s.encode("utf-8").decode("windows-1252", errors="replace"))
        out.append(s.encode("utf-8").decode("windows-1252", errors="replace").replace("\ufffd", "?"))
    return out


def corpus():
    rng = random.Random(12)
    P = list(PHRASES) + special_mojibake()
    for _ in range(110):  # curly quotes
        q = rng.sample(CURLY, 2)
        P.append(f"{q[0]}{rng.choice(PHRASES)}{q[1]} {words(rng, 3)} it{rng.choice(CURLY)}s a horse{rng.choice(CURLY)}s")
    for _ in range(170):  # HTML entities, sometimes with a '<' on the line or an earlier one
        s = sprinkle(rng, words(rng, rng.randint(2, 8)), ENTITIES, rng.randint(1, 4))
        r = rng.random()
        if r < 0.12:
            s = "<b>" + s
        elif r < 0.2:
            s = "line one <br>\n" + s
        elif r < 0.28:
            s = s + "\nsecond line " + rng.choice(ENTITIES)
        P.append(s)
    src = PHRASES + [sprinkle(rng, words(rng, 4), CURLY + SCRIPTS + EMOJI, 2) for _ in range(40)]
    for _ in range(330):  # mojibake: whole, embedded in good text, or next to good accents
        bad = mojibake(rng, rng.choice(src))
        r = rng.random()
        if r < 0.3:
            s = bad
        elif r < 0.6:
            s = words(rng, 3) + " " + bad + " " + words(rng, 2)
        elif r < 0.8:
            s = rng.choice(PHRASES) + ", " + bad
        else:
            s = mojibake(rng, rng.choice(src)) + "\n" + bad
        P.append(s)
    for _ in range(80):
        P.append(sprinkle(rng, words(rng, rng.randint(2, 6)), WIDE, rng.randint(1, 5)))
    for _ in range(60):
        P.append(sprinkle(rng, words(rng, rng.randint(2, 6)), LIGS, rng.randint(1, 4)))
    for _ in range(110):
        P.append(sprinkle(rng, words(rng, rng.randint(2, 8)), CONTROLS, rng.randint(1, 5)))
    for _ in range(60):
        P.append(sprinkle(rng, words(rng, rng.randint(1, 6)), EMOJI, rng.randint(1, 4)))
    for _ in range(90):
        P.append(sprinkle(rng, words(rng, rng.randint(0, 4)), SCRIPTS + [" ", "\uff0c"], rng.randint(1, 5)))
    for _ in range(70):
        base = rng.choice(PHRASES + SCRIPTS + ["a e i o u", "AEIOU", "\u1100\u1161"])
        P.append(sprinkle(rng, base, MARKS, rng.randint(1, 6)))
    for _ in range(25):  # very long words and long prompts
        P.append("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(60, 400))))
        P.append(", ".join(rng.choice(PHRASES) for _ in range(rng.randint(8, 20))))
    for s in ["<|endoftext|>", "a cat<|endoftext|>a dog", "<|ENDOFTEXT|> loud", "&lt;|endoftext|&gt;",
              "x<|startoftext|>&amp;y", "caf\u00c3\u00a9<|endoftext|>caf\u00c3\u00a9", "<|endoftext|>\u0338",
              "it\u2019s <|endoftext|> \u201cok\u201d", "\u201c<|endoftext|>\u201d", "&EACUTE;<|endoftext|>&eacute;"]:
        P.append(s)
    pools = [WORDS, CURLY, ENTITIES, WIDE, LIGS, CONTROLS, EMOJI, SCRIPTS, MARKS, [" ", ", ", "\n"]]
    for _ in range(250):  # everything at once
        s = []
        for _ in range(rng.randint(1, 25)):
            pool = rng.choices(pools, [30, 4, 4, 3, 3, 4, 3, 4, 3, 10])[0]
            s.append(rng.choice(pool))
        t = "".join(s)
        if rng.random() < 0.3:
            t = mojibake(rng, t)
        P.append(t)
    return P


def noise():
    alphabet = "".join(sorted(set("".join(MOJIBAKE_CATEGORIES.values()) + "".join(UTF8_CLUES.values()))))
    # expand the ranges the strings hold ("\x80-\xbf" etc.) into characters
    import re
    chars = [chr(c) for c in range(0x20, 0x3000) if re.match("[" + alphabet + "]", chr(c))]
    chars += list("abcxyzABC .,?!'\"-") + ["\u00a0", "\ufffd", "\x1a", "\n", "ВГРС"[0]]
    rng = random.Random(7)
    out = []
    for _ in range(1500):
        out.append("".join(rng.choice(chars) for _ in range(rng.randint(1, 12))))
    for _ in range(500):  # mojibake of real words, then mangled
        s = mojibake(rng, rng.choice(PHRASES))
        s = list(s)
        for _ in range(rng.randint(0, 3)):
            if s:
                s[rng.randrange(len(s))] = rng.choice(chars)
        out.append("".join(s))
    return out


def trim(ids, pad):
    while len(ids) > 1 and ids[-1] == pad and ids[-2] == pad:
        ids = ids[:-1]
    return ids


def gz_writer(path):
    raw = open(path, "wb")
    return raw, io.TextIOWrapper(gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0),
                                 encoding="utf-8", newline="\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    slow = CLIPTokenizer.from_pretrained(os.path.join(FIX, "clip-tokenizer"))
    assert slow.fix_text is not None, "ftfy is not installed: the slow tokenizer would not use it"
    fast = CLIPTokenizerFast.from_pretrained(os.path.join(FIX, "clip-tokenizer"))
    pad = slow.pad_token_id
    assert pad == fast.pad_token_id == 49407
    prompts = corpus()
    n_fixed = n_long = 0
    raw, f = gz_writer(os.path.join(OUT, "corpus.jsonl.gz"))
    with raw, f:
        for p in prompts:
            fixed = ftfy.fix_text(p)
            a = slow(p, max_length=77, padding="max_length", truncation=True).input_ids
            b = fast(p, max_length=77, padding="max_length", truncation=True).input_ids
            assert len(a) == len(b) == 77
            n_fixed += fixed != p
            n_long += len(slow(p).input_ids) > 77
            row = [p, None if fixed == p else fixed, trim(a, pad), trim(b, pad), int(is_bad(p))]
            f.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
    raw, f = gz_writer(os.path.join(OUT, "noise.jsonl.gz"))
    with raw, f:
        for s in noise():
            fixed = ftfy.fix_text(s)
            f.write(json.dumps([s, None if fixed == s else fixed, int(is_bad(s))], ensure_ascii=False,
                               separators=(",", ":")) + "\n")
    print(f"corpus.jsonl.gz: {len(prompts)} prompts, {n_fixed} changed by fix_text, {n_long} longer than 77 tokens")


if __name__ == "__main__":
    main()
