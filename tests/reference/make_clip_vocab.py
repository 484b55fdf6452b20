#!/usr/bin/env python3
"""make_clip_vocab.py — build the Hugging Face CLIP tokenizer files of
openai/clip-vit-large-patch14 (the tokenizer of Stable Diffusion v1.5) from
the BPE file that PyPI's open_clip_torch ships, since the hub is out of reach:

  vocab.json   the 256 byte-level characters (bytes_to_unicode order), the
               same with "</w>", each merge joined, "<|startoftext|>" (49406),
               "<|endoftext|>" (49407): 49408 tokens
  merges.txt   "#version: 0.2" then merges 1..48894 of the file (the ones
               CLIPTokenizer reads: lines [1 : 49152 - 256 - 2 + 1])
  tokenizer_config.json, special_tokens_map.json   as in SD v1.5's
               tokenizer/ (pad "<|endoftext|>", model_max_length 77)

Usage: /work/venv/bin/python tests/reference/make_clip_vocab.py [OUTDIR]
(default tests/fixtures/clip-tokenizer). Pinned: open_clip_torch==2.24.0.
"""
import gzip
import json
import os
import sys

import open_clip.tokenizer as oct


def bytes_to_unicode():
    """The GPT-2/CLIP byte -> printable character map, in vocabulary order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def added(content):
    return {"__type": "AddedToken", "content": content, "lstrip": False, "normalized": True,
            "rstrip": False, "single_word": False}


def write_configs(out):
    cfg = {
        "add_prefix_space": False,
        "bos_token": added("<|startoftext|>"),
        "do_lower_case": True,
        "eos_token": added("<|endoftext|>"),
        "errors": "replace",
        "model_max_length": 77,
        "name_or_path": "openai/clip-vit-large-patch14",
        "pad_token": "<|endoftext|>",
        "special_tokens_map_file": "./special_tokens_map.json",
        "tokenizer_class": "CLIPTokenizer",
        "unk_token": added("<|endoftext|>"),
    }
    stm = {k: ({kk: vv for kk, vv in v.items() if kk != "__type"} if isinstance(v, dict) else v)
           for k, v in cfg.items() if k in ("bos_token", "eos_token", "pad_token", "unk_token")}
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    with open(os.path.join(out, "special_tokens_map.json"), "w", encoding="utf-8") as f:
        json.dump(stm, f, indent=2)
        f.write("\n")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/clip-tokenizer"
    os.makedirs(out, exist_ok=True)
    with gzip.open(oct.default_bpe(), "rb") as f:
        lines = f.read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1:49152 - 256 - 2 + 1]]
    assert len(merges) == 48894 and all(len(m) == 2 for m in merges)
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    enc = {v: i for i, v in enumerate(vocab)}
    assert len(enc) == 49408 and enc["<|startoftext|>"] == 49406 and enc["<|endoftext|>"] == 49407
    # well-known ids of this vocabulary ("a photo of a cat")
    assert [enc[t] for t in ("a</w>", "photo</w>", "of</w>", "cat</w>")] == [320, 1125, 539, 2368]
    with open(os.path.join(out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(enc, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    with open(os.path.join(out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for m in merges:
            f.write(" ".join(m) + "\n")
    write_configs(out)
    print(f"{out}: {len(enc)} tokens, {len(merges)} merges")


if __name__ == "__main__":
    main()
