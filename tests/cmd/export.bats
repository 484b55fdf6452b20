#!/usr/bin/env bats
# spo-export: a diffusers LoRA (tests/fixtures/export, written by diffusers
# 0.26.1 as the official SPO recipe saves it; tests/reference/export_fixture.py)
# into lora/1 and back to the same bytes; peft-named keys read the same;
# kohya and back; the merged unet/ folder (f32, f16); bad inputs exit 2 with
# one line naming the file and leave nothing behind. The UNet outputs are
# compared with diffusers' in tests/unit/test_lora_export.c.

load helpers
OUTPUTS="out out.h5 out.safetensors"
NO_STDOUT=1

setup_file() {
    export M="$FIX/tiny-sd"
    export X="$FIX/export"
    export D="$X/pytorch_lora_weights.safetensors"
}

# spo-export ARGS... fails as expect_fail (helpers) checks, naming FILE
export_fails() {
    local want=$1 file=$2
    shift 2
    expect_fail "$want" "$BIN/spo-export" "$@"
    [[ "$stderr" == *"$file"* ]]
}

@test "diffusers -> lora/1 -> diffusers gives the same bytes" {
    "$BIN/spo-export" -F lora -m "$M" --lora "$D" -o l.h5
    "$BIN/spo-inspect" --check l.h5
    [ "$(h5dump -a /rank l.h5 | grep -c '(0): 4')" -eq 1 ]
    [ "$(h5ls -r l.h5 | grep -c '/up ')" -eq 32 ]
    "$BIN/spo-export" --lora l.h5 -o d.safetensors
    cmp d.safetensors "$D"
}

@test "the lora/1 file carries the model id and starts at step 0" {
    "$BIN/spo-export" -F lora -m "$M" --lora "$D" -o l.h5
    "$BIN/spo-init" -m "$M" --lora-out fresh.h5
    h5dump -a /step l.h5 | grep -q '(0): 0'
    # same modules, in the same order, as a fresh LoRA of this model
    diff <(h5dump -d /modules l.h5 | grep '(') <(h5dump -d /modules fresh.h5 | grep '(')
    id=$(h5dump -a /model_id l.h5 | grep '(0)')
    [[ "$id" == *'"'?*'"'* ]]
}

@test "peft-named keys (lora_A / lora_B) read as the same LoRA" {
    "$BIN/spo-export" -F lora -m "$M" --lora "$D" -o a.h5
    "$BIN/spo-export" -F lora -m "$M" --lora "$X/peft_keys.safetensors" -o b.h5
    h5diff a.h5 b.h5 /lora /lora
}

@test "kohya round trip: lora/1 -> kohya -> lora/1" {
    "$BIN/spo-export" -F lora -m "$M" --lora "$D" -o l.h5
    "$BIN/spo-export" -F kohya --lora l.h5 -o k.safetensors
    "$BIN/spo-convert" --list k.safetensors > keys
    [ "$(grep -c '^lora_unet_' keys)" -eq 96 ]
    [ "$(grep -vc '^lora_unet_' keys)" -eq 0 ]
    grep -q '^lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0.alpha	F32	\[\]$' keys
    "$BIN/spo-export" -F lora -m "$M" --lora k.safetensors -o back.h5
    h5diff l.h5 back.h5 /lora /lora
    # a kohya file needs the model for the module names
    export_fails 2 k.safetensors --lora k.safetensors -o out.safetensors
}

@test "SDXL kohya: SDXL's original UNet names (input_blocks, middle_block, output_blocks), read back the same" {
    tiny_sdxl xl
    "$BIN/spo-export" -m xl -F lora --lora "$X/sdxl_diffusers.safetensors" -o l.h5
    "$BIN/spo-export" -m xl -F kohya --lora l.h5 -o k.safetensors
    cmp k.safetensors "$X/sdxl_kohya.safetensors"
    run "$BIN/spo-convert" --list k.safetensors
    blocks=$(printf '%s\n' "$output" | cut -f1 | sed -E 's/^lora_unet_(.*_1)_transformer_blocks.*/\1/' | sort -u | tr '\n' ' ')
    [ "$blocks" = "input_blocks_4_1 input_blocks_5_1 input_blocks_7_1 input_blocks_8_1 middle_block_1 output_blocks_0_1 output_blocks_1_1 output_blocks_2_1 output_blocks_3_1 output_blocks_4_1 output_blocks_5_1 " ]
    "$BIN/spo-export" -m xl -F lora --lora k.safetensors -o back.h5 -f
    "$BIN/spo-export" -m xl --lora back.h5 -o d.safetensors
    cmp d.safetensors "$X/sdxl_diffusers.safetensors"
}

@test "merged unet/ folder in f32 and f16" {
    "$BIN/spo-export" -F unet -m "$M" --lora "$D" -o unet
    [ -f unet/config.json ] && [ -f unet/diffusion_pytorch_model.safetensors ]
    cmp unet/config.json "$M/unet/config.json"
    "$BIN/spo-convert" --list unet/diffusion_pytorch_model.safetensors > a
    "$BIN/spo-convert" --list "$M/unet/diffusion_pytorch_model.safetensors" > b
    diff a b
    ! cmp -s unet/diffusion_pytorch_model.safetensors "$M/unet/diffusion_pytorch_model.safetensors"
    export_fails 2 unet -F unet -m "$M" --lora "$D" -o unet
    "$BIN/spo-export" -F unet -m "$M" --dtype f16 --lora "$D" -o unet/ -f
    "$BIN/spo-convert" --list unet/diffusion_pytorch_model.safetensors | grep -v '	F16	' | { ! grep .; }
    [ -z "$(ls -a | grep -E '\.(tmp|old)\.')" ]
}

@test "bad inputs exit 2 naming the file" {
    export_fails 2 bad_missing_up.safetensors -F lora -m "$M" --lora "$X/bad_missing_up.safetensors" -o out.h5
    export_fails 2 bad_missing_module.safetensors -F lora -m "$M" --lora "$X/bad_missing_module.safetensors" -o out.h5
    export_fails 2 bad_shape.safetensors -F lora -m "$M" --lora "$X/bad_shape.safetensors" -o out.h5
    export_fails 2 bad_shape.safetensors -F kohya -m "$M" --lora "$X/bad_shape.safetensors" -o out.safetensors
    export_fails 2 not_lora.safetensors -F lora -m "$M" --lora "$X/not_lora.safetensors" -o out.h5
    export_fails 2 lora_te.safetensors -m "$M" --lora "$FIX/generate/lora_te.safetensors" -o out.safetensors
    export_fails 2 pytorch_lora_weights.safetensors --lora "$D" -o out.safetensors
    export_fails 2 "$M/unet/config.json" -F unet -m "$M" --lora "$M/unet/config.json" -o out
    export_fails 2 "needs -m" -F unet --lora "$D" -o out
    export_fails 2 "--format" -F onnx --lora "$D" -o out.safetensors
    export_fails 2 "--lora" -o out.safetensors
}

@test "a LoRA of another model is refused; an existing output needs -f" {
    "$BIN/spo-export" -F lora -m "$M" --lora "$D" -o l.h5
    "$BIN/spo-mkmodel" --no-spm --seed 5 -o m2
    export_fails 2 "l.h5: the LoRA is for model" -F unet -m m2 --lora l.h5 -o out
    touch out.safetensors
    run --separate-stderr "$BIN/spo-export" --lora l.h5 -o out.safetensors
    [ "$status" -eq 2 ] && [[ "$stderr" == *out.safetensors*exists* ]]
    [ ! -s out.safetensors ]
    "$BIN/spo-export" --lora l.h5 -o out.safetensors -f
    cmp out.safetensors "$D"
}
