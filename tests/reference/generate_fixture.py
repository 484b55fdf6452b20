#!/usr/bin/env python3
"""Fixture for spo-generate: what diffusers' StableDiffusionPipeline with a
DDIMScheduler makes of the tiny model (tests/fixtures/tiny-sd), from given
initial latents, with and without a LoRA.

Pipeline: StableDiffusionPipeline.from_pretrained(tiny-sd, safety_checker=None),
scheduler = DDIMScheduler.from_config(pipe.scheduler.config),
num_inference_steps=10, guidance_scale=7.5, eta=0, latents=<fixed x_T>,
output_type="np" (float32 [N, 32, 32, 3] in [0, 1]); the uint8 pixels are
numpy_to_pil's (images * 255).round().astype("uint8"), checked against
output_type="pil". CPU, float32. ftfy is hidden so CLIPTokenizer takes the
BasicTokenizer path spo implements (see tokenizer_fixture.py).

Cases (each under its own group of expected.h5):
  base   PROMPTS, 1 image per prompt, empty negative prompt; x_T = x_T.h5
  neg    PROMPTS, num_images_per_prompt=2, negative_prompt=NEGATIVE;
         x_T = x_T_n2.h5 (image i*2 + j is prompt i's image j)
  lora   as base, with a LoRA on the UNet: unet.add_adapter(LoraConfig(r=4,
         lora_alpha=4, target_modules=[to_q, to_k, to_v, to_out.0],
         init_lora_weights="gaussian")), then every lora_B set to
         N(0, 0.1^2) so the LoRA changes the images
The LoRA is saved twice: lora.h5 (spo lora/1, schemas/lora.json; model_id
empty: written outside spo, so no model check) and, as the official SPO
recipe saves it, StableDiffusionPipeline.save_lora_weights(
convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))) ->
pytorch_lora_weights.safetensors (keys unet.<module>.lora.down.weight [r,in],
.lora.up.weight [out,r]; no alpha). A fresh pipeline with load_lora_weights
of that file is checked to give the same images.

Bad LoRA files for the command tests:
  lora_shape.h5            lora/1 whose first module's down is [4, in+1]
  lora_badkey.safetensors  one module of the diffusers file plus
                           unet.conv_in.lora.down/up (conv_in is a 3x3 conv,
                           not a linear layer)
  lora_te.safetensors      one module plus a text_encoder.* pair (a
                           text-encoder LoRA)

Files written to tests/fixtures/generate/:
  x_T.h5, x_T_n2.h5   /latents [2|4, 4, 16, 16] float32
  expected.h5         /<case>/images f32 [N,32,32,3], /<case>/pixels u8
                      [N,32,32,3]; root attrs prompts (joined by "\\n"),
                      negative, steps, guidance, eta, near_half_<case>
                      (pixels whose x*255 is within 1e-3 of a .5)
  lora.h5, pytorch_lora_weights.safetensors, the bad files above

Pins: torch==2.3.1 diffusers==0.26.1 transformers==4.40.1 peft==0.10.0
numpy==1.26.4 (requirements.txt). Run from the repo root:
  /work/venv/bin/python tests/reference/generate_fixture.py
"""
import os
import sys
import tempfile

sys.modules["ftfy"] = None  # noqa: E402  BasicTokenizer path

import h5py
import numpy as np
import torch
from diffusers import DDIMScheduler, StableDiffusionPipeline
from diffusers.utils import convert_state_dict_to_diffusers
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict
from safetensors.torch import load_file, save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
MODEL = os.path.join(ROOT, "tiny-sd")
OUT = os.path.join(ROOT, "generate")
PROMPTS = ["a photo of a cat", "A red car on a snowy road, at night"]
NEGATIVE = "blurry, low quality"
STEPS, GUIDANCE, ETA = 10, 7.5, 0.0
TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


def pipeline():
    pipe = StableDiffusionPipeline.from_pretrained(MODEL, safety_checker=None)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    assert pipe.tokenizer.fix_text is None, "ftfy path taken"
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run(pipe, latents, **kw):
    args = dict(prompt=PROMPTS, num_inference_steps=STEPS, guidance_scale=GUIDANCE, eta=ETA,
                latents=latents.clone(), **kw)
    with torch.no_grad():
        img = pipe(output_type="np", **args).images  # float32 [N, h, w, 3]
        pil = pipe(output_type="pil", **args).images
    u8 = (img * 255).round().astype("uint8")
    assert all(np.array_equal(np.asarray(p), u8[i]) for i, p in enumerate(pil)), "pil != np rounding"
    scaled = img.astype(np.float32) * np.float32(255)
    near = int(np.sum(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-3))
    return img.astype(np.float32), u8, near


def write_latents(path, x):
    with h5py.File(path, "w") as f:
        f["latents"] = x.numpy().astype(np.float32)


def lora_modules(sd):
    """diffusers-format state dict -> {module: (down [r,in], up [out,r])}"""
    mods = {}
    for k, v in sd.items():
        assert k.startswith("unet.") and k.endswith((".lora.down.weight", ".lora.up.weight")), k
        name = k[len("unet."):].rsplit(".lora.", 1)[0]
        mods.setdefault(name, [None, None])[0 if ".lora.down." in k else 1] = v.float().numpy()
    return mods


def group(f, name):
    """a group without creation times, so a rerun writes the same bytes"""
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    h5py.h5g.create(f.id, name.encode(), gcpl=gcpl)


def write_spo_lora(path, mods, order, rank, bad_shape=False):
    names = [n for n in order if n in mods]  # the UNet's module order, as spo writes it
    assert len(names) == len(mods)
    with h5py.File(path, "w", libver="latest") as f:
        f.create_dataset("modules", data=np.array(names, dtype=h5py.string_dtype()))
        group(f, "lora")
        for i, n in enumerate(names):
            group(f, f"lora/{n}")
            down, up = mods[n]
            if bad_shape and i == 0:
                down = np.concatenate([down, np.zeros((down.shape[0], 1), np.float32)], axis=1)
            f[f"lora/{n}/down"] = down.astype(np.float32)
            f[f"lora/{n}/up"] = up.astype(np.float32)
        for k, v in dict(spo_schema="lora/1", lora_id="generate-fixture", model_id="").items():
            f.attrs[k] = v
        f.attrs["rank"] = np.int64(rank)
        f.attrs["alpha"] = np.float64(rank)
        f.attrs["step"] = np.int64(0)


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    pipe = pipeline()
    C, s = pipe.unet.config.in_channels, pipe.unet.config.sample_size
    g = torch.Generator().manual_seed(1)
    x_T = torch.randn((len(PROMPTS), C, s, s), generator=g)
    x_T2 = torch.randn((2 * len(PROMPTS), C, s, s), generator=g)
    write_latents(os.path.join(OUT, "x_T.h5"), x_T)
    write_latents(os.path.join(OUT, "x_T_n2.h5"), x_T2)

    cases = {}
    cases["base"] = run(pipe, x_T)
    cases["neg"] = run(pipe, x_T2, num_images_per_prompt=2, negative_prompt=[NEGATIVE] * len(PROMPTS))

    # the LoRA: peft adapter, B set random so it matters
    pipe.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=TARGETS, init_lora_weights="gaussian"))
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for n, p in pipe.unet.named_parameters():
            if "lora_B" in n:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    cases["lora"] = run(pipe, x_T)
    sd = convert_state_dict_to_diffusers(get_peft_model_state_dict(pipe.unet))
    with tempfile.TemporaryDirectory() as d:
        StableDiffusionPipeline.save_lora_weights(d, unet_lora_layers=sd)
        saved = load_file(os.path.join(d, "pytorch_lora_weights.safetensors"))
        with open(os.path.join(d, "pytorch_lora_weights.safetensors"), "rb") as f:
            blob = f.read()
        # the saved file, loaded as users load it, gives the same images
        p2 = pipeline()
        p2.load_lora_weights(d)
        again = run(p2, x_T)
        assert np.abs(again[0] - cases["lora"][0]).max() < 1e-5, "load_lora_weights differs"
    with open(os.path.join(OUT, "pytorch_lora_weights.safetensors"), "wb") as f:
        f.write(blob)
    mods = lora_modules(saved)
    nunet = sum(1 for n, _ in pipe.unet.named_modules() if n.rsplit(".", 1)[-1] in ("to_q", "to_k", "to_v")
                or n.endswith("to_out.0"))
    assert len(mods) == nunet, (len(mods), nunet)
    order = [n for n, _ in pipe.unet.named_modules()]
    write_spo_lora(os.path.join(OUT, "lora.h5"), mods, order, 4)
    write_spo_lora(os.path.join(OUT, "lora_shape.h5"), mods, order, 4, bad_shape=True)
    first = sorted(saved)[:2]  # one good module (down, up) beside each bad key
    bad = {k: saved[k].contiguous() for k in first}
    bad["unet.conv_in.lora.down.weight"] = torch.zeros(4, 4)
    bad["unet.conv_in.lora.up.weight"] = torch.zeros(32, 4)
    save_file(bad, os.path.join(OUT, "lora_badkey.safetensors"))
    te = {k: saved[k].contiguous() for k in first}
    te["text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora.down.weight"] = torch.zeros(4, 32)
    te["text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora.up.weight"] = torch.zeros(32, 4)
    save_file(te, os.path.join(OUT, "lora_te.safetensors"))

    with h5py.File(os.path.join(OUT, "expected.h5"), "w") as f:
        for name, (img, u8, near) in cases.items():
            f.create_dataset(f"{name}/images", data=img, compression="gzip", compression_opts=9)
            f.create_dataset(f"{name}/pixels", data=u8, compression="gzip", compression_opts=9)
            f.attrs[f"near_half_{name}"] = near
        f.attrs["prompts"] = "\n".join(PROMPTS)
        f.attrs["negative"] = NEGATIVE
        f.attrs["steps"] = STEPS
        f.attrs["guidance"] = GUIDANCE
        f.attrs["eta"] = ETA
        f.attrs["source"] = "tests/reference/generate_fixture.py: diffusers 0.26.1 StableDiffusionPipeline + DDIM"
    base, lora = cases["base"][0], cases["lora"][0]
    for n in os.listdir(OUT):
        os.chmod(os.path.join(OUT, n), 0o644)
    print("modules", len(mods), "images", {k: v[0].shape for k, v in cases.items()},
          "near .5", {k: v[2] for k, v in cases.items()},
          "lora changes the images by (max abs)", float(np.abs(base - lora).max()),
          "mean", {k: float(v[0].mean()) for k, v in cases.items()})


if __name__ == "__main__":
    main()
