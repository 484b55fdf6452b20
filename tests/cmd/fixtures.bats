#!/usr/bin/env bats
# Stale fixtures: a reference fixture records the sha256 of the weight files
# it was computed from (root attributes sha256_*, written by
# tests/reference/tiny_sd_fixtures.py, spm_reference.py and tiny_sdxl_unet.py). When a weight
# file changes and the fixture is not regenerated, the parity tests compare
# against numbers from other weights: this names the stale fixture.
# Also the test helpers' own contract: spo-pnginfo tells "differs" (exit 1)
# from "cannot read" (exit 2), so `run -1` checks fail on unreadable files.

load helpers

# fixture (under tests/fixtures), attribute, weight file it names
SUMS="
tiny_sd_parity.h5 sha256_unet tiny-sd/unet/diffusion_pytorch_model.safetensors
tiny_sd_parity.h5 sha256_unet_fp16 tiny-sd-fp16/unet/diffusion_pytorch_model.safetensors
tiny_sd_parity.h5 sha256_vae tiny-sd/vae/diffusion_pytorch_model.safetensors
tiny_sd_parity.h5 sha256_vae_legacy tiny-vae-legacy/diffusion_pytorch_model.safetensors
tiny_sd_parity.h5 sha256_text_encoder tiny-sd/text_encoder/model.safetensors
spm_parity.h5 sha256_spm_bin tiny-spm/spm.bin
spm_parity.h5 sha256_clip tiny-spm/clip/model.safetensors
tiny-sdxl/unet_parity.h5 sha256_unet tiny-sdxl/unet/diffusion_pytorch_model.safetensors
tiny_sdxl_text.h5 sha256_text_encoder tiny-sdxl/text_encoder/model.safetensors
tiny_sdxl_text.h5 sha256_text_encoder_2 tiny-sdxl/text_encoder_2/model.safetensors
"

# check DIR FIXTURE ATTR WEIGHTS: the recorded sum equals the file's
check() {
    local want got
    want=$(attr "$1/$2" "$3")
    got=$(sha256sum < "$1/$4" | cut -d' ' -f1)
    [ -n "$want" ] || { echo "$2: no attribute $3"; return 1; }
    [ "$want" = "$got" ] || { echo "$2 is stale: $3 is $want but $4 is $got (rerun its tests/reference script)"; return 1; }
}

@test "every fixture's recorded weight sha256 matches the weight file" {
    local bad=0
    while read -r fx at w; do
        [ -n "$fx" ] || continue
        check "$FIX" "$fx" "$at" "$w" || bad=1
    done <<< "$SUMS"
    [ "$bad" -eq 0 ]
}

@test "every sha256_* attribute of a fixture is checked" {
    local f a
    for f in $(cd "$FIX" && find . -name '*.h5' | sed 's|^\./||'); do
        for a in $(h5dump -A -H "$FIX/$f" | sed -n 's/^ *ATTRIBUTE "\(sha256_[^"]*\)".*/\1/p'); do
            grep -q "^$f $a " <<< "$SUMS" || { echo "$f: $a is not checked here"; false; }
        done
    done
}

@test "a changed weight file is reported, naming the fixture" {
    mkdir -p fx/tiny-spm
    cp "$FIX/spm_parity.h5" fx/
    printf 'not the weights' > fx/tiny-spm/spm.bin
    run check fx spm_parity.h5 sha256_spm_bin tiny-spm/spm.bin
    [ "$status" -eq 1 ]
    [[ "$output" == "spm_parity.h5 is stale: sha256_spm_bin is 575d0f03"* ]]
}

@test "spo-pnginfo: 0 equal, 1 differs or no such key, 2 cannot read" {
    "$BIN/spo-decode" -q -m "$FIX/tiny-sd" "$FIX/score/pool.h5" -o out
    printf 'not a png' > bad.png
    run -0 "$HELP/spo-pnginfo" --cell out/p10_k0.png 0 0 0 out/p10_k0.png
    run -1 "$HELP/spo-pnginfo" --cell out/p10_k0.png 0 0 0 out/p10_k1.png
    run -2 "$HELP/spo-pnginfo" --cell out/p10_k0.png 0 0 0 missing.png
    run -2 "$HELP/spo-pnginfo" --cell bad.png 0 0 0 out/p10_k0.png
    run -1 "$HELP/spo-pnginfo" out/p10_k0.png no-such-key
    run -2 "$HELP/spo-pnginfo" bad.png prompt
    run -2 "$HELP/spo-pnginfo" missing.png
    run -2 "$HELP/spo-pnginfo" --pixels bad.png x.h5 /p 0 0
}
