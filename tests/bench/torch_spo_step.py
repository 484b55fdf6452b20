#!/usr/bin/env python3
"""torch_spo_step.py — the PyTorch peer for spo-step-update: one optimizer
step of the official SPO recipe (RockeyCoss/SPO,
spo_training_and_inference/train_scripts/train_spo.py, SD v1.5 config) on
the CPU in fp32.

What one step is, as the official script does it:
  * the policy is the UNet with a peft LoRA (LoraConfig(r=4, lora_alpha=4,
    init_lora_weights="gaussian", target_modules=[to_k, to_q, to_v,
    to_out.0]); unet.add_adapter), the reference a deepcopy of the UNet made
    before the adapter, requires_grad off;
  * pairs come in micro-batches of 10 (train_batch_size 10 per GPU; the
    official run has 4 GPUs, so one optimizer step averages 40 pairs: here
    the 4 micro-batches run one after the other and their gradients
    accumulate, loss / 4 each, which is the same update);
  * per micro-batch, with classifier-free guidance (train.cfg: the negative
    embedding concatenated to the prompts, latents and timesteps doubled):
    policy pass for the winner, reference pass for the winner, policy pass
    for the loser, reference pass for the loser (the winner and loser share
    x_t, yet the script runs the UNet for each: 2 policy + 2 reference
    passes per pair; --ref-passes 1 runs one reference pass);
    guided eps = eps_u + 5 (eps_c - eps_u); the DDIM log-probability of
    x_win / x_lose given x_t (eta 1, mean over elements; the official
    ddim_step_with_logprob's formula, written here from its maths);
    ratio = clamp(exp(logp - logp_ref), 0.9, 1.1); loss = -log sigmoid(10
    log r_w - 10 log r_l), mean; backward;
  * then clip_grad_norm_(LoRA params, 1.0), AdamW(lr 6e-5, betas (0.9,
    0.999), weight_decay 1e-4, eps 1e-8) step, zero_grad.

Configs (the UNet benchmark's, tests/bench/torch_unet_bench.py):
  tiny  tests/fixtures/tiny-sd/unet/config.json, 16x16 latents, context
        [77, 32]
  mid   tests/bench/mid_unet_config.json, 32x32 latents, context [77, 768]
Weights and pairs are random (seeded); the time does not depend on them
(clamped ratios still run the whole backward). Prints one JSON line per
config with the median and minimum of --runs timed steps after --warmup
(default 1) untimed steps:

  {"impl": "torch", "config": "tiny", "pass": "step40", "ms": ..., "min_ms": ...}

Usage: torch_spo_step.py [--threads N] [--runs R] [--warmup W] [--configs tiny,mid]
                         [--pairs 40] [--micro 10] [--ref-passes 2]
       torch_spo_step.py --write-model DIR --config mid
           (a model folder for spo: tiny-sd's parts with the config's UNet
           in random weights, as run_step_bench.sh needs for mid)
"""
import argparse
import copy
import json
import math
import os
import shutil
import statistics
import time

import torch
from diffusers import DDIMScheduler, UNet2DConditionModel
from peft import LoraConfig

HERE = os.path.dirname(os.path.abspath(__file__))
TINY_SD = os.path.join(HERE, "..", "fixtures", "tiny-sd")
CONFIGS = {"tiny": (os.path.join(TINY_SD, "unet", "config.json"), 16),
           "mid": (os.path.join(HERE, "mid_unet_config.json"), 32)}
CTX_LEN = 77
GUIDANCE, ETA, CLIP_EPS, BETA = 5.0, 1.0, 0.1, 10.0


def make_unet(name, seed=0):
    with open(CONFIGS[name][0]) as f:
        cfg = json.load(f)
    torch.manual_seed(seed)
    return UNet2DConditionModel.from_config(cfg), cfg


def write_model(out, name):
    """tiny-sd's folder with the UNet replaced by name's config, random weights"""
    if os.path.exists(out):
        shutil.rmtree(out)
    shutil.copytree(TINY_SD, out)
    shutil.rmtree(os.path.join(out, "unet"))
    unet, _ = make_unet(name)
    unet.save_pretrained(os.path.join(out, "unet"), safe_serialization=True)


def ddim_logprob(sched, eps, t, x_t, x_prev):
    """log N(x_prev; mu(x_t, eps), sigma^2), mean over each sample's elements"""
    step = sched.config.num_train_timesteps // sched.num_inference_steps
    prev_t = torch.clamp(t - step, 0, sched.config.num_train_timesteps - 1)
    ac = sched.alphas_cumprod
    a_t = ac[t].view(-1, 1, 1, 1)
    a_p = torch.where(prev_t >= 0, ac[prev_t], sched.final_alpha_cumprod).view(-1, 1, 1, 1)
    x0 = (x_t - (1 - a_t).sqrt() * eps) / a_t.sqrt()
    var = (1 - a_p) / (1 - a_t) * (1 - a_t / a_p)
    sigma = ETA * var.sqrt()
    mu = a_p.sqrt() * x0 + (1 - a_p - sigma ** 2).sqrt() * eps
    lp = -((x_prev.detach() - mu) ** 2) / (2 * sigma ** 2) - torch.log(sigma) - math.log(math.sqrt(2 * math.pi))
    return lp.mean(dim=(1, 2, 3))


def guided(model, x, t, emb):
    e = model(torch.cat([x, x]), torch.cat([t, t]), emb).sample
    u, c = e.chunk(2)
    return u + GUIDANCE * (c - u)


def bench(name, a):
    unet, cfg = make_unet(name)
    side = CONFIGS[name][1]
    unet.requires_grad_(False)
    ref = copy.deepcopy(unet)
    ref.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian",
                                target_modules=["to_k", "to_q", "to_v", "to_out.0"]))
    params = [p for p in unet.parameters() if p.requires_grad]
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # B != 0, as after some training
        for n, p in unet.named_parameters():
            if "lora_B" in n:
                p.copy_(0.01 * torch.randn(p.shape, generator=g))
    opt = torch.optim.AdamW(params, lr=6e-5, betas=(0.9, 0.999), weight_decay=1e-4, eps=1e-8)
    sched = DDIMScheduler.from_pretrained(os.path.join(TINY_SD, "scheduler"))
    sched.set_timesteps(20)
    n, C, D = a.pairs, cfg["in_channels"], cfg["cross_attention_dim"]
    lat = torch.randn(n, C, side, side, generator=g)
    ts = sched.timesteps[torch.randint(4, 20, (n,), generator=g)]
    nxt = torch.randn(n, 2, C, side, side, generator=g) * 0.3 + 0.9 * lat[:, None]
    cond = torch.randn(n, CTX_LEN, D, generator=g)
    neg = torch.randn(1, CTX_LEN, D, generator=g)
    nmicro = (n + a.micro - 1) // a.micro
    unet.train()

    def step():
        for i in range(nmicro):
            s = slice(i * a.micro, min(n, (i + 1) * a.micro))
            x, t = lat[s], ts[s]
            emb = torch.cat([neg.repeat(x.shape[0], 1, 1), cond[s]])
            lp, lr = [], []
            for k in range(2):
                lp.append(ddim_logprob(sched, guided(unet, x, t, emb), t, x, nxt[s, k]))
                if k < a.ref_passes:
                    eps_ref = guided(ref, x, t, emb)
                lr.append(ddim_logprob(sched, eps_ref, t, x, nxt[s, k]))
            r_w = torch.clamp(torch.exp(lp[0] - lr[0]), 1 - CLIP_EPS, 1 + CLIP_EPS)
            r_l = torch.clamp(torch.exp(lp[1] - lr[1]), 1 - CLIP_EPS, 1 + CLIP_EPS)
            loss = -torch.log(torch.sigmoid(BETA * torch.log(r_w) - BETA * torch.log(r_l))).mean()
            (loss / nmicro).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad()

    for _ in range(a.warmup):
        step()
    ms = []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        step()
        ms.append((time.perf_counter() - t0) * 1e3)
    print(json.dumps({"impl": "torch", "config": name, "pass": f"step{n}", "ms": round(statistics.median(ms), 1),
                      "min_ms": round(min(ms), 1), "runs": a.runs, "warmup": a.warmup, "threads": a.threads, "pairs": n,
                      "micro": a.micro, "policy_passes": 2, "ref_passes": a.ref_passes, "latent": side,
                      "lora_params": sum(p.numel() for p in params), "torch": str(torch.__version__)}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--configs", default="tiny,mid")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--micro", type=int, default=10)
    ap.add_argument("--ref-passes", type=int, choices=(1, 2), default=2)
    ap.add_argument("--write-model", metavar="DIR")
    ap.add_argument("--config", default="mid")
    a = ap.parse_args()
    if a.write_model:
        write_model(a.write_model, a.config)
        return
    torch.set_num_threads(a.threads)
    for name in a.configs.split(","):
        bench(name, a)


if __name__ == "__main__":
    main()
