#!/usr/bin/env python3
"""spo_update_fixture.py — reference of one SPO update step on the tiny model.

The tiny UNet of tests/fixtures/tiny-sd with a peft LoRA exactly as the
official SPO training script adds it (LoraConfig r 4, lora_alpha 4,
init_lora_weights "gaussian", targets to_q/to_k/to_v/to_out.0), then A and
B replaced by seeded nonzero values. Fixed pairs at several timesteps;
their children are drawn around the reference model's DDIM mean, and the
winner of some is pushed towards the policy's mean so that both clamped and
unclamped ratios occur. The loss is the official one (train_spo.py with
train.cfg true: guided eps of [x, x] with [uncond, cond], the DDIM step
log-probability with eta, ratios clamped to [1 - 0.1, 1 + 0.1], loss
-log sigmoid(10 log r_w - 10 log r_l) mean), computed with one policy pass
per child as the official script does. Then clip_grad_norm_(0.1: the
clipping acts) and one torch.optim.AdamW step (lr 6e-5, betas 0.9/0.999,
wd 1e-4, eps 1e-8) from seeded moments after 5 steps.

Writes tests/fixtures/update/:
  pairs.h5   a pairs/1 file of the pairs, with the model id spo gives
             tests/fixtures/tiny-sd (MODEL_ID; spo-init -m ... -e ... prints it)
  pairs_g3.h5, pairs_empty.h5   two of them sampled with guidance 3, and
             none (bad inputs for tests/cmd/step_update.bats)
  step.h5    /lora/<module>/down, up      the LoRA before the step
             /grad/<module>/down, up      d loss / d A, B (before clipping)
             /m0, /v0/<module>/down, up   AdamW moments before the step
             /after/<module>/down, up     the LoRA after the step
             attributes loss, ratio_win, ratio_lose (means), clamped_win,
             clamped_lose (counts), grad_norm (before clipping),
             max_grad_norm, adam_step (steps before this one), versions

SDXL (--sdxl): the same on the tiny SDXL UNet (tests/fixtures/tiny-sdxl/unet,
text width 64) with its added conditioning: each pair's prompt has a pooled
text embedding, the unconditional half gets a pooled one of its own, and
both halves the time ids (32, 32, 0, 0, 32, 32) of the 32x32 image of the
16x16 latents (tiny-sd's VAE, factor 2), as train_spo_sdxl.py passes
added_cond_kwargs. Writes tests/fixtures/update/sdxl/pairs.h5 (pairs/2 with
/pooled and /uncond_pooled; model id of the tiny SDXL directory that
tests/cmd/helpers.bash tiny_sdxl assembles) and sdxl/step.h5 (as above, without the optimizer step's groups m0, v0,
after: the step is the same code as SD's, and they would not fit the
fixture budget).

Run:  /path/to/venv/bin/python tests/reference/spo_update_fixture.py [--sdxl] [REPO]
"""
import math
import os
import sys

import h5py
import numpy as np
import torch

import diffusers
import peft
from diffusers import DDIMScheduler, UNet2DConditionModel
from peft import LoraConfig

SDXL = "--sdxl" in sys.argv[1:]
ARGS = [a for a in sys.argv[1:] if a != "--sdxl"]
REPO = ARGS[0] if ARGS else os.path.join(os.path.dirname(__file__), "..", "..")
MODEL = os.path.join(REPO, "tests/fixtures/tiny-sd")
OUT = os.path.join(REPO, "tests/fixtures/update", "sdxl" if SDXL else "")
G, ETA, BETA, CLIP = 5.0, 1.0, 10.0, 0.1
MAX_NORM, ADAM_STEP = 0.1, 5   # clipping active: the gradient norm is about 0.37
MODEL_ID = "0302720aecfda451" if SDXL else "2e71b10a025e2dae"  # lib/io/modelid.c of the model directory
TIMESTEPS = [951, 751, 501, 301, 101, 1]   # on the 20-step leading schedule

torch.manual_seed(0)
torch.use_deterministic_algorithms(True)
unet = UNet2DConditionModel.from_pretrained(os.path.join(REPO, "tests/fixtures/tiny-sdxl/unet") if SDXL
                                            else os.path.join(MODEL, "unet")).float()
unet.requires_grad_(False)
sched = DDIMScheduler.from_pretrained(os.path.join(MODEL, "scheduler"))
sched.set_timesteps(20)
ac = sched.alphas_cumprod


def logprob(eps, t, x, prev):
    """DDIM step log-probability of prev given x at t (mean over elements)."""
    pt = max(t - 1000 // 20, 0)
    a, ap = ac[t], ac[pt]
    x0 = (x - (1 - a) ** 0.5 * eps) / a ** 0.5
    var = (1 - ap) / (1 - a) * (1 - a / ap)
    sd = ETA * var ** 0.5
    mu = ap ** 0.5 * x0 + (1 - ap - sd ** 2) ** 0.5 * eps
    lp = -((prev.detach() - mu) ** 2) / (2 * sd ** 2) - torch.log(sd) - math.log(math.sqrt(2 * math.pi))
    return lp.mean(dim=tuple(range(1, lp.ndim))), mu, sd


def guided(model, x, t, unc, cond):
    kw = {}
    if SDXL:
        n = x.shape[0]
        kw["added_cond_kwargs"] = {"text_embeds": torch.cat([upooled.expand(n, -1), pooled]),
                                   "time_ids": TIME_IDS.repeat(2 * n, 1)}
    out = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([unc, cond]), **kw).sample
    u, c = out.chunk(2)
    return u + G * (c - u)


n = len(TIMESTEPS)
L, D = 77, unet.config.cross_attention_dim
x = torch.randn(n, 4, 16, 16)
cond = torch.randn(n, L, D)
unc = torch.randn(1, L, D).expand(n, L, D).contiguous()
ts = torch.tensor(TIMESTEPS, dtype=torch.int64)
if SDXL:
    E = unet.config.projection_class_embeddings_input_dim - 6 * unet.config.addition_time_embed_dim
    pooled, upooled = torch.randn(n, E), torch.randn(1, E)
    TIME_IDS = torch.tensor([[32.0, 32.0, 0.0, 0.0, 32.0, 32.0]])

with torch.no_grad():
    eps_ref = guided(unet, x, ts, unc, cond)

unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian",
                            target_modules=["to_k", "to_q", "to_v", "to_out.0"]))
gen = torch.Generator().manual_seed(1)
lora = {}
for name, mod in unet.named_modules():
    if hasattr(mod, "lora_A") and "default" in mod.lora_A:
        A, B = mod.lora_A["default"].weight, mod.lora_B["default"].weight
        with torch.no_grad():
            A.copy_(torch.randn(A.shape, generator=gen) / 4)
            B.copy_(torch.randn(B.shape, generator=gen) * 0.05)
        lora[name] = (A, B)
params = [p for p in unet.parameters() if p.requires_grad]
assert len(params) == 2 * len(lora)

with torch.no_grad():
    eps_pol = guided(unet, x, ts, unc, cond)
win, lose = torch.empty_like(x), torch.empty_like(x)
for i, t in enumerate(TIMESTEPS):
    _, mr, sd = logprob(eps_ref[i:i + 1], t, x[i:i + 1], x[i:i + 1])
    _, mp, _ = logprob(eps_pol[i:i + 1], t, x[i:i + 1], x[i:i + 1])
    win[i] = (mr + sd * torch.randn(1, 4, 16, 16))[0]
    lose[i] = (mr + sd * torch.randn(1, 4, 16, 16))[0]
    if i % 2 == 0:  # towards the policy: a ratio above the band
        win[i] += (mp - mr)[0] * 3

# the official loss: one policy pass per child (train_spo.py)
unet.train()

e0 = guided(unet, x, ts, unc, cond)
e1 = guided(unet, x, ts, unc, cond)
with torch.no_grad():
    r0 = eps_ref
lps = []
for e, prev in ((e0, win), (e1, lose)):
    pol = torch.stack([logprob(e[i:i + 1], t, x[i:i + 1], prev[i:i + 1])[0][0] for i, t in enumerate(TIMESTEPS)])
    ref = torch.stack([logprob(r0[i:i + 1], t, x[i:i + 1], prev[i:i + 1])[0][0] for i, t in enumerate(TIMESTEPS)])
    lps.append((pol, ref))
ratio_0 = torch.clamp(torch.exp(lps[0][0] - lps[0][1]), 1 - CLIP, 1 + CLIP)
ratio_1 = torch.clamp(torch.exp(lps[1][0] - lps[1][1]), 1 - CLIP, 1 + CLIP)
loss = -torch.log(torch.sigmoid(BETA * torch.log(ratio_0) - BETA * torch.log(ratio_1))).mean()
loss.backward()
raw0 = torch.exp(lps[0][0] - lps[0][1]).detach()
raw1 = torch.exp(lps[1][0] - lps[1][1]).detach()
cw = int(((raw0 < 1 - CLIP) | (raw0 > 1 + CLIP)).sum())
cl = int(((raw1 < 1 - CLIP) | (raw1 > 1 + CLIP)).sum())
print("loss", loss.item(), "ratios win", raw0.tolist(), "lose", raw1.tolist(), "clamped", cw, cl)
assert 0 < cw + cl < 2 * n, "want both clamped and unclamped ratios"

grads = {k: (A.grad.clone(), B.grad.clone()) for k, (A, B) in lora.items()}
before = {k: (A.detach().clone(), B.detach().clone()) for k, (A, B) in lora.items()}
norm = torch.nn.utils.clip_grad_norm_(params, MAX_NORM)
opt = torch.optim.AdamW(params, lr=6e-5, betas=(0.9, 0.999), weight_decay=1e-4, eps=1e-8)
# a run in progress: step ADAM_STEP done, seeded moments (a first step from
# zero moments would not show the clipping: Adam's first update is
# sign-like, whatever the gradient's scale)
moments = {}
for k, (A, B) in lora.items():
    mv = []
    for p in (A, B):
        m0 = torch.randn(p.shape, generator=gen) * 1e-3
        v0 = (torch.rand(p.shape, generator=gen) + 0.5) * 1e-5
        opt.state[p] = {"step": torch.tensor(float(ADAM_STEP)), "exp_avg": m0.clone(), "exp_avg_sq": v0.clone()}
        mv.append((m0, v0))
    moments[k] = mv
opt.step()

os.makedirs(OUT, exist_ok=True)


def write_pairs(name, rows, guidance):
    with h5py.File(os.path.join(OUT, name), "w") as f:
        f.attrs["spo_schema"] = "pairs/2" if SDXL else "pairs/1"
        f.attrs["model_id"] = MODEL_ID
        f.attrs["num_steps"] = np.int64(20)
        f.attrs["guidance"] = guidance
        f.attrs["eta"] = ETA
        f["key"] = np.array([[0, i, i, 0] for i in range(n)], dtype=np.int64).reshape(n, 4)[rows]
        f["parent"] = x.numpy()[rows]
        f["timestep"] = ts.numpy().astype(np.int32)[rows]
        f["win"] = win.numpy()[rows]
        f["lose"] = lose.numpy()[rows]
        f["score_win"] = np.ones(n, np.float32)[rows]
        f["score_lose"] = np.zeros(n, np.float32)[rows]
        f["cond"] = cond.numpy()[rows]
        f["uncond"] = unc[:1].numpy()
        if SDXL:  # pairs/2: a table by prompt id (each pair its own prompt i)
            f["prompt_id"] = np.arange(n, dtype=np.int64)[rows]
            f["pooled"] = pooled.numpy()[rows]
            f["uncond_pooled"] = upooled.numpy()


write_pairs("pairs.h5", slice(0, n), G)
if not SDXL:
    write_pairs("pairs_g3.h5", slice(0, 2), 3.0)   # sampled with another guidance
    write_pairs("pairs_empty.h5", slice(0, 0), G)   # no pairs
with h5py.File(os.path.join(OUT, "step.h5"), "w") as f:
    for k in lora:
        f[f"lora/{k}/down"], f[f"lora/{k}/up"] = before[k][0].numpy(), before[k][1].numpy()
        f[f"grad/{k}/down"], f[f"grad/{k}/up"] = grads[k][0].numpy(), grads[k][1].numpy()
        if SDXL:  # the optimizer step is the same code as SD's: not again (fixture size)
            continue
        f[f"m0/{k}/down"], f[f"v0/{k}/down"] = moments[k][0][0].numpy(), moments[k][0][1].numpy()
        f[f"m0/{k}/up"], f[f"v0/{k}/up"] = moments[k][1][0].numpy(), moments[k][1][1].numpy()
        f[f"after/{k}/down"] = lora[k][0].detach().numpy()
        f[f"after/{k}/up"] = lora[k][1].detach().numpy()
    f.attrs["loss"] = loss.item()
    f.attrs["ratio_win"] = ratio_0.mean().item()
    f.attrs["ratio_lose"] = ratio_1.mean().item()
    f.attrs["clamped_win"], f.attrs["clamped_lose"] = cw, cl
    f.attrs["grad_norm"] = norm.item()
    f.attrs["max_grad_norm"], f.attrs["adam_step"] = MAX_NORM, ADAM_STEP
    f.attrs["versions"] = f"torch {torch.__version__}, diffusers {diffusers.__version__}, peft {peft.__version__}"
print("wrote", OUT)
