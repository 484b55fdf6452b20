#!/usr/bin/env python3
"""tiny_sdxl_text.py — the text side of a tiny SDXL model and its reference.

Writes, with a fixed seed (all under tests/fixtures/ by default):

  tiny-sdxl/model_index.json   StableDiffusionXLPipeline's (save_config of
                               the pipeline below; force_zeros_for_empty_prompt
                               true, as SDXL base's)
  tiny-sdxl/text_encoder/      CLIPTextModel: width 32, 2 layers, 4 heads,
                               quick_gelu, eos_token_id 2 (SDXL's config value:
                               transformers pools at the argmax of the ids)
  tiny-sdxl/text_encoder_2/    CLIPTextModelWithProjection: width 32, 3 layers,
                               2 heads, intermediate 80, exact-erf gelu,
                               projection_dim 32 (text_projection, no bias),
                               eos_token_id 2
  tiny-sdxl/tokenizer/         byte-level CLIP tokenizer (tiny-sd's vocab.json
                               and merges.txt), padding with <|endoftext|>
  tiny-sdxl/tokenizer_2/       the same vocabulary padding with "!" (id 0), as
                               SDXL's tokenizer_2 does (its pad_token "!" is an
                               added token: a "!" in a prompt is id 0 too)
  tiny_sdxl_text.h5            the reference, float32 on the CPU:
    /prompts [P] utf-8
    /ids, /ids_2 [P,77] int64      tokenizer / tokenizer_2 (max_length,
                                   truncation), as encode_prompt calls them
    /hidden_1 [P,77,32]            text_encoder hidden_states[-2]
    /hidden_2 [P,77,32]            text_encoder_2 hidden_states[-2]
    /last_2 [P,77,32]              text_encoder_2 last_hidden_state
    /prompt_embeds [P,77,64]       encode_prompt: cat(hidden_1, hidden_2, -1)
    /pooled [P,32]                 encode_prompt: text_encoder_2 text_embeds
    /neg/zeros/prompt_embeds [1,77,64], /neg/zeros/pooled [1,32]
        the official SPO script's negative: pipeline.encode_prompt(prompt="",
        do_classifier_free_guidance=True) outputs 1 and 3 with
        force_zeros_for_empty_prompt true (all zeros)
    /neg/empty/prompt_embeds, /neg/empty/pooled
        the same call with force_zeros_for_empty_prompt false (the empty
        prompt through both encoders)
    /time_ids/in [T,6] int64       (orig_h, orig_w, crop_top, crop_left,
                                   target_h, target_w)
    /time_ids/out [T,6] float32    pipeline._get_add_time_ids of each row
    /time_ids/default [1,6]        what the official multi_sample_pipeline_sdxl
                                   builds with no sizes given (height = width =
                                   unet sample_size * vae_scale_factor)
    root attributes: versions, sha256_text_encoder, sha256_text_encoder_2,
    addition_time_embed_dim, projection_class_embeddings_input_dim of the
    throwaway UNet used for _get_add_time_ids (not saved; tiny-sdxl/unet is
    another script's)

Run:  /path/to/venv/bin/python tests/reference/tiny_sdxl_text.py [FIXDIR]
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

import diffusers
import transformers
from diffusers import (AutoencoderKL, DDIMScheduler, StableDiffusionXLPipeline,
                       UNet2DConditionModel)
from transformers import (CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection,
                          CLIPTokenizer)

SEED = 20261207

TEXT_CONFIG = dict(
    vocab_size=514, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
    num_attention_heads=4, max_position_embeddings=77, hidden_act="quick_gelu",
    bos_token_id=0, eos_token_id=2, pad_token_id=1, projection_dim=32,
)
TEXT_CONFIG_2 = dict(
    vocab_size=514, hidden_size=32, intermediate_size=80, num_hidden_layers=3,
    num_attention_heads=2, max_position_embeddings=77, hidden_act="gelu",
    bos_token_id=0, eos_token_id=2, pad_token_id=1, projection_dim=32,
)
# Only for _get_add_time_ids (its dimension check): text_time with 8
# frequencies per id and the pooled width 32; never saved.
UNET_CONFIG = dict(
    sample_size=16, in_channels=4, out_channels=4, block_out_channels=(32, 64),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), layers_per_block=1,
    cross_attention_dim=64, attention_head_dim=2, norm_num_groups=8,
    addition_embed_type="text_time", addition_time_embed_dim=8,
    projection_class_embeddings_input_dim=6 * 8 + 32, use_linear_projection=True,
)
VAE_CONFIG = dict(
    in_channels=3, out_channels=3, block_out_channels=(32, 64),
    down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
    latent_channels=4, layers_per_block=1, norm_num_groups=8, sample_size=32,
)

PROMPTS = [
    "a photo of a Cat, sitting on 2 mats!",
    "wow!! a bright ! sky",
    "",
    "  Café   au lait's\tfoam  ",
    "an extremely long prompt that goes on and on, far past the seventy-five "
    "tokens a CLIP text encoder can take, so it must be truncated",
]

# (orig_h, orig_w, crop_top, crop_left, target_h, target_w)
TIME_IDS = [
    (1024, 1024, 0, 0, 1024, 1024),
    (768, 1344, 16, 48, 512, 896),
    (32, 48, 0, 0, 32, 48),
]


def randomize(module, gen):
    """Every parameter non-trivial: matrices N(0, 1/fan_in), embeddings
    N(0, 1), norm weights 1 + N(0, 0.1), biases N(0, 0.1) (as tiny_sd.py)."""
    with torch.no_grad():
        for _, mod in module.named_modules():
            for pname, p in mod.named_parameters(recurse=False):
                if isinstance(mod, torch.nn.LayerNorm):
                    p.copy_((1 if pname == "weight" else 0) + 0.1 * torch.randn(p.shape, generator=gen))
                elif isinstance(mod, torch.nn.Embedding):
                    p.copy_(torch.randn(p.shape, generator=gen))
                elif pname == "bias" or p.dim() == 1:
                    p.copy_(0.1 * torch.randn(p.shape, generator=gen))
                else:
                    p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p[0].numel()))


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    fix = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
    tokfiles = os.path.join(fix, "tiny-sd", "tokenizer")
    out = os.path.join(fix, "tiny-sdxl")
    os.makedirs(out, exist_ok=True)
    for sub in ("text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2"):
        shutil.rmtree(os.path.join(out, sub), ignore_errors=True)

    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    te1 = CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG))
    te2 = CLIPTextModelWithProjection(CLIPTextConfig(**TEXT_CONFIG_2))
    unet = UNet2DConditionModel(**UNET_CONFIG)
    vae = AutoencoderKL(**VAE_CONFIG)
    for m in (te1, te2, unet, vae):
        randomize(m, gen)
        m.eval()
    vocab, merges = os.path.join(tokfiles, "vocab.json"), os.path.join(tokfiles, "merges.txt")
    tok1 = CLIPTokenizer(vocab, merges, model_max_length=77, pad_token="<|endoftext|>")
    tok2 = CLIPTokenizer(vocab, merges, model_max_length=77, pad_token="!")

    te1.save_pretrained(os.path.join(out, "text_encoder"))
    te2.save_pretrained(os.path.join(out, "text_encoder_2"))
    tok1.save_pretrained(os.path.join(out, "tokenizer"))
    tok2.save_pretrained(os.path.join(out, "tokenizer_2"))

    def pipeline(force_zeros):
        return StableDiffusionXLPipeline(
            vae=vae, text_encoder=te1, text_encoder_2=te2, tokenizer=tok1, tokenizer_2=tok2,
            unet=unet, scheduler=DDIMScheduler(), force_zeros_for_empty_prompt=force_zeros)

    pipe = pipeline(True)
    pipe.save_config(out)  # model_index.json only
    # reload what was written: the reference comes from the files
    te1 = CLIPTextModel.from_pretrained(os.path.join(out, "text_encoder")).eval()
    te2 = CLIPTextModelWithProjection.from_pretrained(os.path.join(out, "text_encoder_2")).eval()
    tok1 = CLIPTokenizer.from_pretrained(os.path.join(out, "tokenizer"))
    tok2 = CLIPTokenizer.from_pretrained(os.path.join(out, "tokenizer_2"))
    assert tok2.pad_token_id == 0 and tok2("x!")["input_ids"][2] == 0, "tokenizer_2: '!' is not the added pad token"
    pipe = pipeline(True)
    pipe_empty = pipeline(False)

    res = {}
    with torch.no_grad():
        kw = dict(padding="max_length", max_length=77, truncation=True, return_tensors="pt")
        ids1 = tok1(PROMPTS, **kw).input_ids
        ids2 = tok2(PROMPTS, **kw).input_ids
        o1 = te1(ids1, output_hidden_states=True)
        o2 = te2(ids2, output_hidden_states=True)
        pe, npe, pp, npp = pipe.encode_prompt(prompt=PROMPTS, device="cpu", num_images_per_prompt=1,
                                              do_classifier_free_guidance=True)
        cat = torch.cat([o1.hidden_states[-2], o2.hidden_states[-2]], dim=-1)
        assert torch.equal(pe, cat) and torch.equal(pp, o2.text_embeds)
        # the official SPO script's prompt path (train_spo_sdxl.py), the same numbers
        r = [te(i, output_hidden_states=True, return_dict=False) for te, i in ((te1, ids1), (te2, ids2))]
        assert torch.equal(torch.cat([r[0][-1][-2], r[1][-1][-2]], dim=-1), pe)
        assert torch.equal(r[1][0], pp)
        res["prompt_embeds"], res["pooled"] = pe, pp
        res["hidden_1"], res["hidden_2"] = o1.hidden_states[-2], o2.hidden_states[-2]
        res["last_2"] = o2.last_hidden_state
        res["ids"], res["ids_2"] = ids1, ids2
        # the official negative: encode_prompt(prompt="", cfg) outputs 1 and 3
        for name, p in (("zeros", pipe), ("empty", pipe_empty)):
            _, neg, _, negp = p.encode_prompt(prompt="", device="cpu", num_images_per_prompt=1,
                                              do_classifier_free_guidance=True)
            res[f"neg/{name}/prompt_embeds"], res[f"neg/{name}/pooled"] = neg, negp
        assert not res["neg/zeros/prompt_embeds"].any() and not res["neg/zeros/pooled"].any()
        # prompt 2 is "" (a batch of one rounds differently from a batch of 5)
        assert torch.allclose(res["neg/empty/prompt_embeds"], pe[2:3], rtol=0, atol=1e-5)
        assert torch.allclose(res["neg/empty/pooled"], pp[2:3], rtol=0, atol=1e-5)
        pdim = te2.config.projection_dim
        tids = [pipe._get_add_time_ids(t[0:2], t[2:4], t[4:6], dtype=torch.float32,
                                       text_encoder_projection_dim=pdim) for t in TIME_IDS]
        h = w = pipe.default_sample_size * pipe.vae_scale_factor
        tdef = pipe._get_add_time_ids((h, w), (0, 0), (h, w), dtype=torch.float32,
                                      text_encoder_projection_dim=pdim)

    path = os.path.join(fix, "tiny_sdxl_text.h5")
    with h5py.File(path, "w") as f:
        f.create_dataset("prompts", data=np.array(PROMPTS, dtype=h5py.string_dtype("utf-8")))
        for k, v in res.items():
            f.create_dataset(k, data=v.numpy())
        f.create_dataset("time_ids/in", data=np.array(TIME_IDS, dtype=np.int64))
        f.create_dataset("time_ids/out", data=torch.cat(tids).numpy())
        f.create_dataset("time_ids/default", data=tdef.numpy())
        f.attrs["torch"] = str(torch.__version__)
        f.attrs["diffusers"] = str(diffusers.__version__)
        f.attrs["transformers"] = str(transformers.__version__)
        f.attrs["seed"] = SEED
        f.attrs["addition_time_embed_dim"] = UNET_CONFIG["addition_time_embed_dim"]
        f.attrs["projection_class_embeddings_input_dim"] = UNET_CONFIG["projection_class_embeddings_input_dim"]
        f.attrs["default_size"] = h
        for sub in ("text_encoder", "text_encoder_2"):
            f.attrs["sha256_" + sub] = sha256(os.path.join(out, sub, "model.safetensors"))
    print("wrote", out, "and", path)
    for k in ("prompt_embeds", "pooled"):
        print(k, tuple(res[k].shape), "std %.3f" % res[k].std().item())
    print("ids_2 of prompt 1:", res["ids_2"][1, :12].tolist())


if __name__ == "__main__":
    main()
