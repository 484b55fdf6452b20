#!/usr/bin/env python3
"""Fixture for spo-decode: the 8-bit images diffusers makes of the predicted
clean latents of tests/fixtures/score/pool.h5 (/x0_hat [B=3,K=4,4,16,16]).

AutoencoderKL (tests/fixtures/tiny-sd/vae) decodes x0_hat / scaling_factor;
VaeImageProcessor.postprocess(output_type="np") maps (x/2 + 0.5).clamp(0, 1)
in float32 and moves channels last; then numpy_to_pil's own conversion
(images * 255).round().astype("uint8") (float32, numpy's round half to even)
gives the pixels a PIL image of output_type="pil" holds (checked below).

Pins: torch==2.3.1 diffusers==0.26.1 numpy==1.26.4 (see requirements.txt).
Run from the repo root: /work/venv/bin/python tests/reference/decode_fixture.py
Writes tests/fixtures/decode/expected.h5:
  /images    u8  [12, 32, 32, 3]  image b*K + k, rows, columns, RGB
  /prompt_id i64 [3]              the pool's prompt ids
  attribute  near_half: pixels whose x*255 lies within 1e-3 of a .5 (where
             a float rounding difference may move the result by 1).
and tests/fixtures/decode/pool_c3.h5: a valid pool/1 file whose latents have
3 channels (B=1, K=1, 2x2), which the tiny VAE (4 channels) must refuse."""
import os

import h5py
import numpy as np
import torch
from diffusers import AutoencoderKL
from diffusers.image_processor import VaeImageProcessor

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")


def main():
    with h5py.File(os.path.join(ROOT, "score", "pool.h5"), "r") as f:
        x0 = torch.from_numpy(f["x0_hat"][...])
        pid = f["prompt_id"][...]
    B, K, C, H, W = x0.shape
    vae = AutoencoderKL.from_pretrained(os.path.join(ROOT, "tiny-sd", "vae")).eval()
    proc = VaeImageProcessor(vae_scale_factor=2 ** (len(vae.config.block_out_channels) - 1))
    with torch.no_grad():
        img = vae.decode(x0.reshape(B * K, C, H, W) / vae.config.scaling_factor).sample
    npimg = proc.postprocess(img, output_type="np")  # float32 [N, h, w, 3] in [0, 1]
    u8 = (npimg * 255).round().astype("uint8")
    pil = proc.postprocess(img, output_type="pil")
    assert all(np.array_equal(np.asarray(p), u8[i]) for i, p in enumerate(pil))
    scaled = npimg.astype(np.float32) * np.float32(255)
    near = int(np.sum(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-3))
    out = os.path.join(ROOT, "decode")
    os.makedirs(out, exist_ok=True)
    with h5py.File(os.path.join(out, "expected.h5"), "w") as f:
        f.create_dataset("images", data=u8, compression="gzip", compression_opts=9)
        f["prompt_id"] = pid.astype(np.int64)
        f.attrs["near_half"] = near
        f.attrs["source"] = "tests/reference/decode_fixture.py: diffusers 0.26.1 AutoencoderKL + VaeImageProcessor"
    with h5py.File(os.path.join(out, "pool_c3.h5"), "w") as f:
        z = np.zeros((1, 3, 2, 2), np.float32)
        f["prompt_id"] = np.array([10], np.int64)
        f["parent"] = z
        f["parent_eps"] = z
        f["children"] = z[:, None]
        f["x0_hat"] = z[:, None]
        for k, v in dict(spo_schema="pool/1", model_id="tiny-sd-fixture", lora_id="none", seed=1, step=9,
                         num_steps=20, timestep=501, child_timestep=451, guidance=5.0, eta=1.0).items():
            f.attrs[k] = v
    print("images", u8.shape, "mean", u8.mean(), "near .5:", near,
          "clipped lo/hi:", int((npimg == 0).sum()), int((npimg == 1).sum()))


if __name__ == "__main__":
    main()
