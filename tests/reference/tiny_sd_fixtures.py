#!/usr/bin/env python3
"""tiny_sd_fixtures.py — reference inputs/outputs of the tiny SD model.

Reads the model written by tiny_sd.py (tests/fixtures/tiny-sd, -fp16,
tiny-vae-legacy) and writes tests/fixtures/tiny_sd_parity.h5, all computed
on the CPU in float32 with deterministic algorithms:

  /text     ids [P,77] int64, prompts [P] utf-8, last_hidden_state [P,77,32]
            (after the final LayerNorm), pooled [P,32], inter/* (prompt 0)
  /unet     case0..case3: sample [2,4,16,16], timestep [2] int64,
            context [2,77,32], out [2,4,16,16]; case3's context is the text
            encoder output of two prompts; case0/inter/* are module outputs
            for batch item 0 ([1,...]) to locate a mismatch;
            grad: sample, timestep, context, w, out, dsample, dcontext for
            L = sum(out * w); fp16: out of case0's inputs with the fp16 UNet
            weights (upcast to fp32 before compute)
  /vae      latents [2,4,16,16] (as pipelines hold them; decoded as
            vae.decode(latents / scaling_factor)), image [2,3,32,32],
            image_legacy (same, from tiny-vae-legacy), inter/* (item 0)
  /scheduler timesteps [20] int64, alphas_cumprod [1000] float32 (as the
            scheduler holds it) and alphas_cumprod_f64 [1000] (in double);
            step0, step1: x_t, eps, z, timestep, prev_timestep, eta,
            prev_sample, pred_original_sample, std_dev_t, alpha_prod_t,
            alpha_prod_t_prev

Root attributes name the versions and the sha256 of each weight file, so a
C test can say the fixture is stale.

Run:  /path/to/venv/bin/python tests/reference/tiny_sd_fixtures.py [FIXDIR]
"""
import hashlib
import os
import sys

import h5py
import numpy as np
import torch

import diffusers
import transformers
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

SEED = 1234

PROMPTS = [
    "a photo of a Cat, sitting on 2 mats!",
    "  Café   au lait's\tfoam  ",
    "",
    "an extremely long prompt that goes on and on, far past the seventy-five "
    "tokens a CLIP text encoder can take, so it must be truncated",
]

# Modules whose outputs are kept for debugging (first tensor of a tuple).
# Only batch item 0 is kept ([1,...]) to keep the file small.
UNET_INTER = ["time_proj", "time_embedding", "conv_in", "down_blocks.0", "down_blocks.1",
              "mid_block", "up_blocks.1"]
VAE_INTER = ["post_quant_conv", "decoder.mid_block"]
TEXT_INTER = ["text_model.embeddings", "text_model.encoder.layers.0",
              "text_model.encoder.layers.1"]


def f32(t):
    return t.detach().to(torch.float32).cpu().numpy()


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def capture(model, names):
    """Register hooks on model's named modules; returns (store, handles)."""
    store, handles = {}, []
    mods = dict(model.named_modules())
    for n in names:
        def hook(_m, _i, out, n=n):
            store[n] = out[0] if isinstance(out, tuple) else out
        handles.append(mods[n].register_forward_hook(hook))
    return store, handles


def put_inter(g, store):
    for n, t in store.items():
        g.create_dataset("inter/" + n, data=f32(t[:1]))


def stats(name, a):
    a = np.asarray(a, dtype=np.float64)
    print(f"{name:40s} shape {list(a.shape)!s:18s} mean {a.mean():+.4f} std {a.std():.4f} "
          f"absmax {np.abs(a).max():.4f}")


def encode(tok, text, prompts):
    ids = tok(prompts, padding="max_length", max_length=77, truncation=True,
              return_tensors="pt").input_ids
    out = text(ids)
    return ids, out[0], out[1]


def do_text(h, tok, text):
    g = h.create_group("text")
    store, hs = capture(text, TEXT_INTER)
    with torch.no_grad():
        ids, last, pooled = encode(tok, text, PROMPTS)
    for x in hs:
        x.remove()
    g.create_dataset("ids", data=ids.numpy().astype(np.int64))
    g.create_dataset("prompts", data=PROMPTS, dtype=h5py.string_dtype("utf-8"))
    g.create_dataset("last_hidden_state", data=f32(last))
    g.create_dataset("pooled", data=f32(pooled))
    put_inter(g, store)
    stats("/text/last_hidden_state", f32(last))
    stats("/text/pooled", f32(pooled))
    for p, row in zip(PROMPTS, ids.tolist()):
        print(f"  ids {row[:12]}... {repr(p)[:40]}")


def do_unet(h, tok, text, unet, unet16, gen):
    g = h.create_group("unet")
    with torch.no_grad():
        _, ctx_text, _ = encode(tok, text, [PROMPTS[0], ""])
    cases = [([981, 1], None), ([0, 999], None), ([500, 250], None), ([951, 51], ctx_text)]
    for i, (ts, ctx) in enumerate(cases):
        c = g.create_group(f"case{i}")
        x = torch.randn(2, 4, 16, 16, generator=gen)
        if ctx is None:
            ctx = torch.randn(2, 77, 32, generator=gen)
        t = torch.tensor(ts, dtype=torch.int64)
        store, hs = capture(unet, UNET_INTER) if i == 0 else ({}, [])
        with torch.no_grad():
            out = unet(x, t, encoder_hidden_states=ctx).sample
        for x_ in hs:
            x_.remove()
        c.create_dataset("sample", data=f32(x))
        c.create_dataset("timestep", data=t.numpy())
        c.create_dataset("context", data=f32(ctx))
        c.create_dataset("out", data=f32(out))
        put_inter(c, store)
        stats(f"/unet/case{i}/out", f32(out))
        if i == 0:
            with torch.no_grad():
                out16 = unet16(x, t, encoder_hidden_states=ctx).sample
            g.create_dataset("fp16/out", data=f32(out16))
            stats("/unet/fp16/out", f32(out16))
            print(f"  fp16-weight vs fp32 max |diff| {(out16 - out).abs().max().item():.2e}")

    c = g.create_group("grad")
    x = torch.randn(2, 4, 16, 16, generator=gen).requires_grad_(True)
    ctx = torch.randn(2, 77, 32, generator=gen).requires_grad_(True)
    w = torch.randn(2, 4, 16, 16, generator=gen)
    t = torch.tensor([700, 30], dtype=torch.int64)
    out = unet(x, t, encoder_hidden_states=ctx).sample
    loss = (out * w).sum()
    loss.backward()
    for n, v in (("sample", x), ("context", ctx), ("w", w), ("out", out),
                 ("dsample", x.grad), ("dcontext", ctx.grad)):
        c.create_dataset(n, data=f32(v))
    c.create_dataset("timestep", data=t.numpy())
    c.create_dataset("loss", data=np.float32(loss.item()))
    stats("/unet/grad/out", f32(out))
    stats("/unet/grad/dsample", f32(x.grad))
    stats("/unet/grad/dcontext", f32(ctx.grad))


def do_vae(h, vae, vae_legacy, gen):
    g = h.create_group("vae")
    z = torch.randn(2, 4, 16, 16, generator=gen)
    store, hs = capture(vae, VAE_INTER)
    with torch.no_grad():
        img = vae.decode(z / vae.config.scaling_factor).sample
        for x in hs:
            x.remove()
        img_l = vae_legacy.decode(z / vae_legacy.config.scaling_factor).sample
    assert torch.equal(img, img_l), "legacy-named VAE decodes differently"
    g.create_dataset("latents", data=f32(z))
    g.create_dataset("image", data=f32(img))
    g.create_dataset("image_legacy", data=f32(img_l))
    g.attrs["scaling_factor"] = np.float32(vae.config.scaling_factor)
    put_inter(g, store)
    stats("/vae/image", f32(img))


def do_scheduler(h, sched, gen):
    g = h.create_group("scheduler")
    sched.set_timesteps(20)
    g.create_dataset("timesteps", data=sched.timesteps.numpy().astype(np.int64))
    g.create_dataset("alphas_cumprod", data=sched.alphas_cumprod.numpy())
    betas = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=np.float64) ** 2
    g.create_dataset("alphas_cumprod_f64", data=np.cumprod(1.0 - betas))
    print(f"  timesteps {sched.timesteps.tolist()}")
    step = sched.config.num_train_timesteps // sched.num_inference_steps
    for i, t in enumerate([501, 1]):
        c = g.create_group(f"step{i}")
        x = torch.randn(2, 4, 16, 16, generator=gen)
        eps = torch.randn(2, 4, 16, 16, generator=gen)
        z = torch.randn(2, 4, 16, 16, generator=gen)
        r = sched.step(eps, t, x, eta=1.0, variance_noise=z)
        prev = t - step
        var = sched._get_variance(t, prev)
        a_t = sched.alphas_cumprod[t]
        a_p = sched.alphas_cumprod[prev] if prev >= 0 else sched.final_alpha_cumprod
        for n, v in (("x_t", x), ("eps", eps), ("z", z), ("prev_sample", r.prev_sample),
                     ("pred_original_sample", r.pred_original_sample)):
            c.create_dataset(n, data=f32(v))
        c.create_dataset("timestep", data=np.int64(t))
        c.create_dataset("prev_timestep", data=np.int64(prev))
        c.create_dataset("eta", data=np.float32(1.0))
        c.create_dataset("std_dev_t", data=np.float32((1.0 * var ** 0.5).item()))
        c.create_dataset("alpha_prod_t", data=np.float32(a_t.item()))
        c.create_dataset("alpha_prod_t_prev", data=np.float32(a_p.item()))
        stats(f"/scheduler/step{i}/prev_sample", f32(r.prev_sample))
        print(f"  step{i}: t {t} prev {prev} std_dev_t {(var ** 0.5).item():.6f}")


def main():
    fix = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
    fix = os.path.abspath(fix)
    torch.use_deterministic_algorithms(True)
    d = os.path.join(fix, "tiny-sd")
    tok = CLIPTokenizer.from_pretrained(d, subfolder="tokenizer")
    text = CLIPTextModel.from_pretrained(d, subfolder="text_encoder").eval()
    unet = UNet2DConditionModel.from_pretrained(d, subfolder="unet").eval()
    unet16 = UNet2DConditionModel.from_pretrained(os.path.join(fix, "tiny-sd-fp16"),
                                                  subfolder="unet").float().eval()
    vae = AutoencoderKL.from_pretrained(d, subfolder="vae").eval()
    diffusers.utils.logging.set_verbosity_error()  # the legacy copy has no encoder
    vae_legacy = AutoencoderKL.from_pretrained(os.path.join(fix, "tiny-vae-legacy"),
                                               low_cpu_mem_usage=False).eval()
    diffusers.utils.logging.set_verbosity_warning()
    sched = DDIMScheduler.from_pretrained(d, subfolder="scheduler")
    for m in (text, unet, unet16, vae, vae_legacy):
        m.requires_grad_(False)

    gen = torch.Generator().manual_seed(SEED)
    path = os.path.join(fix, "tiny_sd_parity.h5")
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as h:
        h.attrs["fixture_version"] = 1
        h.attrs["generator"] = "tests/reference/tiny_sd_fixtures.py"
        h.attrs["torch"] = str(torch.__version__)
        h.attrs["diffusers"] = str(diffusers.__version__)
        h.attrs["transformers"] = str(transformers.__version__)
        for k, p in (("sha256_unet", "tiny-sd/unet/diffusion_pytorch_model.safetensors"),
                     ("sha256_unet_fp16", "tiny-sd-fp16/unet/diffusion_pytorch_model.safetensors"),
                     ("sha256_vae", "tiny-sd/vae/diffusion_pytorch_model.safetensors"),
                     ("sha256_vae_legacy", "tiny-vae-legacy/diffusion_pytorch_model.safetensors"),
                     ("sha256_text_encoder", "tiny-sd/text_encoder/model.safetensors")):
            h.attrs[k] = sha256(os.path.join(fix, p))
        do_text(h, tok, text)
        do_unet(h, tok, text, unet, unet16, gen)
        do_vae(h, vae, vae_legacy, gen)
        do_scheduler(h, sched, gen)
    os.replace(tmp, path)
    print("wrote", path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
