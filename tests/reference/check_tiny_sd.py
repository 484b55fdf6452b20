#!/usr/bin/env python3
"""check_tiny_sd.py — sanity checks of the committed tiny SD fixtures.

1. tests/fixtures/tiny-sd loads with StableDiffusionPipeline.from_pretrained
   and runs 2 DDIM steps at 32x32 (eta 1, guidance 5), so the directory is
   complete and consistent.
2. Every float dataset of tiny_sd_parity.h5 is printed with its shape and
   std (outputs should be O(1) and not degenerate), and the UNet, VAE and
   text outputs are recomputed from the saved weights and compared.

Run:  /path/to/venv/bin/python tests/reference/check_tiny_sd.py [FIXDIR]
"""
import os
import sys

import h5py
import numpy as np
import torch

from diffusers import StableDiffusionPipeline


def main():
    fix = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
    torch.use_deterministic_algorithms(True)
    pipe = StableDiffusionPipeline.from_pretrained(os.path.join(fix, "tiny-sd"))
    pipe.set_progress_bar_config(disable=True)
    g = torch.Generator().manual_seed(0)
    img = pipe(["a red cube", "a blue ball"], height=32, width=32, num_inference_steps=2,
               guidance_scale=5.0, eta=1.0, generator=g, output_type="np").images
    assert img.shape == (2, 32, 32, 3) and np.isfinite(img).all()
    print(f"pipeline: 2 steps at 32x32 ok, image {img.shape} mean {img.mean():.4f} "
          f"std {img.std():.4f}")

    with h5py.File(os.path.join(fix, "tiny_sd_parity.h5"), "r") as h:
        def show(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.dtype.kind == "f" and obj.size > 1:
                a = obj[()].astype(np.float64)
                print(f"  /{name:42s} {str(list(obj.shape)):16s} std {a.std():.4f}")
        h.visititems(show)
        c = h["unet/case3"]
        with torch.no_grad():
            out = pipe.unet(torch.tensor(c["sample"][()]), torch.tensor(c["timestep"][()]),
                            encoder_hidden_states=torch.tensor(c["context"][()])).sample
            ids = torch.tensor(h["text/ids"][()])
            last = pipe.text_encoder(ids)[0]
            z = torch.tensor(h["vae/latents"][()])
            im = pipe.vae.decode(z / pipe.vae.config.scaling_factor).sample
        for name, a, b in (("unet/case3/out", out, c["out"]),
                           ("text/last_hidden_state", last, h["text/last_hidden_state"]),
                           ("vae/image", im, h["vae/image"])):
            err = np.abs(a.numpy() - b[()]).max()
            print(f"recompute {name}: max |diff| {err:.2e}")
            assert err < 1e-5, name


if __name__ == "__main__":
    main()
