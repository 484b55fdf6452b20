#!/usr/bin/env python3
"""Check that a directory written by spo-mkmodel loads in diffusers and
transformers (pinned versions: see requirements.txt) and runs:
    bin/spo-mkmodel --preset tiny -o /tmp/m && python tests/reference/check_mkmodel.py /tmp/m
StableDiffusionPipeline.from_pretrained + 2 DDIM steps; every component
loads with no missing or unexpected weights; the SPM's CLIP directory loads
as a CLIPModel and spm.bin (torch.load, weights_only) fills the time-conditioned model exactly."""
import os
import sys

import torch
from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPModel, CLIPTextModel, CLIPTokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spm_reference as ref  # noqa: E402

d = sys.argv[1]
for cls, sub in ((UNet2DConditionModel, "unet"), (AutoencoderKL, "vae")):
    _, info = cls.from_pretrained(d, subfolder=sub, output_loading_info=True, low_cpu_mem_usage=False)
    assert not info["missing_keys"] and not info["unexpected_keys"], (sub, info)
_, info = CLIPTextModel.from_pretrained(d, subfolder="text_encoder", output_loading_info=True)
assert not info["missing_keys"] and not info["unexpected_keys"], info
pipe = StableDiffusionPipeline.from_pretrained(d, safety_checker=None, requires_safety_checker=False)
size = pipe.unet.config.sample_size * 2 ** (len(pipe.vae.config.block_out_channels) - 1)
img = pipe("a red cube", num_inference_steps=2, height=size, width=size, output_type="np",
           generator=torch.Generator().manual_seed(0)).images
assert img.shape[0] == 1 and torch.isfinite(torch.tensor(img)).all()
tok = CLIPTokenizer.from_pretrained(d, subfolder="tokenizer")
print("pipeline ok", img.shape, "std", float(img.std()), "ids", tok("a cat").input_ids)
if os.path.isdir(os.path.join(d, "spm")):
    clip = CLIPModel.from_pretrained(os.path.join(d, "spm", "clip")).eval()
    ref.add_time_conditioning(clip)
    spm = ref.StepAwarePreferenceModel(clip)
    sd = torch.load(os.path.join(d, "spm", "spm.bin"), map_location="cpu", weights_only=True)
    missing, unexpected = spm.load_state_dict(sd, strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    print("spm ok", sum(p.numel() for p in spm.parameters()), "parameters")
