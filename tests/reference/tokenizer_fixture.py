#!/usr/bin/env python3
"""tokenizer_fixture.py — expected ids of transformers' slow CLIPTokenizer for
tests/unit/test_tokenizer.c.

Pinned stack (tests/reference/requirements.txt): transformers==4.40.1,
regex 2026.11.19, Python 3.11 (unicodedata 14.0.0), open_clip_torch==2.24.0.

ftfy: CLIPTokenizer.__init__ does `import ftfy` and, when that succeeds,
normalises with ftfy.fix_text + whitespace_clean + lower() instead of
BasicTokenizer. spo implements the path WITHOUT ftfy (BasicTokenizer), so this
script hides ftfy (sys.modules["ftfy"] = None) and asserts the tokenizer took
that path. A Stable Diffusion user whose environment has ftfy installed (it
comes with open_clip_torch, not with diffusers or transformers) gets the
ftfy path; the script reports how many fixture prompts tokenize differently
under it (ftfy unescapes HTML entities, straightens curly quotes, fixes
mojibake, ...).

Writes, one line per prompt: the prompt as a JSON string (ASCII), a tab, the
77 ids of tokenizer(prompt, max_length=77, padding="max_length",
truncation=True) separated by spaces:
  tests/fixtures/tokenizer.txt            the CLIP vocabulary (run
                                          make_clip_vocab.py first)
  tests/fixtures/tokenizer_bytelevel.txt  the byte-level vocabulary of the
                                          tiny test model (this script writes
                                          the directory the way
                                          spo_tok_write_bytelevel does)
Usage: /work/venv/bin/python tests/reference/tokenizer_fixture.py [C_BYTELEVEL_DIR]
With C_BYTELEVEL_DIR (written by spo_tok_write_bytelevel) the script also
checks that transformers loads it and gives the same ids as its own.
"""
import json
import os
import random
import sys
import tempfile

sys.modules["ftfy"] = None  # force the BasicTokenizer path (see above)

from transformers import CLIPTokenizer  # noqa: E402

FIX = "tests/fixtures"

PROMPTS = [
    "a photo of a cat",
    "A Photo Of A CAT",
    "",
    " ",
    "     ",
    "\t",
    "\n\n",
    "a\tb\nc\r\nd",
    "  leading and trailing spaces  ",
    "multiple     spaces    between   words",
    "an astronaut riding a horse on mars, highly detailed, 8k, trending on artstation",
    "masterpiece, best quality, (extremely detailed:1.2), [[cinematic lighting]], {bokeh}",
    "hello, world! how's it going? it's fine; isn't it: yes.",
    "I'm sure you'll see they've gone and we'd say they're 'quoted' here",
    "'s 't 're 've 'm 'll 'd",
    "IT'S DON'T THEY'RE WE'VE I'M YOU'LL HE'D",
    "rock'n'roll o'clock ma'am y'all",
    "don\u2019t curly \u2018quotes\u2019 and \u201cdouble\u201d",
    "1234567890",
    "3.14159 2,718 1e10 0x1F -42 +7",
    "2024-01-15 12:30:45",
    "100% of $50 is #1 @ 3am & 4pm ^_^ ~~ `code` | pipe \\ backslash",
    "!!!???...,,,;;;:::",
    "email@example.com https://example.com/path?x=1&y=2#frag",
    "<|startoftext|>",
    "<|endoftext|>",
    "a cat<|endoftext|>a dog",
    "<|startoftext|>hello<|endoftext|>",
    "<|endoftext|><|endoftext|><|endoftext|>",
    "<|ENDOFTEXT|> upper case special",
    "<|EndOfText|>",
    "<|endoftext|",
    "< |endoftext| >",
    "x<|endoftext|>y<|startoftext|>z",
    "!<|endoftext|>!",
    "<|endoftext|>\u0338 after special",
    "<|ENDOFTEXT|>\u0338 composes",
    "'\u017f <|\u017ftartoftext|> long s",
    "it'\u017f",
    "&amp; &lt;b&gt;bold&lt;/b&gt; &quot;q&quot; &#39;apos&#39; &nbsp; &copy;",
    "<b>html tags</b> <br/> <div class=\"x\">",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00fcber stra\u00dfe",
    "cafe\u0301 decomposed e\u0301 a\u0300 o\u0308",
    "\u00c5ngstr\u00f6m \u212b K\u212a kelvin",
    "\u00c9COLE \u00c0 PARIS",
    "\u0130stanbul \u0131stanbul",
    "\u039f\u0394\u039f\u03a3 \u0391\u03a3 \u03a3 \u03a3\u0391 \u0391\u03a3\u0391",
    "\u1f08\u0345 \u1fbc \u03b1\u0345 a\u0345b",
    "\u0421\u0422\u0410\u041b\u0418\u041d \u043c\u043e\u0441\u043a\u0432\u0430 \u0420\u043e\u0441\u0441\u0438\u044f",
    "\u4e00\u53ea\u732b\u5728\u684c\u5b50\u4e0a",
    "\u6771\u4eac\u30bf\u30ef\u30fc \u3072\u3089\u304c\u306a \u30ab\u30bf\u30ab\u30ca",
    "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8 \u1100\u1161\u11a8",
    "\uf900\uf901 \U0002f800 compatibility ideographs",
    "abc\u4e2d\u6587def",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35",
    "emoji \U0001f600\U0001f431\U0001f680 cat \U0001f408",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467 family zwj \U0001f44d\U0001f3fd",
    "flags \U0001f1fa\U0001f1f8 \U0001f1ef\U0001f1f5",
    "\u2764\ufe0f heart with vs16 \u2603 snowman",
    "zero\u200bwidth\u200cjoiner\u200dtest\ufeffbom",
    "soft\u00adhyphen",
    "nbsp\u00a0here\u2003em\u3000ideographic",
    "line\u2028sep\u2029para",
    "ctrl\x01\x02\x7f\x1b[0m chars\x0b\x0c",
    "replacement \ufffd char",
    "private \ue000 use \U000f0000",
    "unassigned \u0378 \U0001fffe",
    "\u00bd \u2153 \u2160\u2161\u2162 \u2460\u2461 \u00b2\u00b3 \u0663\u0664 \uff11\uff12",
    "\uff21\uff22\uff23 fullwidth \uff41\uff42\uff43",
    "\ufb01\ufb02 ligatures \ufb05 \u0133",
    "\u1e9e \u00df sharp s",
    "mixed CaSe WoRdS iN a PrOmPt",
    "a" * 100,
    "ab" * 60,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "pneumonoultramicroscopicsilicovolcanoconiosis",
    " ".join(["word"] * 100),
    ", ".join(["a beautiful landscape with mountains"] * 12),
    "one two three four five six seven eight nine ten " * 9,
    "1 2 3 4 5 6 7 8 9 0 " * 10,
    "1234567890" * 10,
    "!" * 200,
    "\u732b" * 90,
    "a\u0301" * 40,
    "\U0001f600" * 30,
    "tokens end exactly here " * 9 + "x",
    "q" * 3 + "'" + "s" * 3,
    "tab\tseparated\tvalues",
    "under_score snake_case kebab-case camelCase PascalCase",
    "C++ C# F# .NET node.js",
    "a/b\\c|d",
    "(((nested))) [[[brackets]]] {{{braces}}}",
    "\u00a9 \u00ae \u2122 \u00b0 \u00b1 \u00d7 \u00f7 \u20ac \u00a3 \u00a5",
    "\u2190\u2192\u2191\u2193 \u221e \u2211 \u221a \u2248 \u2260",
    "\u2500\u2502\u250c\u2510 box drawing \u2588\u2591",
    "\U0001d400\U0001d401 math bold \U0001d7ce\U0001d7cf",
    "\U00010400\U00010428 deseret",
    "\u0300leading combining mark",
    "e\u0301\u0327 \u0065\u0327\u0301 reorder",
    "\u1e0b\u0323 \u1e0d\u0307 dot above below",
    "\u0f71\u0f72\u0f80 tibetan",
    "\u09c7\u09be \u0b47\u0b3e \u0dd9\u0dcf",
    "a painting of a fox in the style of van gogh",
    "portrait of a woman, oil on canvas, rembrandt lighting",
    "cyberpunk city at night, neon signs, rain, 4k uhd",
    "low quality, blurry, bad anatomy, extra fingers",
    "a red apple on a wooden table",
    "studio ghibli style, anime, cel shading",
    "Cat",
    "x",
    "'",
    "''",
    "<",
    "<|",
    "|>",
]


def random_prompts(n, seed=1):
    rng = random.Random(seed)
    pools = [
        "abcdefghijklmnopqrstuvwxyz",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "0123456789",
        " ,.!?'\"-:;()[]{}<>|/\\&#@%*_+=~`^",
        "\t\n ",
        "\u00e0\u00e9\u00ee\u00f5\u00fc\u00c7\u00d1\u00df\u0153\u00e6",
        "\u0301\u0308\u0327\u0345\u0338\u0323",
        "\u03a3\u03c3\u03c2\u0391\u03b1\u039f",
        "\u4e00\u4e8c\u4e09\u732b\u72d7\uf900",
        "\u3042\u30a2\u30fc\ud55c\u1100\u1161\u11a8",
        "\U0001f600\U0001f408\u2764\ufe0f\u200d",
        "\u0130\u017f\u212a\u212b\u00b2\u2160\u00bd",
    ]
    weights = [30, 5, 6, 8, 4, 5, 3, 3, 3, 3, 2, 2]
    out = []
    for _ in range(n):
        length = rng.choice([1, 3, 8, 20, 40, 80, 200])
        s = []
        for _ in range(length):
            pool = rng.choices(pools, weights)[0]
            s.append(rng.choice(pool))
        if rng.random() < 0.1:
            s.insert(rng.randrange(len(s) + 1), rng.choice(["<|endoftext|>", "<|startoftext|>", "'s", "'LL"]))
        out.append("".join(s))
    return out


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def write_bytelevel(d):
    """The byte-level tokenizer directory, as spo_tok_write_bytelevel."""
    chars = bytes_to_unicode()
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": 256 + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = 512
    vocab["<|endoftext|>"] = 513
    with open(os.path.join(d, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(d, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        with open(os.path.join(FIX, "clip-tokenizer", name), encoding="utf-8") as src:
            cfg = json.load(src)
        cfg.pop("name_or_path", None)
        cfg.pop("special_tokens_map_file", None)
        with open(os.path.join(d, name), "w", encoding="utf-8") as f:
            json.dump(cfg, f, indent=2)


def load(d):
    tok = CLIPTokenizer.from_pretrained(d)
    assert tok.fix_text is None, "ftfy path taken; spo implements the BasicTokenizer path"
    return tok


def encode(tok, p):
    ids = tok(p, max_length=77, padding="max_length", truncation=True).input_ids
    assert len(ids) == 77
    return ids


def write_fixture(path, tok, prompts):
    with open(path, "w", encoding="ascii") as f:
        for p in prompts:
            assert "\x00" not in p
            f.write(json.dumps(p, ensure_ascii=True) + "\t" + " ".join(map(str, encode(tok, p))) + "\n")


def main():
    tok = load(os.path.join(FIX, "clip-tokenizer"))
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (49406, 49407, 49407)
    assert encode(tok, "a photo of a cat")[:7] == [49406, 320, 1125, 539, 320, 2368, 49407]
    prompts = PROMPTS + random_prompts(150)
    write_fixture(os.path.join(FIX, "tokenizer.txt"), tok, prompts)
    long_ = sum(len(tok(p).input_ids) > 77 for p in prompts)
    print(f"tokenizer.txt: {len(prompts)} prompts ({long_} longer than 77 tokens)")

    bl_prompts = PROMPTS[:40] + random_prompts(20, seed=2)
    with tempfile.TemporaryDirectory() as d:
        write_bytelevel(d)
        btok = load(d)
        assert len(btok.get_vocab()) == 514 and btok.bos_token_id == 512 and btok.eos_token_id == 513
        write_fixture(os.path.join(FIX, "tokenizer_bytelevel.txt"), btok, bl_prompts)
        if len(sys.argv) > 1:  # the directory written by spo_tok_write_bytelevel
            ctok = load(sys.argv[1])
            for p in bl_prompts:
                assert encode(ctok, p) == encode(btok, p), p
            with open(os.path.join(sys.argv[1], "vocab.json"), encoding="utf-8") as f:
                assert json.load(f) == btok.encoder, "vocab.json differs"
            print(f"{sys.argv[1]}: transformers loads it, same ids on {len(bl_prompts)} prompts")
    print(f"tokenizer_bytelevel.txt: {len(bl_prompts)} prompts")

    # what SD users with ftfy installed would get
    try:
        del sys.modules["ftfy"]
        import ftfy  # noqa: F401
        import importlib
        import transformers.models.clip.tokenization_clip as tc
        importlib.reload(tc)
        ftok = tc.CLIPTokenizer.from_pretrained(os.path.join(FIX, "clip-tokenizer"))
        if ftok.fix_text is not None:
            diff = [p for p in prompts if encode(ftok, p) != encode(tok, p)]
            print(f"with ftfy installed, {len(diff)} of {len(prompts)} prompts tokenize differently, e.g.:")
            for p in diff[:8]:
                print("   ", json.dumps(p)[:70])
    except ImportError:
        print("ftfy is not installed: SD users of this environment get the BasicTokenizer path too")


if __name__ == "__main__":
    main()
