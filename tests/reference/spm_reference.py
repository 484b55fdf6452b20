#!/usr/bin/env python3
"""spm_reference.py — the step-aware preference model (SPM) reference.

The SPM of the official SPO code (github.com/RockeyCoss/SPO,
spo/preference_models/models/{time_conditioned_clip,step_aware_preference_model}.py)
is a transformers CLIPModel (PickScore_v1, ViT-H/14) whose vision tower is
conditioned on the diffusion timestep. This script re-implements it with
the same module names (so state-dict keys match the official checkpoint)
on top of transformers 4.40.1's CLIP modules:

  StepAwarePreferenceModel            (the checkpoint's root; keys "model.*")
    .model = CLIPModel + extra modules:
      t_embedder.mlp.{0,2}            Linear(256, W), SiLU, Linear(W, W)
      vision_model.encoder.layers.N.adaLN_modulation.1   Linear(W, 6W)
      vision_model.adaLN_modulation.1                    Linear(W, 2W)

  tc = t_embedder([cos(t f), sin(t f)]),  f_i = exp(-ln(10000) i / 128), i < 128
  per layer: shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp
             = adaLN_modulation(tc).chunk(6)           (Sequential(SiLU, Linear))
    x = x + gate_msa * attn(ln1(x) * (1 + scale_msa) + shift_msa)
    x = x + gate_mlp * mlp(ln2(x) * (1 + scale_mlp) + shift_mlp)
  pooled = post_layernorm(x[:, 0]);  shift, scale = adaLN_modulation(tc).chunk(2)
  pooled = pooled * (1 + scale) + shift;   image_embeds = visual_projection(pooled)
  text_embeds = text_projection(text pooled output)   (plain CLIP text tower)
  score = exp(logit_scale) * cos(image_embeds, text_embeds)

Preprocessing (get_preference_score): images in [-1, 1], (n,3,h,w) ->
F.interpolate(bicubic, align_corners=False, no antialias) to
(int(h s + 0.5), int(w s + 0.5)) with s = S / min(h, w) -> center crop S
when not square -> (x / 2 + 0.5).clamp(0, 1) -> normalise with the CLIP
mean/std. S is the processor's shortest_edge (224 for PickScore); here it
is read from the vision config's image_size (28 for the tiny model).

The official checkpoint (sd-v1-5_step-aware_preference_model.bin) is a
torch.save of the whole StepAwarePreferenceModel state dict: every key
starts with "model.", CLIP weights included (loaded with strict=False over
PickScore_v1 and required to have no missing key). This script writes it the
same way, adding the position_ids buffers older transformers versions saved.

Writes (default under tests/fixtures/):
  tiny-spm/clip/      CLIPModel.save_pretrained (safetensors), the tiny
                      byte-level tokenizer of tiny-sd, preprocessor_config.json
  tiny-spm/spm.bin    torch.save(StepAwarePreferenceModel.state_dict()); its
                      CLIP weights differ from clip/ (a "fine-tuned" copy) so
                      a loader that reads clip/'s weights fails parity
  spm_parity.h5       /spm/images [3,3,32,32] in [-1,1], timesteps [3] f32
                      (0, 451, 951), pixel_values [3,3,28,28], tc [3,32]
                      (t_embedder output per timestep), image_embeds [3,3,16]
                      (timestep, image, dim), image_embeds_mixed [3,16]
                      (image i at timestep i, one batch), text_ids [3,77] i64,
                      prompts [3], text_embeds [3,16], scores [3,3,3]
                      (timestep, image, text), logit_scale (scalar);
                      /spm/wide: image [1,3,32,48], timesteps [1],
                      pixel_values [1,3,28,28], image_embeds [1,16]

  --full DIR          instead: a full-size random SPM (PickScore_v1 shapes:
                      ViT-H/14 vision 1280 x 32, text 1024 x 24, projection
                      1024) as DIR/clip/ and DIR/spm.bin (about 4 GB each;
                      for timing, never committed)

Run:  /path/to/venv/bin/python tests/reference/spm_reference.py [OUTDIR | --full DIR]
"""
import hashlib
import json
import math
import os
import shutil
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import transformers
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

SEED = 20240602
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
FREQ_DIM = 256  # TimestepEmbedder frequency_embedding_size

TINY_VISION = dict(image_size=28, patch_size=14, num_channels=3, hidden_size=32, intermediate_size=64,
                   num_hidden_layers=2, num_attention_heads=4, hidden_act="gelu", layer_norm_eps=1e-5)
TINY_TEXT = dict(vocab_size=514, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                 num_attention_heads=4, max_position_embeddings=77, hidden_act="gelu",
                 layer_norm_eps=1e-5, bos_token_id=512, eos_token_id=513, pad_token_id=513)
TINY_PROJ = 16

# PickScore_v1 / laion CLIP-ViT-H-14 shapes
FULL_VISION = dict(image_size=224, patch_size=14, num_channels=3, hidden_size=1280, intermediate_size=5120,
                   num_hidden_layers=32, num_attention_heads=16, hidden_act="gelu", layer_norm_eps=1e-5)
FULL_TEXT = dict(vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                 num_attention_heads=16, max_position_embeddings=77, hidden_act="gelu",
                 layer_norm_eps=1e-5, bos_token_id=49406, eos_token_id=49407, pad_token_id=1)
FULL_PROJ = 1024

PROMPTS = ["a red apple on a wooden table", "Sunset over the sea, oil painting!", ""]
TIMESTEPS = [0.0, 451.0, 951.0]


# ---- the time-conditioned parts (official module names) ------------------

class TimestepEmbedder(nn.Module):
    """t (n) -> (n, W): [cos, sin] sinusoid of 256 frequencies, Linear, SiLU, Linear."""

    def __init__(self, width, freq_dim=FREQ_DIM):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(freq_dim, width), nn.SiLU(), nn.Linear(width, width))
        self.frequency_embedding_size = freq_dim

    def forward(self, t):
        half = self.frequency_embedding_size // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        args = t[:, None].float() * freqs[None]
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))


def add_time_conditioning(clip):
    """Attach the SPM's extra modules to a CLIPModel, in place."""
    w = clip.config.vision_config.hidden_size
    clip.t_embedder = TimestepEmbedder(w)
    for layer in clip.vision_model.encoder.layers:
        layer.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(w, 6 * w))
    clip.vision_model.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(w, 2 * w))


class StepAwarePreferenceModel(nn.Module):
    """The checkpoint's root module: only `model` (no parameters of its own)."""

    def __init__(self, clip):
        super().__init__()
        self.model = clip


def modulate(x, shift, scale):
    return x * (1 + scale[:, None]) + shift[:, None]


def image_features(clip, pixel_values, timesteps, store=None):
    """(n,3,S,S) normalised pixels, (n) timesteps -> (n, projection_dim)."""
    tc = clip.t_embedder(timesteps.to(pixel_values.dtype))
    if store is not None:
        store["tc"] = tc
    vm = clip.vision_model
    h = vm.pre_layrnorm(vm.embeddings(pixel_values))
    for layer in vm.encoder.layers:
        s_msa, c_msa, g_msa, s_mlp, c_mlp, g_mlp = layer.adaLN_modulation(tc).chunk(6, dim=1)
        a = modulate(layer.layer_norm1(h), s_msa, c_msa)
        h = h + layer.self_attn(hidden_states=a)[0] * g_msa[:, None]
        a = modulate(layer.layer_norm2(h), s_mlp, c_mlp)
        h = h + layer.mlp(a) * g_mlp[:, None]
    pooled = vm.post_layernorm(h[:, 0, :])
    shift, scale = vm.adaLN_modulation(tc).chunk(2, dim=1)
    return clip.visual_projection(pooled * (1 + scale) + shift)


def text_features(clip, ids):
    return clip.get_text_features(input_ids=ids)


def preprocess(images, size):
    """(n,3,h,w) in [-1,1] -> (n,3,size,size) as get_preference_score does."""
    h, w = images.shape[-2:]
    s = size / min(h, w)
    nh, nw = int(h * s + 0.5), int(w * s + 0.5)
    x = F.interpolate(images, size=(nh, nw), mode="bicubic", align_corners=False)
    if nh != nw:  # torchvision CenterCrop: top = round((nh - size) / 2)
        top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
        x = x[:, :, top:top + size, left:left + size]
    x = (x / 2 + 0.5).clamp(0, 1).float()
    mean = torch.tensor(CLIP_MEAN)[None, :, None, None]
    std = torch.tensor(CLIP_STD)[None, :, None, None]
    return (x - mean) / std


def scores_of(clip, img_emb, txt_emb):
    i = img_emb / img_emb.norm(dim=-1, keepdim=True)
    t = txt_emb / txt_emb.norm(dim=-1, keepdim=True)
    return clip.logit_scale.exp() * (i * t).sum(-1)


# ---- building ------------------------------------------------------------

def randomize(module, gen, only=None):
    """Every parameter non-trivial: matrices N(0, 1/fan_in), embeddings N(0,1),
    norm weights 1 + N(0, 0.1), biases and vectors N(0, 0.1); logit_scale
    ln(100) + N(0, 0.1). `only`: a predicate on the parameter name."""
    with torch.no_grad():
        for name, mod in module.named_modules():
            for pname, p in mod.named_parameters(recurse=False):
                full = f"{name}.{pname}" if name else pname
                if only is not None and not only(full):
                    continue
                if pname == "logit_scale":
                    p.fill_(math.log(100.0) + 0.1 * torch.randn((), generator=gen).item())
                elif isinstance(mod, nn.LayerNorm):
                    p.copy_((1 if pname == "weight" else 0) + 0.1 * torch.randn(p.shape, generator=gen))
                elif isinstance(mod, nn.Embedding):
                    p.copy_(torch.randn(p.shape, generator=gen))
                elif pname == "bias" or p.dim() <= 1:
                    p.copy_(0.1 * torch.randn(p.shape, generator=gen))
                else:
                    p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p[0].numel()))


def is_extra(name):
    return "t_embedder" in name or "adaLN_modulation" in name


def build(vision, text, proj, gen):
    cfg = CLIPConfig(text_config=text, vision_config=vision, projection_dim=proj)
    clip = CLIPModel(cfg).eval()
    randomize(clip, gen)
    return clip


def write_clip_dir(clip, d, tokdir):
    """save_pretrained (safetensors), tokenizer files, preprocessor_config.json."""
    clip.save_pretrained(d, safe_serialization=True)
    if tokdir:
        for f in os.listdir(tokdir):
            shutil.copy(os.path.join(tokdir, f), os.path.join(d, f))
    size = clip.config.vision_config.image_size
    pre = dict(crop_size={"height": size, "width": size}, do_center_crop=True, do_convert_rgb=True,
               do_normalize=True, do_rescale=True, do_resize=True, image_mean=CLIP_MEAN, image_std=CLIP_STD,
               image_processor_type="CLIPImageProcessor", resample=3, rescale_factor=1 / 255,
               size={"shortest_edge": size})
    with open(os.path.join(d, "preprocessor_config.json"), "w") as f:
        json.dump(pre, f, indent=2)
        f.write("\n")


def make_spm(clip, gen):
    """Attach the extra modules (random, non-zero), perturb the CLIP weights
    ("fine-tuned"), return the StepAwarePreferenceModel."""
    add_time_conditioning(clip)
    randomize(clip, gen, only=is_extra)
    with torch.no_grad():
        for name, p in clip.named_parameters():
            if not is_extra(name):
                p.add_(0.02 * p.abs().mean() * torch.randn(p.shape, generator=gen))
    return StepAwarePreferenceModel(clip).eval()


def save_spm(spm, path):
    sd = spm.state_dict()
    assert all(k.startswith("model.") for k in sd)
    # older transformers (as the official checkpoint's) also saved these buffers
    sd["model.text_model.embeddings.position_ids"] = spm.model.text_model.embeddings.position_ids.clone()
    sd["model.vision_model.embeddings.position_ids"] = spm.model.vision_model.embeddings.position_ids.clone()
    torch.save(sd, path)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def check_identity_when_unconditioned(clip, gen):
    """With zero modulation weights, zero shift/scale and unit gates, the
    SPM must equal the plain CLIPModel: a check of image_features itself."""
    ref = CLIPModel(clip.config).eval()
    ref.load_state_dict({k: v for k, v in clip.state_dict().items() if not is_extra(k)}, strict=False)
    probe = CLIPModel(clip.config).eval()
    probe.load_state_dict(ref.state_dict(), strict=False)
    add_time_conditioning(probe)
    w = clip.config.vision_config.hidden_size
    with torch.no_grad():
        for m in [l.adaLN_modulation[1] for l in probe.vision_model.encoder.layers] + [
                probe.vision_model.adaLN_modulation[1]]:
            m.weight.zero_()
            m.bias.zero_()
            if m.bias.numel() == 6 * w:
                m.bias[2 * w:3 * w] = 1
                m.bias[5 * w:] = 1
        x = torch.randn(2, 3, clip.config.vision_config.image_size, clip.config.vision_config.image_size,
                        generator=gen)
        a = image_features(probe, x, torch.tensor([5.0, 700.0]))
        b = ref.get_image_features(pixel_values=x)
    err = (a - b).abs().max().item()
    assert err < 1e-5, f"unconditioned SPM differs from CLIPModel by {err}"


def main_tiny(root):
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(SEED)
    tokdir = os.path.join(root, "tiny-sd", "tokenizer")
    outdir = os.path.join(root, "tiny-spm")
    shutil.rmtree(outdir, ignore_errors=True)
    clipdir = os.path.join(outdir, "clip")
    os.makedirs(clipdir)

    clip = build(TINY_VISION, TINY_TEXT, TINY_PROJ, gen)
    write_clip_dir(clip, clipdir, tokdir)
    spm = make_spm(clip, gen)
    check_identity_when_unconditioned(clip, gen)
    binpath = os.path.join(outdir, "spm.bin")
    save_spm(spm, binpath)

    # reload both ways, as a user would, and use the reloaded model
    m = CLIPModel.from_pretrained(clipdir).eval()
    add_time_conditioning(m)
    spm2 = StepAwarePreferenceModel(m).eval()
    missing, unexpected = spm2.load_state_dict(torch.load(binpath, map_location="cpu"), strict=False)
    assert not missing and all(k.endswith("position_ids") for k in unexpected), (missing, unexpected)
    clip = spm2.model
    tok = CLIPTokenizer.from_pretrained(clipdir)
    size = clip.config.vision_config.image_size

    g = torch.Generator().manual_seed(SEED + 1)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
    smooth = torch.stack([torch.sin(3 * xx + 1), torch.cos(2 * yy), xx * yy])  # a smooth image
    images = torch.cat([smooth[None], torch.tanh(1.5 * torch.randn(2, 3, 32, 32, generator=g))]).clamp(-1, 1)
    wide = torch.tanh(1.5 * torch.randn(1, 3, 32, 48, generator=g))
    ids = tok(PROMPTS, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    n, T = images.shape[0], len(TIMESTEPS)

    with torch.no_grad():
        pix = preprocess(images, size)
        txt = text_features(clip, ids)
        emb = torch.stack([image_features(clip, pix, torch.full((n,), t)) for t in TIMESTEPS])
        store = {}
        mixed = image_features(clip, pix, torch.tensor(TIMESTEPS), store)
        scores = torch.stack([torch.stack([scores_of(clip, emb[k][i:i + 1].expand(n, -1), txt)
                                           for i in range(n)]) for k in range(T)])
        for k in range(T):  # mixed batch == per-timestep batches
            assert torch.allclose(mixed[k], emb[k][k], atol=1e-5)
        wpix = preprocess(wide, size)
        wemb = image_features(clip, wpix, torch.tensor([451.0]))
    print("image_embeds std %.3f, text_embeds std %.3f, scores %s" %
          (emb.std().item(), txt.std().item(), np.array2string(scores[1].numpy(), precision=3)))
    spread = (emb[0] - emb[2]).norm() / emb[0].norm()
    assert spread > 0.05, f"timestep barely changes the embedding ({spread})"

    path = os.path.join(root, "spm_parity.h5")
    with h5py.File(path, "w") as f:
        f.attrs["torch"] = str(torch.__version__)
        f.attrs["transformers"] = str(transformers.__version__)
        f.attrs["sha256_spm_bin"] = sha256(binpath)
        f.attrs["sha256_clip"] = sha256(os.path.join(clipdir, "model.safetensors"))
        s = f.create_group("spm")
        put = lambda k, v: s.create_dataset(k, data=v.detach().numpy().astype(np.float32))
        put("images", images)
        put("timesteps", torch.tensor(TIMESTEPS))
        put("pixel_values", pix)
        put("tc", store["tc"])
        put("image_embeds", emb)
        put("image_embeds_mixed", mixed)
        s.create_dataset("text_ids", data=ids.numpy().astype(np.int64))
        s.create_dataset("prompts", data=PROMPTS, dtype=h5py.string_dtype())
        put("text_embeds", txt)
        put("scores", scores)
        s.create_dataset("logit_scale", data=np.float32(clip.logit_scale.item()))
        w = s.create_group("wide")
        w.create_dataset("image", data=wide.numpy().astype(np.float32))
        w.create_dataset("timesteps", data=np.array([451.0], np.float32))
        w.create_dataset("pixel_values", data=wpix.numpy().astype(np.float32))
        w.create_dataset("image_embeds", data=wemb.numpy().astype(np.float32))
    print("wrote", outdir, path)


def main_full(d):
    """A full-size random SPM for timing (not a fixture)."""
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    os.makedirs(os.path.join(d, "clip"), exist_ok=True)
    clip = build(FULL_VISION, FULL_TEXT, FULL_PROJ, gen)
    write_clip_dir(clip, os.path.join(d, "clip"), None)
    save_spm(make_spm(clip, gen), os.path.join(d, "spm.bin"))
    print("wrote", d)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--full":
        main_full(sys.argv[2])
    else:
        main_tiny(os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")))
