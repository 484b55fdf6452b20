#!/usr/bin/env python3
"""Fixture for spo-export: a diffusers LoRA on the tiny UNet, saved as the
official SPO recipe saves it, and the UNet output diffusers computes with it.

The LoRA: UNet2DConditionModel of tests/fixtures/tiny-sd with
unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian",
target_modules=[to_k, to_q, to_v, to_out.0])) (train_spo.py's call), then
every lora_B set to N(0, 0.1^2) so the LoRA matters (A keeps peft's gaussian
init, nonzero). Saved with StableDiffusionPipeline.save_lora_weights(d,
unet_lora_layers=convert_state_dict_to_diffusers(get_peft_model_state_dict(
unet))), exactly the official script's last lines ->
pytorch_lora_weights.safetensors: keys unet.<module>.lora.down.weight [r,in]
and .lora.up.weight [out,r], fp32, metadata {"format": "pt"}, no alpha.

The expected output: a fresh StableDiffusionPipeline of tiny-sd,
pipe.load_lora_weights(d) (the user's path), pipe.unet(x, t, ctx).sample for
fixed x [2,4,16,16], t [951, 1], ctx [2,77,32] (seeded). It is also checked
against the adapter's own output (< 1e-5).

Files written to tests/fixtures/export/:
  pytorch_lora_weights.safetensors   the LoRA as above
  peft_keys.safetensors              the same tensors under peft's names
                                     unet.<module>.lora_A.weight / lora_B.weight
                                     (what save_lora_weights writes when the
                                     state dict is not converted)
  expected.h5                        /x, /t, /ctx, /base (no LoRA), /lora
  bad_missing_up.safetensors         one module's lora.up.weight left out
  bad_missing_module.safetensors     one module left out entirely
  bad_shape.safetensors              one lora.up.weight with a row too many
  not_lora.safetensors               a UNet tensor (conv_in.bias), no LoRA keys

Checks by hand of what spo-export writes (see tests/reference/README.md):
  export_fixture.py --check-kohya FILE    FILE (spo-export --format kohya)
      loads with pipe.load_lora_weights and gives /lora within 1e-5
  export_fixture.py --check-diffusers FILE  likewise for --format diffusers
  export_fixture.py --check-merged DIR    UNet2DConditionModel.from_pretrained(DIR)
      (spo-export --format unet) gives /lora within 1e-5 (fp32) or 2e-2 (fp16)

Pins: torch==2.3.1 diffusers==0.26.1 transformers==4.40.1 peft==0.10.0
(requirements.txt). Run from the repo root:
  /work/venv/bin/python tests/reference/export_fixture.py
"""
import argparse
import os
import shutil
import sys
import tempfile

sys.modules["ftfy"] = None  # noqa: E402  (as the other fixtures)

import h5py
import numpy as np
import torch
from diffusers import StableDiffusionPipeline, UNet2DConditionModel
from diffusers.utils import convert_state_dict_to_diffusers
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict
from safetensors import safe_open
from safetensors.torch import load_file, save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
MODEL = os.path.join(ROOT, "tiny-sd")
OUT = os.path.join(ROOT, "export")
TARGETS = ["to_k", "to_q", "to_v", "to_out.0"]  # as train_spo.py lists them


def pipeline():
    pipe = StableDiffusionPipeline.from_pretrained(MODEL, safety_checker=None)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def inputs():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 4, 16, 16, generator=g)
    t = torch.tensor([951.0, 1.0])
    ctx = torch.randn(2, 77, 32, generator=g)
    return x, t, ctx


def unet_out(unet, x, t, ctx):
    with torch.no_grad():
        return unet(x, t, encoder_hidden_states=ctx).sample.float().numpy()


def expected():
    with h5py.File(os.path.join(OUT, "expected.h5"), "r") as f:
        return torch.from_numpy(f["x"][()]), torch.from_numpy(f["t"][()]), torch.from_numpy(f["ctx"][()]), \
            f["lora"][()]


def check(out, want, tol, what):
    err = float(np.abs(out - want).max() / max(np.abs(want).max(), 1e-30))
    print(f"{what}: max |diff| / max |want| = {err:.3g} (bound {tol:g})")
    if not err <= tol:
        sys.exit(1)


def check_file(path, what):
    x, t, ctx, want = expected()
    pipe = pipeline()
    pipe.load_lora_weights(path)
    check(unet_out(pipe.unet, x, t, ctx), want, 1e-5, what)


def check_merged(path):
    x, t, ctx, want = expected()
    unet = UNet2DConditionModel.from_pretrained(path).float()
    with safe_open(os.path.join(path, "diffusion_pytorch_model.safetensors"), "pt") as f:
        dt = f.get_tensor(next(iter(f.keys()))).dtype
    check(unet_out(unet, x, t, ctx), want, 2e-2 if dt == torch.float16 else 1e-5, f"merged UNet ({dt})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check-kohya", metavar="FILE")
    ap.add_argument("--check-diffusers", metavar="FILE")
    ap.add_argument("--check-merged", metavar="DIR")
    a = ap.parse_args()
    if a.check_kohya or a.check_diffusers or a.check_merged:
        if a.check_kohya:
            check_file(a.check_kohya, "kohya file with load_lora_weights")
        if a.check_diffusers:
            check_file(a.check_diffusers, "diffusers file with load_lora_weights")
        if a.check_merged:
            check_merged(a.check_merged)
        return

    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    x, t, ctx = inputs()
    pipe = pipeline()
    base = unet_out(pipe.unet, x, t, ctx)
    pipe.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian", target_modules=TARGETS))
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for n, p in pipe.unet.named_parameters():
            if "lora_B" in n:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    adapter = unet_out(pipe.unet, x, t, ctx)
    peft_sd = get_peft_model_state_dict(pipe.unet)
    sd = convert_state_dict_to_diffusers(peft_sd)
    with tempfile.TemporaryDirectory() as d:
        StableDiffusionPipeline.save_lora_weights(d, unet_lora_layers=sd)
        src = os.path.join(d, "pytorch_lora_weights.safetensors")
        with safe_open(src, "pt") as f:
            assert f.metadata() == {"format": "pt"}, f.metadata()
        saved = load_file(src)
        shutil.copyfile(src, os.path.join(OUT, "pytorch_lora_weights.safetensors"))
        p2 = pipeline()
        p2.load_lora_weights(d)
        lora = unet_out(p2.unet, x, t, ctx)
    assert all(k.startswith("unet.") and k.endswith((".lora.down.weight", ".lora.up.weight")) for k in saved)
    assert all(v.dtype == torch.float32 for v in saved.values())
    assert np.abs(lora - adapter).max() < 1e-5, "load_lora_weights differs from the adapter"
    assert np.abs(lora - base).max() > 1e-3, "the LoRA does not change the output"

    peft = {k.replace(".lora.down.", ".lora_A.").replace(".lora.up.", ".lora_B."): v.contiguous()
            for k, v in saved.items()}
    save_file(peft, os.path.join(OUT, "peft_keys.safetensors"), metadata={"format": "pt"})
    keys = sorted(saved)
    ups = [k for k in keys if k.endswith(".lora.up.weight")]
    save_file({k: saved[k] for k in keys if k != ups[0]}, os.path.join(OUT, "bad_missing_up.safetensors"))
    mod = ups[-1][: -len(".lora.up.weight")]
    save_file({k: saved[k] for k in keys if not k.startswith(mod + ".lora.")},
              os.path.join(OUT, "bad_missing_module.safetensors"))
    bad = dict(saved)
    bad[ups[1]] = torch.cat([saved[ups[1]], torch.zeros(1, saved[ups[1]].shape[1])])
    save_file(bad, os.path.join(OUT, "bad_shape.safetensors"))
    save_file({"conv_in.bias": torch.zeros(32)}, os.path.join(OUT, "not_lora.safetensors"))

    with h5py.File(os.path.join(OUT, "expected.h5"), "w") as f:
        f["x"] = x.numpy()
        f["t"] = t.numpy()
        f["ctx"] = ctx.numpy()
        f["base"] = base
        f["lora"] = lora
        f.attrs["source"] = ("tests/reference/export_fixture.py: diffusers 0.26.1 UNet2DConditionModel, "
                             "load_lora_weights of pytorch_lora_weights.safetensors")
    print(f"wrote {OUT}: {len(saved) // 2} modules, |lora - base| max {np.abs(lora - base).max():.3g}")


if __name__ == "__main__":
    main()
