#!/usr/bin/env python3
"""tiny_sd.py — build the tiny SD-1.x model used by the C parity tests.

Builds a StableDiffusionPipeline from diffusers/transformers classes with a
fixed seed, re-initialises every parameter with non-trivial random values,
and writes (all under tests/fixtures/ by default):

  tiny-sd/            diffusers layout, fp32 safetensors: model_index.json,
                      unet/ vae/ text_encoder/ tokenizer/ scheduler/
  tiny-sd-fp16/unet/  the same UNet saved in float16
  tiny-vae-legacy/    vae/ of tiny-sd, decoder half only (decoder.* and
                      post_quant_conv.*; the encoder is left out to keep the
                      fixtures small), with the mid-block attention named the
                      legacy way: decoder.mid_block.attentions.0.{query,key,
                      value,proj_attn} instead of {to_q,to_k,to_v,to_out.0}.
                      diffusers loads it with low_cpu_mem_usage=False (the
                      encoder is then left random, with a warning).

Tokenizer: a byte-level CLIP vocabulary of 514 entries (the 256 GPT-2
byte-to-unicode characters, the same 256 with "</w>", then <|startoftext|>
512 and <|endoftext|> 513) and no merges, so every character of a word is a
token and the last one carries "</w>". These ids equal the first 512 ids of
the real CLIP vocabulary.

Run:  /path/to/venv/bin/python tests/reference/tiny_sd.py [OUTDIR]
"""
import json
import math
import os
import shutil
import sys
import tempfile

import torch
from safetensors.torch import load_file, save_file

from diffusers import (AutoencoderKL, DDIMScheduler, StableDiffusionPipeline,
                       UNet2DConditionModel)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

SEED = 20240601

UNET_CONFIG = dict(
    sample_size=16,
    in_channels=4,
    out_channels=4,
    block_out_channels=(32, 64),
    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    layers_per_block=1,
    cross_attention_dim=32,
    attention_head_dim=2,  # diffusers naming: this is the number of heads
    norm_num_groups=8,
)

VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    block_out_channels=(32, 64),
    down_block_types=("DownEncoderBlock2D",) * 2,
    up_block_types=("UpDecoderBlock2D",) * 2,
    latent_channels=4,
    layers_per_block=1,
    norm_num_groups=8,
    sample_size=32,
    scaling_factor=0.18215,
)

TEXT_CONFIG = dict(
    vocab_size=514,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    bos_token_id=512,
    eos_token_id=513,
    pad_token_id=513,
)

# SD v1.5's scheduler/scheduler_config.json values.
SCHEDULER_CONFIG = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    num_train_timesteps=1000,
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
    prediction_type="epsilon",
    timestep_spacing="leading",
)


def bytes_to_unicode():
    """GPT-2's reversible map from the 256 byte values to printable chars."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def write_tokenizer_files(d):
    """vocab.json (514 ids) and merges.txt (header only) into directory d."""
    chars = list(bytes_to_unicode().values())
    vocab = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    with open(os.path.join(d, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(d, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
    return len(vocab)


def randomize(module, gen):
    """Re-initialise every parameter of module so that none is zero or one.

    Matrices and conv kernels: N(0, 1/fan_in) (keeps activations O(1) while
    every layer matters, including conv_out and to_out that diffusers
    zero-inits in some models). Embedding tables: N(0, 1).
    Norm weights: 1 + N(0, 0.1); all biases: N(0, 0.1).
    """
    with torch.no_grad():
        for name, mod in module.named_modules():
            for pname, p in mod.named_parameters(recurse=False):
                if isinstance(mod, (torch.nn.GroupNorm, torch.nn.LayerNorm)):
                    if pname == "weight":
                        p.copy_(1 + 0.1 * torch.randn(p.shape, generator=gen))
                    else:
                        p.copy_(0.1 * torch.randn(p.shape, generator=gen))
                elif isinstance(mod, torch.nn.Embedding):
                    p.copy_(torch.randn(p.shape, generator=gen))
                elif pname == "bias" or p.dim() == 1:
                    p.copy_(0.1 * torch.randn(p.shape, generator=gen))
                else:
                    fan_in = p[0].numel()
                    p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in))


def build(tokdir):
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    unet = UNet2DConditionModel(**UNET_CONFIG)
    vae = AutoencoderKL(**VAE_CONFIG)
    text = CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG))
    for m in (unet, vae, text):
        randomize(m, gen)
        m.eval()
    tok = CLIPTokenizer(os.path.join(tokdir, "vocab.json"), os.path.join(tokdir, "merges.txt"),
                        model_max_length=77, pad_token="<|endoftext|>")
    sched = DDIMScheduler(**SCHEDULER_CONFIG)
    return StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet,
                                   scheduler=sched, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


LEGACY = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}


def write_legacy_vae(src, dst):
    """Copy the vae dir src to dst: decoder tensors only, legacy names."""
    if os.path.exists(dst):
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    path = os.path.join(dst, "diffusion_pytorch_model.safetensors")
    sd = load_file(path)
    out = {}
    p = "decoder.mid_block.attentions.0."
    for k, v in sd.items():
        if not k.startswith(("decoder.", "post_quant_conv.")):
            continue
        nk = k
        if k.startswith(p):
            rest = k[len(p):]
            for new, old in LEGACY.items():
                if rest.startswith(new + "."):
                    nk = p + old + rest[len(new):]
        out[nk] = v
    assert sum(".query." in k or ".proj_attn." in k for k in out) == 4
    save_file(out, path, metadata={"format": "pt"})


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
    root = os.path.abspath(root)
    torch.use_deterministic_algorithms(True)
    with tempfile.TemporaryDirectory() as tokdir:
        assert write_tokenizer_files(tokdir) == 514
        pipe = build(tokdir)
        out = os.path.join(root, "tiny-sd")
        for d in ("tiny-sd", "tiny-sd-fp16", "tiny-vae-legacy"):
            shutil.rmtree(os.path.join(root, d), ignore_errors=True)
        pipe.save_pretrained(out, safe_serialization=True)
        pipe.unet.to(torch.float16).save_pretrained(os.path.join(root, "tiny-sd-fp16", "unet"),
                                                    safe_serialization=True)
    write_legacy_vae(os.path.join(out, "vae"), os.path.join(root, "tiny-vae-legacy"))
    print("wrote", out, os.path.join(root, "tiny-sd-fp16"), os.path.join(root, "tiny-vae-legacy"))


if __name__ == "__main__":
    main()
