#!/usr/bin/env python3
"""tiny_sdxl_unet.py — a tiny SDXL UNet2DConditionModel and its parity data
for tests/unit/test_unet_sdxl.c.

The model has every feature SDXL base's UNet has, at toy size:
  3 levels (8, 16, 16 channels), layers_per_block 2, norm_num_groups 4;
  DownBlock2D first (no attention at level 0), then two
  CrossAttnDownBlock2D (and the mirror up blocks);
  transformer_layers_per_block (1, 1, 2): level 2 has 2 transformer layers
  (the up blocks use the list reversed, the mid block its last entry; a
  palindrome such as (1, 2, 1) would not tell reversed from not);
  attention_head_dim (1, 2, 4): per-level head counts (2 heads of 8 at
  level 1, 4 heads of 4 at level 2 and in the mid block);
  use_linear_projection true; cross_attention_dim 64 (32 + 32, the two
  tiny text encoders' widths concatenated);
  addition_embed_type "text_time": addition_time_embed_dim 8, 6 time ids,
  pooled text width 32, so projection_class_embeddings_input_dim
  32 + 6 * 8 = 80.
Weights: matrices N(0, 1/fan_in), biases N(0, 0.1^2), norm weights
1 + N(0, 0.1^2) (none zero, the zero-initialised proj_out and conv_out
included). fp32, seeded.

The LoRA is the one the official SDXL script adds (train_spo_sdxl.py:
LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
target_modules=["to_k", "to_q", "to_v", "to_out.0"])) with rank 8 here
(64 in the recipe; the rank changes no code path), then A and B replaced
by seeded nonzero values.

Writes tests/fixtures/tiny-sdxl/unet/ (config.json and
diffusion_pytorch_model.safetensors, save_pretrained without the LoRA) and
tests/fixtures/tiny-sdxl/unet_parity.h5:
  /sample [2,4,8,12]   latents (non-square)
  /timestep [2]        float (10.5, 900)
  /context [2,7,64]    encoder_hidden_states
  /text_embeds [2,32]  added_cond_kwargs["text_embeds"] (pooled)
  /time_ids [2,6]      added_cond_kwargs["time_ids"] (original size, crop
                       top-left, target size as the SDXL pipeline makes them)
  /base/out            the UNet without the LoRA
  /lora/modules        the 136 target module names, in named_modules order
  /lora/down, /lora/up every module's A [r,in] and B [out,r], flattened and
                       concatenated in that order (one dataset each keeps the
                       file small: 512 datasets cost more than their data)
  /lora/out            the UNet with the LoRA
  /lora/w              weights of the scalar loss L = sum(out * w)
  /lora/dsample, /lora/dcontext     dL/d sample, dL/d context
  /lora/grad_down, /lora/grad_up    dL/dA, dL/dB, laid out as down and up
  /time_proj_256 [12,256]  SDXL base's add_time_proj (Timesteps(256, True, 0))
                       of /time_ids flattened: the full-size sinusoid at
                       arguments up to 1216 rad, where float32 rounding shows
  attributes: rank, alpha, versions, sha256_unet (of the weights file)

Run:  /path/to/venv/bin/python tests/reference/tiny_sdxl_unet.py [REPO]
"""
import hashlib
import os
import sys

import h5py
import torch

import diffusers
import peft
from diffusers import UNet2DConditionModel
from diffusers.models.embeddings import Timesteps
from peft import LoraConfig

REPO = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(REPO, "tests", "fixtures", "tiny-sdxl")
RANK = 8

CONFIG = dict(
    sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16, 16),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    layers_per_block=2, transformer_layers_per_block=(1, 1, 2), attention_head_dim=(1, 2, 4),
    norm_num_groups=4, cross_attention_dim=64, use_linear_projection=True,
    addition_embed_type="text_time", addition_embed_type_num_heads=64, addition_time_embed_dim=8,
    projection_class_embeddings_input_dim=32 + 6 * 8, flip_sin_to_cos=True, freq_shift=0)


def init_weights(m, gen):
    with torch.no_grad():
        for name, p in m.named_parameters():
            if p.dim() >= 2:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) / fan_in ** 0.5)
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            else:  # GroupNorm / LayerNorm weights
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=gen))


def main():
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(13)
    unet = UNet2DConditionModel(**CONFIG).eval()
    init_weights(unet, gen)
    udir = os.path.join(OUT, "unet")
    os.makedirs(udir, exist_ok=True)
    unet.save_pretrained(udir)
    wpath = os.path.join(udir, "diffusion_pytorch_model.safetensors")
    sha = hashlib.sha256(open(wpath, "rb").read()).hexdigest()
    unet.requires_grad_(False)

    n, L = 2, 7
    x = torch.randn(n, 4, 8, 12, generator=gen)
    t = torch.tensor([10.5, 900.0])
    ctx = torch.randn(n, L, 64, generator=gen)
    text = torch.randn(n, 32, generator=gen)
    # (original h, w, crop top, left, target h, w): the pipeline's default
    # (1024, 1024, 0, 0, 1024, 1024) and a cropped, non-square one
    ids = torch.tensor([[1024.0, 1024.0, 0.0, 0.0, 1024.0, 1024.0],
                        [768.0, 1152.0, 16.0, 40.0, 832.0, 1216.0]])
    added = {"text_embeds": text, "time_ids": ids}

    with torch.no_grad():
        base = unet(x, t, encoder_hidden_states=ctx, added_cond_kwargs=added).sample

    unet.add_adapter(LoraConfig(r=RANK, lora_alpha=RANK, init_lora_weights="gaussian",
                                target_modules=["to_k", "to_q", "to_v", "to_out.0"]))
    lora = {}
    for name, mod in unet.named_modules():
        if hasattr(mod, "lora_A") and "default" in mod.lora_A:
            A, B = mod.lora_A["default"].weight, mod.lora_B["default"].weight
            with torch.no_grad():
                A.copy_(torch.randn(A.shape, generator=gen) / RANK ** 0.5)
                B.copy_(torch.randn(B.shape, generator=gen) * 0.1)
            lora[name] = (A, B)
    assert len([p for p in unet.parameters() if p.requires_grad]) == 2 * len(lora)

    xs = x.clone().requires_grad_(True)
    cs = ctx.clone().requires_grad_(True)
    y = unet(xs, t, encoder_hidden_states=cs, added_cond_kwargs=added).sample
    w = torch.randn(y.shape, generator=gen)
    (y * w).sum().backward()

    with h5py.File(os.path.join(OUT, "unet_parity.h5"), "w") as f:
        f.attrs["generator"] = "tests/reference/tiny_sdxl_unet.py"
        f.attrs["versions"] = (f"torch {torch.__version__}, diffusers {diffusers.__version__}, "
                               f"peft {peft.__version__}")
        f.attrs["sha256_unet"] = sha
        f.attrs["rank"], f.attrs["alpha"] = RANK, float(RANK)
        f["time_proj_256"] = Timesteps(256, True, 0)(ids.flatten()).numpy()
        for k, v in (("sample", x), ("timestep", t), ("context", ctx), ("text_embeds", text),
                     ("time_ids", ids), ("base/out", base), ("lora/out", y), ("lora/w", w),
                     ("lora/dsample", xs.grad), ("lora/dcontext", cs.grad)):
            f.create_dataset(k, data=v.detach().numpy())
        f["lora/modules"] = [k.encode() for k in lora]
        for k, get in (("down", lambda a, b: a), ("up", lambda a, b: b),
                       ("grad_down", lambda a, b: a.grad), ("grad_up", lambda a, b: b.grad)):
            f.create_dataset("lora/" + k, data=torch.cat([get(a, b).detach().flatten()
                                                          for a, b in lora.values()]).numpy())
    print("modules", len(lora), "base std %.3f" % base.std().item(), "lora std %.3f" % y.std().item(),
          "|lora - base| %.3f" % (y.detach() - base).abs().max().item())


if __name__ == "__main__":
    main()
