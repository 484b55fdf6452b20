#!/usr/bin/env python3
"""eps_fixtures.py — eps-sensitive variants of the tiny SD models.

The tiny models of tests/fixtures/tiny-sd feed every GroupNorm/LayerNorm
activations of variance O(1), so a norm eps of 1e-5 instead of 1e-6 moves
their outputs by only ~1e-5 relative, below the 1e-4 parity tolerance. This
script makes copies whose every norm sees a variance ~S^2 times the
original (S = 1e-2 for the UNet and the text encoder, 3e-3 for the VAE,
whose latents are drawn with std scaling_factor so that latents /
scaling_factor is N(0, 1)), by scaling the residual streams by S:

  the layer that starts a stream      weight and bias * S
      UNet / VAE decoder conv_in; CLIP token and position embeddings;
      Transformer2D proj_in (its inner stream)
  a layer whose output is added to a stream, or that feeds a norm from a
  norm's output                        weight and bias * S
      resnet conv1 and time_emb_proj (they feed norm2), resnet conv2,
      Attention to_out.0, FeedForward net.2, CLIP out_proj and fc2
  a layer applied to a stream          bias * S (the weight is linear)
      resnet conv_shortcut, Downsample2D/Upsample2D conv, Transformer2D
      proj_out

A norm is invariant to the scale of its input except through eps, so the
copy with eps e computes what the original computes with eps e / S^2 (the
script checks this, to ~1e-6, before rounding the weights). The copies are
saved in float16 (diffusers layout) and the outputs computed from those
weights upcast to float32 on the CPU:

  tests/fixtures/eps/unet/          config.json, diffusion_pytorch_model.safetensors
  tests/fixtures/eps/vae/           decoder and post_quant_conv only
  tests/fixtures/eps/text_encoder/  config.json, model.safetensors
  tests/fixtures/eps/parity.h5
      /unet  sample [2,4,16,16], timestep [2] int64, context [2,77,32], out [2,4,16,16]
      /vae   latents [2,4,16,16] (decoded as latents / scaling_factor), image [2,3,32,32]
      /text  ids [2,77] int64, last_hidden_state [2,77,32], pooled [2,32]
      /sens/<model>/<norms>  relative L2 change of the output when that
             group of norms has the wrong eps (attrs: eps_right, eps_wrong)

Each group of norms, given the wrong eps (1e-6 for a 1e-5 one, 1e-5 for a
1e-6 one), must move its model's output by more than 1e-3 relative L2 (10x
the C tests' tolerance); the script fails otherwise. Last run
(torch 2.3.1, diffusers 0.26.1, transformers 4.40.1):

  unet  resnet.norm1 (1e-5)           0.01493
        resnet.norm2 (1e-5)           0.08449
        conv_norm_out (1e-5)          0.0127
        transformer.norm (1e-6)       0.0231
        block.norm1 (1e-5)            0.04161
        block.norm2 (1e-5)            0.01323
        block.norm3 (1e-5)            0.04398
  vae   resnet.norm1 (1e-6)           0.08416
        resnet.norm2 (1e-6)           0.3724
        attention.group_norm (1e-6)   0.08252
        conv_norm_out (1e-6)          0.1544
  text  layer_norm1 (1e-5)            0.02027 (pooled 0.02061)
        layer_norm2 (1e-5)            0.01696 (pooled 0.01721)
        final_layer_norm (1e-5)       0.01719 (pooled 0.01655)

(versus 2e-7..1.2e-5 for the same changes on tiny-sd itself, printed as
"orig"). The saved weights are 2.5 MB in all, parity.h5 110 kB.

Run:  /path/to/venv/bin/python tests/reference/eps_fixtures.py [FIXDIR]
"""
import copy
import json
import os
import shutil
import sys

import h5py
import numpy as np
import torch
from safetensors.torch import load_file, save_file

import diffusers
import transformers
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.models.attention import BasicTransformerBlock, FeedForward
from diffusers.models.attention_processor import Attention
from diffusers.models.resnet import Downsample2D, ResnetBlock2D, Upsample2D
from transformers import CLIPTextModel, CLIPTokenizer

S = {"unet": 1e-2, "vae": 3e-3, "text": 1e-2}
SEED = 4321
MIN_SENS = 1e-3
PROMPTS = ["a photo of a Cat, sitting on 2 mats!", ""]


def f32(t):
    return t.detach().to(torch.float32).cpu().numpy()


def rel(a, b):
    return ((a - b).norm() / b.norm()).item()


def mul(p, s):
    if p is not None:
        p.mul_(s)


def lin(m, s):
    """weight and bias of m times s"""
    mul(m.weight, s)
    mul(m.bias, s)


def scale_streams(model, s):
    """Scale the residual streams of a diffusers UNet/VAE by s (see above)."""
    with torch.no_grad():
        lin(model.conv_in if hasattr(model, "conv_in") else model.decoder.conv_in, s)
        for m in model.modules():
            if isinstance(m, ResnetBlock2D):
                lin(m.conv1, s)
                lin(m.conv2, s)
                if m.time_emb_proj is not None:
                    lin(m.time_emb_proj, s)
                if m.conv_shortcut is not None:
                    mul(m.conv_shortcut.bias, s)
            elif isinstance(m, (Downsample2D, Upsample2D)):
                mul(m.conv.bias, s)
            elif isinstance(m, Attention):
                lin(m.to_out[0], s)
            elif isinstance(m, FeedForward):
                lin(m.net[2], s)
            elif type(m).__name__ == "Transformer2DModel":
                lin(m.proj_in, s)
                mul(m.proj_out.bias, s)


def scale_text(text, s):
    """Scale the residual stream of a CLIPTextModel by s."""
    with torch.no_grad():
        e = text.text_model.embeddings
        mul(e.token_embedding.weight, s)
        mul(e.position_embedding.weight, s)
        for layer in text.text_model.encoder.layers:
            lin(layer.self_attn.out_proj, s)
            lin(layer.mlp.fc2, s)


def unet_groups(u):
    g = {"resnet.norm1": [], "resnet.norm2": [], "conv_norm_out": [u.conv_norm_out],
         "transformer.norm": [], "block.norm1": [], "block.norm2": [], "block.norm3": []}
    for m in u.modules():
        if isinstance(m, ResnetBlock2D):
            g["resnet.norm1"].append(m.norm1)
            g["resnet.norm2"].append(m.norm2)
        elif type(m).__name__ == "Transformer2DModel":
            g["transformer.norm"].append(m.norm)
        elif isinstance(m, BasicTransformerBlock):
            for i in (1, 2, 3):
                g[f"block.norm{i}"].append(getattr(m, f"norm{i}"))
    return g


def vae_groups(v):
    d = v.decoder
    g = {"resnet.norm1": [], "resnet.norm2": [], "attention.group_norm": [],
         "conv_norm_out": [d.conv_norm_out]}
    for m in d.modules():
        if isinstance(m, ResnetBlock2D):
            g["resnet.norm1"].append(m.norm1)
            g["resnet.norm2"].append(m.norm2)
        elif isinstance(m, Attention):
            g["attention.group_norm"].append(m.group_norm)
    return g


def text_groups(t):
    layers = t.text_model.encoder.layers
    return {"layer_norm1": [x.layer_norm1 for x in layers],
            "layer_norm2": [x.layer_norm2 for x in layers],
            "final_layer_norm": [t.text_model.final_layer_norm]}


def eps_of(norms):
    e = {n.eps for n in norms}
    assert len(e) == 1, e
    return e.pop()


def wrong(e):
    return {1e-5: 1e-6, 1e-6: 1e-5}[e]


def sensitivities(name, groups, run, ref, h=None):
    """Relative change of run() (a tuple of outputs) per group given the wrong eps."""
    worst = []
    for gname, norms in groups.items():
        assert norms, gname
        e = eps_of(norms)
        for n in norms:
            n.eps = wrong(e)
        outs = run()
        for n in norms:
            n.eps = e
        r = [rel(o, w) for o, w in zip(outs, ref)]
        worst.append(min(r))
        extra = f" (pooled {r[1]:.4g})" if len(r) > 1 else ""
        print(f"  {name:5s} {gname + ' (%g)' % e:30s}{r[0]:.4g}{extra}")
        if h is not None:
            d = h.create_dataset(f"sens/{name}/{gname}", data=np.array(r, dtype=np.float64))
            d.attrs["eps_right"] = e
            d.attrs["eps_wrong"] = wrong(e)
    return worst


def check_equiv(name, model, groups_of, run_with, scale, s):
    """The s-scaled copy with eps e equals the original with eps e / s^2."""
    orig = copy.deepcopy(model)
    scale(model, s)
    want = run_with(model)
    norms = [n for ns in groups_of(orig).values() for n in ns]
    saved = [n.eps for n in norms]
    for n in norms:
        n.eps = n.eps / s**2
    got = run_with(orig)
    r = max(rel(a, b) for a, b in zip(got, want))
    print(f"  {name}: scaled copy vs original with eps/S^2: rel L2 {r:.2e}")
    assert r < 1e-4, (name, r)
    for n, e in zip(norms, saved):
        n.eps = e
    return orig


def round_fp16(model):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.float16).to(torch.float32))


def main():
    fix = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
    fix = os.path.abspath(fix)
    torch.use_deterministic_algorithms(True)
    torch.set_grad_enabled(False)
    src = os.path.join(fix, "tiny-sd")
    out = os.path.join(fix, "eps")
    tok = CLIPTokenizer.from_pretrained(src, subfolder="tokenizer")
    text = CLIPTextModel.from_pretrained(src, subfolder="text_encoder").eval()
    unet = UNet2DConditionModel.from_pretrained(src, subfolder="unet").eval()
    vae = AutoencoderKL.from_pretrained(src, subfolder="vae").eval()

    gen = torch.Generator().manual_seed(SEED)
    x = torch.randn(2, 4, 16, 16, generator=gen)
    t = torch.tensor([981, 251], dtype=torch.int64)
    ctx = torch.randn(2, 77, 32, generator=gen)
    sf = vae.config.scaling_factor
    z = sf * torch.randn(2, 4, 16, 16, generator=gen)  # z / sf: N(0, 1)
    ids = tok(PROMPTS, padding="max_length", max_length=77, truncation=True,
              return_tensors="pt").input_ids

    def run_unet(m):
        return (m(x, t, encoder_hidden_states=ctx).sample,)

    def run_vae(m):
        return (m.decode(z / sf).sample,)

    def run_text(m):
        o = m(ids)
        return (o[0], o[1])

    print("checks of the scaling (S = %s):" % S)
    models = {"unet": (unet, unet_groups, run_unet, scale_streams),
              "vae": (vae, vae_groups, run_vae, scale_streams),
              "text": (text, text_groups, run_text, scale_text)}
    origs = {}
    for name, (m, groups_of, run, scale) in models.items():
        origs[name] = check_equiv(name, m, groups_of, run, scale, S[name])
        round_fp16(m)

    print("orig: relative L2 change of the output with one group's eps wrong")
    for name, (m, groups_of, run, _) in models.items():
        o = origs[name]
        sensitivities(name, groups_of(o), lambda: run(o), run(o))

    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    unet.to(torch.float16).save_pretrained(os.path.join(out, "unet"), safe_serialization=True)
    text.to(torch.float16).save_pretrained(os.path.join(out, "text_encoder"),
                                           safe_serialization=True)
    vae.to(torch.float16).save_pretrained(os.path.join(out, "vae"), safe_serialization=True)
    p = os.path.join(out, "text_encoder", "config.json")
    with open(p) as f:
        cfg = json.load(f)
    cfg.pop("_name_or_path", None)  # a local path
    with open(p, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    p = os.path.join(out, "vae", "diffusion_pytorch_model.safetensors")
    sd = {k: v for k, v in load_file(p).items() if k.startswith(("decoder.", "post_quant_conv."))}
    save_file(sd, p, metadata={"format": "pt"})

    # the references from the saved weights, upcast to float32
    unet = UNet2DConditionModel.from_pretrained(os.path.join(out, "unet")).float().eval()
    text = CLIPTextModel.from_pretrained(os.path.join(out, "text_encoder")).float().eval()
    diffusers.utils.logging.set_verbosity_error()  # the encoder half is left out
    vae = AutoencoderKL.from_pretrained(os.path.join(out, "vae"),
                                        low_cpu_mem_usage=False).float().eval()
    diffusers.utils.logging.set_verbosity_warning()

    path = os.path.join(out, "parity.h5")
    with h5py.File(path, "w") as h:
        h.attrs["generator"] = "tests/reference/eps_fixtures.py"
        for k, v in S.items():
            h.attrs["scale_" + k] = v
        h.attrs["torch"] = str(torch.__version__)
        h.attrs["diffusers"] = str(diffusers.__version__)
        h.attrs["transformers"] = str(transformers.__version__)
        (u_out,) = run_unet(unet)
        (img,) = run_vae(vae)
        hid, pooled = run_text(text)
        for k, v in (("unet/sample", x), ("unet/context", ctx), ("unet/out", u_out),
                     ("vae/latents", z), ("vae/image", img),
                     ("text/last_hidden_state", hid), ("text/pooled", pooled)):
            h.create_dataset(k, data=f32(v))
        h.create_dataset("unet/timestep", data=t.numpy())
        h.create_dataset("text/ids", data=ids.numpy().astype(np.int64))
        h["vae"].attrs["scaling_factor"] = np.float32(sf)
        print("eps variants: relative L2 change of the output with one group's eps wrong")
        worst = []
        worst += sensitivities("unet", unet_groups(unet), lambda: run_unet(unet), (u_out,), h)
        worst += sensitivities("vae", vae_groups(vae), lambda: run_vae(vae), (img,), h)
        worst += sensitivities("text", text_groups(text), lambda: run_text(text), (hid, pooled), h)
    for k, v in (("unet out", u_out), ("vae image", img), ("text hidden", hid)):
        print(f"  {k}: std {v.std().item():.4f}")
    assert min(worst) > MIN_SENS, f"an eps change moves an output by only {min(worst):.3g}"
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
    print("wrote", out, total, "bytes")


if __name__ == "__main__":
    main()
