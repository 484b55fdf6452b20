#!/usr/bin/env python3
"""Fixture for spo-generate on an SDXL model: what diffusers'
StableDiffusionXLPipeline with a DDIMScheduler makes of a tiny SDXL model
from given initial latents.

The model is the one tests/cmd/helpers.bash tiny_sdxl assembles: the tiny
SDXL UNet (tests/fixtures/tiny-sdxl/unet, addition_embed_type text_time),
both text encoders and tokenizers of tests/fixtures/tiny-sdxl, tiny-sdxl/vae
(tiny-sd's VAE weights with SDXL's config: scaling factor 0.13025, factor 2:
8x8 latents are 16x16 images) and tiny-sd's DDIM scheduler config;
force_zeros_for_empty_prompt true (SDXL base's), no watermark.
Pipeline call: num_inference_steps=20, guidance_scale=5, eta=0,
latents=<fixed x_T>, output_type="np" (float32 [N, 16, 16, 3] in [0, 1]);
the uint8 pixels are numpy_to_pil's, checked against output_type="pil".
The time ids are the pipeline's defaults (16, 16, 0, 0, 16, 16).

Cases:
  base  PROMPTS, no negative prompt: the zero negative (force_zeros_for_empty_prompt)
  neg   PROMPTS, negative_prompt=NEGATIVE (through both encoders)
  g1    PROMPTS, guidance_scale=1 (no classifier-free guidance)
  lora_kohya, lora_diffusers   as base, with a LoRA that spo exported
        (tests/fixtures/export/sdxl_kohya.safetensors: spo-export -F kohya,
        SDXL's original UNet names; sdxl_diffusers.safetensors: -F
        diffusers) loaded with pipe.load_lora_weights, so the files load in
        diffusers and mean what they mean in spo

Writes tests/fixtures/generate/sdxl.h5: /latents [2, 4, 8, 8] (x_T, for
spo-generate --latents), /<case>/images f32 [2,16,16,3], /<case>/pixels u8,
root attrs prompts (joined by "\\n"), negative, steps, guidance, eta.

Pins: torch==2.3.1 diffusers==0.26.1 transformers==4.40.1 (requirements.txt).
Run from the repo root:  /work/venv/bin/python tests/reference/generate_sdxl_fixture.py
"""
import os

import h5py
import numpy as np
import torch
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
XL, SD = os.path.join(FIX, "tiny-sdxl"), os.path.join(FIX, "tiny-sd")
PROMPTS = ["a photo of a cat", "A red car on a snowy road, at night"]
NEGATIVE = "blurry, low quality"
STEPS, GUIDANCE, ETA = 20, 5.0, 0.0


def pipeline():
    pipe = StableDiffusionXLPipeline(
        vae=AutoencoderKL.from_pretrained(os.path.join(XL, "vae")),
        text_encoder=CLIPTextModel.from_pretrained(os.path.join(XL, "text_encoder")),
        text_encoder_2=CLIPTextModelWithProjection.from_pretrained(os.path.join(XL, "text_encoder_2")),
        tokenizer=CLIPTokenizer.from_pretrained(os.path.join(XL, "tokenizer")),
        tokenizer_2=CLIPTokenizer.from_pretrained(os.path.join(XL, "tokenizer_2")),
        unet=UNet2DConditionModel.from_pretrained(os.path.join(XL, "unet")),
        scheduler=DDIMScheduler.from_pretrained(os.path.join(SD, "scheduler")),
        force_zeros_for_empty_prompt=True, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run(pipe, latents, **kw):
    args = dict(prompt=PROMPTS, num_inference_steps=STEPS, eta=ETA, latents=latents.clone(), **kw)
    args.setdefault("guidance_scale", GUIDANCE)
    with torch.no_grad():
        img = pipe(output_type="np", **args).images
        pil = pipe(output_type="pil", **args).images
    u8 = (img * 255).round().astype("uint8")
    assert all(np.array_equal(np.asarray(p), u8[i]) for i, p in enumerate(pil)), "pil != np rounding"
    return img.astype(np.float32), u8


def main():
    torch.manual_seed(0)
    pipe = pipeline()
    assert pipe.default_sample_size * pipe.vae_scale_factor == 16
    x = torch.randn(2, 4, 8, 8)
    with h5py.File(os.path.join(FIX, "generate", "sdxl.h5"), "w") as f:
        f["latents"] = x.numpy().astype(np.float32)
        for case, kw in (("base", {}), ("neg", dict(negative_prompt=NEGATIVE)), ("g1", dict(guidance_scale=1.0))):
            img, u8 = run(pipe, x, **kw)
            f[f"{case}/images"], f[f"{case}/pixels"] = img, u8
            print(case, img.shape, float(img.mean()))
        for kind in ("kohya", "diffusers"):
            lp = pipeline()
            lp.load_lora_weights(os.path.join(FIX, "export", f"sdxl_{kind}.safetensors"))
            img, u8 = run(lp, x)
            f[f"lora_{kind}/images"], f[f"lora_{kind}/pixels"] = img, u8
            print("lora", kind, float(np.abs(img - f["base/images"][...]).max()))
        f.attrs["prompts"] = "\n".join(PROMPTS)
        f.attrs["negative"] = NEGATIVE
        f.attrs["steps"], f.attrs["guidance"], f.attrs["eta"] = STEPS, GUIDANCE, ETA


if __name__ == "__main__":
    main()
