#!/usr/bin/env python3
"""Fixtures for spo-score: a pool/1 file of predicted clean latents from the
tiny model, an embeds/1 file with the preference model's token ids, and the
scores the reference computes for them: diffusers' AutoencoderKL decodes
x0_hat / scaling_factor, the step-aware preference model (spm_reference.py,
official SPO formulas) scores each child at the pool's child timestep.

Pins: torch==2.3.1 diffusers==0.26.1 transformers==4.40.1 (see requirements.txt).
Run from the repo root after `make` (it asks bin/spo-encode for the model id):
/work/venv/bin/python tests/reference/score_fixture.py
Writes tests/fixtures/score/{pool.h5,pool_final.h5,embeds.h5,expected.h5}."""
import os
import sys

import h5py
import numpy as np
import torch
from diffusers import AutoencoderKL
from transformers import CLIPModel, CLIPTokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spm_reference as ref  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
OUT = os.path.join(ROOT, "score")
B, K, C, H, W = 3, 4, 4, 16, 16
PROMPTS = ["a red apple on a wooden table", "Sunset over the sea, oil painting!", "a cat"]
PROMPT_IDS = [10, 11, 12]


def load_spm():
    clipdir = os.path.join(ROOT, "tiny-spm", "clip")
    clip = CLIPModel.from_pretrained(clipdir).eval()
    spm = ref.StepAwarePreferenceModel(clip)
    ref.add_time_conditioning(clip)
    sd = torch.load(os.path.join(ROOT, "tiny-spm", "spm.bin"), map_location="cpu", weights_only=True)
    missing, _ = spm.load_state_dict(sd, strict=False)
    assert not missing, missing
    return spm.eval(), CLIPTokenizer.from_pretrained(clipdir)


def model_id():
    """spo's id of tiny-sd (lib/io/modelid.c), as spo-encode writes it: the
    loop's files must carry the id of the model the tools are given."""
    import subprocess, tempfile
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "p.txt"), "w") as f:
            f.write("x\n")
        subprocess.run([os.path.join(root, "bin", "spo-encode"), "-q", "-m", os.path.join(ROOT, "tiny-sd"),
                        os.path.join(d, "p.txt"), "-o", os.path.join(d, "e.h5")], check=True)
        with h5py.File(os.path.join(d, "e.h5")) as f:
            return f.attrs["model_id"]


MODEL_ID = None


def write_pool(path, x0, child_t, step, final):
    g = torch.Generator().manual_seed(7)
    with h5py.File(path, "w") as f:
        f["prompt_id"] = np.array(PROMPT_IDS, np.int64)
        f["parent"] = torch.randn(B, C, H, W, generator=g).numpy()
        f["parent_eps"] = torch.randn(B, C, H, W, generator=g).numpy()
        f["children"] = torch.randn(B, K, C, H, W, generator=g).numpy()
        f["x0_hat"] = x0.numpy()
        if not final:
            f["eps"] = torch.randn(B, K, C, H, W, generator=g).numpy()
        for k, v in dict(spo_schema="pool/1", model_id=MODEL_ID, lora_id="none", seed=1, step=step,
                         num_steps=20, timestep=child_t + 50 if not final else 1, child_timestep=child_t,
                         guidance=5.0, eta=1.0).items():
            f.attrs[k] = v


def main():
    global MODEL_ID
    MODEL_ID = model_id()
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    spm, tok = load_spm()
    vae = AutoencoderKL.from_pretrained(os.path.join(ROOT, "tiny-sd", "vae")).eval()
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(B, K, C, H, W, generator=g)
    x0f = torch.randn(B, K, C, H, W, generator=g)
    ids = tok(PROMPTS, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    with h5py.File(os.path.join(OUT, "embeds.h5"), "w") as f:
        f["cond"] = torch.randn(B, 77, 32, generator=g).numpy()
        f["uncond"] = torch.randn(1, 77, 32, generator=g).numpy()
        f["token_ids"] = ids.numpy().astype(np.int32)
        f["spm_ids"] = ids.numpy().astype(np.int32)
        f["prompt_id"] = np.array(PROMPT_IDS, np.int64)
        f.create_dataset("prompt", data=PROMPTS, dtype=h5py.string_dtype())
        f.attrs["spo_schema"] = "embeds/1"
        f.attrs["model_id"] = MODEL_ID
        f.attrs["tokenizer"] = "tiny-spm/clip"
    write_pool(os.path.join(OUT, "pool.h5"), x0, 451, 9, False)
    write_pool(os.path.join(OUT, "pool_final.h5"), x0f, 0, 19, True)
    out = {}
    with torch.no_grad():
        txt = ref.text_features(spm.model, ids)
        for name, lat, t in (("scores", x0, 451.0), ("scores_final", x0f, 0.0)):
            img = vae.decode(lat.reshape(B * K, C, H, W) / vae.config.scaling_factor).sample
            pix = ref.preprocess(img, spm.model.config.vision_config.image_size)
            emb = ref.image_features(spm.model, pix, torch.full((B * K,), t))
            out[name] = ref.scores_of(spm.model, emb, txt.repeat_interleave(K, 0)).reshape(B, K).numpy()
            out[name.replace("scores", "images")] = img.numpy()
    with h5py.File(os.path.join(OUT, "expected.h5"), "w") as f:
        for k, v in out.items():
            f[k] = v.astype(np.float32)
    for k, v in out.items():
        print(k, v.shape, float(v.std()))


if __name__ == "__main__":
    main()
