#!/usr/bin/env python3
"""resize_fixture.py — reference for lib/nn/image.c (bicubic resize + SPM preprocessing).

Writes tests/fixtures/resize.h5 (torch 2.3.1, torchvision 0.18.1, CPU, fp32):

  /input        [2,3,32,48] random in [-1,1], rounded to fp16 values and
                stored as f16 (exact, half the bytes); compute is in fp32
  /resize_shape [4] = [2,3,224,336]: F.interpolate(input, size=(224,336),
                mode='bicubic', align_corners=False) — the SPO resize
  /resize_idx   [K] flat indices into that output (every border pixel of
                image 0 channel 0, plus random ones), /resize_val [K] values
  /pre_shape    [4] = [2,3,224,224]: the whole SPM preprocessing (below)
  /pre_idx, /pre_val   the same sampling of its output
  /odd/input    [1,3,32,47] in [-1,1] (f16 values): 224 x 329 after the
                resize, crop left = round(52.5) = 52 (Python rounds half to
                even); /odd/pre_idx, /odd/pre_val
  /odd2/input   [1,3,47,32]: 329 x 224, crop top 52
  /small/input  [1,3,9,13]; /small/up [1,3,20,31] and /small/down [1,3,5,7]:
                full F.interpolate bicubic outputs (non-integer up and down
                scales; downscaling has no antialias)

Outputs are sampled, not stored whole, to keep tests/fixtures under its
10 MB budget (the full outputs would take 3 MB).

The preprocessing is the official SPO code's (spo/preference_models/models/
step_aware_preference_model.py, StepAwarePreferenceModel.get_preference_score):
  scale = 224 / min(H, W); new = (int(H*scale + 0.5), int(W*scale + 0.5))
  x = F.interpolate(x, size=new, mode='bicubic', align_corners=False)
  if new[0] != new[1]: x = torchvision.transforms.CenterCrop(224)(x)
  x = (x / 2 + 0.5).clamp(0, 1).float(); x = Normalize(CLIP mean, std)(x)

Run:  /work/venv/bin/python tests/reference/resize_fixture.py
"""
import os

import h5py
import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torchvision import transforms

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "resize.h5")
SIZE = 224
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]


def spo_preprocess(images, img_size=SIZE):
    shortest_size = min(images.size(-2), images.size(-1))
    scale = img_size / shortest_size
    new_size = (int(images.size(-2) * scale + 0.5), int(images.size(-1) * scale + 0.5))
    images = F.interpolate(images, size=new_size, mode="bicubic", align_corners=False)
    if new_size[0] != new_size[1]:
        images = transforms.CenterCrop(size=img_size)(images)
    images = (images / 2 + 0.5).clamp(0, 1).float()
    return transforms.Normalize(mean=MEAN, std=STD)(images)


def rand_image(g, shape):
    x = torch.rand(shape, generator=g) * 2 - 1
    return x.half().float()  # exactly representable in f16


def sample(shape, rng, k):
    """border pixels of [0,0] plus k random flat indices into shape (N,C,H,W)"""
    n, c, h, w = shape
    border = set()
    for x in range(w):
        border.add(x)
        border.add((h - 1) * w + x)
    for y in range(h):
        border.add(y * w)
        border.add(y * w + w - 1)
    idx = np.array(sorted(border) + list(rng.integers(0, n * c * h * w, size=k)), dtype=np.int32)
    return idx


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(2024)
    rng = np.random.default_rng(5)
    x = rand_image(g, (2, 3, 32, 48))
    rs = F.interpolate(x, size=(224, 336), mode="bicubic", align_corners=False)
    pre = spo_preprocess(x)
    assert pre.shape == (2, 3, 224, 224)
    with h5py.File(OUT, "w") as f:
        f.attrs["torch"] = str(torch.__version__)
        f.attrs["torchvision"] = str(torchvision.__version__)
        f["input"] = x.numpy().astype(np.float16)
        f["resize_shape"] = np.array(rs.shape, dtype=np.int32)
        i = sample(rs.shape, rng, 600)
        f["resize_idx"] = i
        f["resize_val"] = rs.numpy().reshape(-1)[i]
        f["pre_shape"] = np.array(pre.shape, dtype=np.int32)
        i = sample(pre.shape, rng, 600)
        f["pre_idx"] = i
        f["pre_val"] = pre.numpy().reshape(-1)[i]
        for name, shape in (("odd", (1, 3, 32, 47)), ("odd2", (1, 3, 47, 32))):
            xo = rand_image(g, shape)
            po = spo_preprocess(xo)
            f[name + "/input"] = xo.numpy().astype(np.float16)
            i = sample(po.shape, rng, 200)
            f[name + "/pre_idx"] = i
            f[name + "/pre_val"] = po.numpy().reshape(-1)[i]
        xs = rand_image(g, (1, 3, 9, 13))
        f["small/input"] = xs.numpy().astype(np.float16)
        f["small/up"] = F.interpolate(xs, size=(20, 31), mode="bicubic", align_corners=False).numpy()
        f["small/down"] = F.interpolate(xs, size=(5, 7), mode="bicubic", align_corners=False).numpy()
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
