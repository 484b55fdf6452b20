#!/usr/bin/env python3
"""torch_unet_bench.py — the PyTorch/diffusers peer for the C UNet benchmark.

Times UNet2DConditionModel forward and forward+backward on the CPU in fp32
(backward w.r.t. the input sample only; parameters have requires_grad off,
as for a frozen base model) for two configs:

  tiny  tests/fixtures/tiny-sd/unet/config.json, batch 2, 16x16 latents,
        context [2,77,32]
  mid   tests/bench/mid_unet_config.json (3 levels of 128/256/256 channels,
        2 resnets per level, 8 heads, cross-attention 768, 32 groups),
        batch 1, 32x32 latents, context [1,77,768]

Weights are random (seeded); timing does not depend on them. Prints one JSON
line per (config, pass) with the median of --runs timed runs after one
warm-up run:

  {"impl": "torch", "config": "tiny", "pass": "fwd", "ms": 1.23, ...}

Usage: torch_unet_bench.py [--threads N] [--runs R] [--configs tiny,mid]
       torch_unet_bench.py --write-mid-config   (rewrites mid_unet_config.json)
"""
import argparse
import json
import os
import statistics
import tempfile
import time

import torch

from diffusers import UNet2DConditionModel

HERE = os.path.dirname(os.path.abspath(__file__))
TINY_CONFIG = os.path.join(HERE, "..", "fixtures", "tiny-sd", "unet", "config.json")
MID_CONFIG = os.path.join(HERE, "mid_unet_config.json")

MID = dict(
    sample_size=32,
    in_channels=4,
    out_channels=4,
    block_out_channels=(128, 256, 256),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    layers_per_block=2,
    cross_attention_dim=768,
    attention_head_dim=8,  # diffusers naming: 8 heads
    norm_num_groups=32,
)

# config name -> (config file, batch, latent side, context length)
SHAPES = {"tiny": (TINY_CONFIG, 2, 16, 77), "mid": (MID_CONFIG, 1, 32, 77)}


def write_mid_config():
    with tempfile.TemporaryDirectory() as d:
        UNet2DConditionModel(**MID).save_config(d)
        with open(os.path.join(d, "config.json")) as f:
            cfg = json.load(f)
    with open(MID_CONFIG, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    print("wrote", MID_CONFIG)


def timed(fn, runs):
    fn()  # warm-up
    ms = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ms), min(ms)


def bench(name, runs, threads):
    path, batch, side, ctx_len = SHAPES[name]
    with open(path) as f:
        cfg = json.load(f)
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config(cfg).eval().requires_grad_(False)
    nparams = sum(p.numel() for p in unet.parameters())
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, cfg["in_channels"], side, side, generator=g)
    ctx = torch.randn(batch, ctx_len, cfg["cross_attention_dim"], generator=g)
    t = torch.tensor([500] * batch, dtype=torch.int64)
    w = torch.randn(batch, cfg["out_channels"], side, side, generator=g)

    def fwd():
        with torch.no_grad():
            unet(x, t, encoder_hidden_states=ctx)

    def fwd_bwd():
        xs = x.clone().requires_grad_(True)
        out = unet(xs, t, encoder_hidden_states=ctx).sample
        (out * w).sum().backward()

    for pname, fn in (("fwd", fwd), ("fwd_bwd", fwd_bwd)):
        med, best = timed(fn, runs)
        print(json.dumps({"impl": "torch", "config": name, "pass": pname, "ms": round(med, 3),
                          "min_ms": round(best, 3), "runs": runs, "threads": threads,
                          "batch": batch, "latent": side, "params": nparams,
                          "torch": str(torch.__version__)}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--configs", default="tiny,mid")
    ap.add_argument("--write-mid-config", action="store_true")
    a = ap.parse_args()
    if a.write_mid_config:
        write_mid_config()
        return
    torch.set_num_threads(a.threads)
    for name in a.configs.split(","):
        bench(name, a.runs, a.threads)


if __name__ == "__main__":
    main()
