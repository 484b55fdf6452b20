#!/usr/bin/env python3
"""unet_variants.py — two very small UNet2DConditionModels that exercise the
config options tiny-sd does not, for tests/unit/test_unet.c:

  lin  3 blocks (8, 16, 16), layers_per_block 2, attention_head_dim [2, 4, 4],
       use_linear_projection true, transformer_layers_per_block 2,
       flip_sin_to_cos false, freq_shift 1, cross_attention_dim 8, groups 4
  mix  DownBlock2D first then CrossAttnDownBlock2D (and the mirror up),
       (8, 12), in 3 / out 5 channels, norm_eps 1e-6, groups 4, 4 heads of 3

Writes tests/fixtures/unet-variants/{lin,mix}/ (diffusers save_pretrained,
fp32) and tests/fixtures/unet-variants/unet_variants.h5 with, per model,
/<name>/{sample [2,C,16,24], timestep [2] float, context [2,7,D], out, w,
dsample, dcontext} for L = sum(out * w) (non-square latents, fractional
timesteps, a 7-token context). CPU, float32, seeded.

Run:  /path/to/venv/bin/python tests/reference/unet_variants.py [OUTDIR]
"""
import os
import sys

import h5py
import torch

from diffusers import UNet2DConditionModel

CONFIGS = {
    "lin": dict(sample_size=16, block_out_channels=(8, 16, 16),
                down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
                layers_per_block=2, cross_attention_dim=8, attention_head_dim=(2, 4, 4),
                norm_num_groups=4, use_linear_projection=True, transformer_layers_per_block=2,
                flip_sin_to_cos=False, freq_shift=1),
    "mix": dict(sample_size=16, block_out_channels=(8, 12),
                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                layers_per_block=1, cross_attention_dim=8, attention_head_dim=4,
                norm_num_groups=4, in_channels=3, out_channels=5, norm_eps=1e-6),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "unet-variants")
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    with h5py.File(os.path.join(out, "unet_variants.h5"), "w") as h:
        h.attrs["generator"] = "tests/reference/unet_variants.py"
        for name, cfg in CONFIGS.items():
            m = UNet2DConditionModel(**cfg).eval()
            with torch.no_grad():  # non-trivial norms and biases (zero-init proj_out, conv_out, ...)
                for p in m.parameters():
                    p.add_(0.2 * torch.randn_like(p))
            m.save_pretrained(os.path.join(out, name))
            x = torch.randn(2, m.config.in_channels, 16, 24, requires_grad=True)
            ctx = torch.randn(2, 7, m.config.cross_attention_dim, requires_grad=True)
            t = torch.tensor([10.5, 900.0])
            y = m(x, t, encoder_hidden_states=ctx).sample
            w = torch.randn_like(y)
            (y * w).sum().backward()
            g = h.create_group(name)
            for k, v in (("sample", x), ("timestep", t), ("context", ctx), ("out", y), ("w", w),
                         ("dsample", x.grad), ("dcontext", ctx.grad)):
                g.create_dataset(k, data=v.detach().numpy())
            print(name, "out", tuple(y.shape), "std %.3f" % y.std().item())


if __name__ == "__main__":
    main()
