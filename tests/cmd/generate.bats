#!/usr/bin/env bats
# spo-generate: text to PNGs with the tiny models — pixel parity with
# diffusers' StableDiffusionPipeline + DDIM (tests/fixtures/generate from
# tests/reference/generate_fixture.py) for the base model, 2 images per
# prompt with a negative prompt, and a LoRA in both file formats; folder,
# single PNG, tar file and tar stream outputs; the Philox x_T equals
# spo-init's, and with eta 1 the images equal the sampling loop's; bad
# inputs (exit 2, one line, nothing left behind). The float images are
# compared in tests/unit/test_generate.c.

load helpers
OUTPUTS="out out.png out.tar"
NO_STDOUT=1

setup_file() {
    export M="$FIX/tiny-sd"
    export G="$FIX/generate"
    export P1="a photo of a cat"
    export P2="A red car on a snowy road, at night"
}

# the PNG's pixels equal image $3 of $G/expected.h5's /$2/pixels, a few off by one
same_pixels() { "$HELP/spo-pnginfo" --pixels "$1" "$G/expected.h5" "/$2/pixels" "$3" 8; }


@test "folder: diffusers' pixels from the fixture's x_T, with prompt and parameters" {
    "$BIN/spo-generate" -q -m "$M" --steps 10 --latents "$G/x_T.h5" "$P1" "$P2" -o out
    [ "$(ls out | tr '\n' ' ')" = "p0_i0.png p1_i0.png " ]
    [ "$("$HELP/spo-pnginfo" out/p0_i0.png)" = 32x32 ]
    same_pixels out/p0_i0.png base 0
    same_pixels out/p1_i0.png base 1
    run ! same_pixels out/p1_i0.png base 0
    [ "$("$HELP/spo-pnginfo" out/p1_i0.png prompt)" = "$P2" ]
    run "$HELP/spo-pnginfo" out/p1_i0.png parameters
    [[ "$output" == "$P2"*"Steps: 10, Sampler: DDIM, CFG scale: 7.5, Eta: 0, Seed: 0, Size: 32x32"* ]]
    [[ "$output" == *"prompt id 1, image 0, x_T $G/x_T.h5" ]]
}

@test "SDXL: StableDiffusionXLPipeline's pixels (the zero negative, a negative prompt, no guidance)" {
    # tests/fixtures/generate/sdxl.h5 (tests/reference/generate_sdxl_fixture.py): the tiny SDXL model,
    # 20 DDIM steps, guidance 5 (and 1), x_T its /latents; pooled embeddings and time ids (16, 16, 0, 0, 16, 16)
    tiny_sdxl xl
    "$BIN/spo-generate" -q -m xl --steps 20 -g 5 --latents "$G/sdxl.h5" "$P1" "$P2" -o base
    "$BIN/spo-generate" -q -m xl --steps 20 -g 5 --negative "blurry, low quality" --latents "$G/sdxl.h5" "$P1" "$P2" \
        -o neg
    "$BIN/spo-generate" -q -m xl --steps 20 -g 1 --latents "$G/sdxl.h5" "$P1" "$P2" -o g1
    [ "$("$HELP/spo-pnginfo" base/p0_i0.png)" = 16x16 ]
    for c in base neg g1; do
        for i in 0 1; do "$HELP/spo-pnginfo" --pixels "$c/p${i}_i0.png" "$G/sdxl.h5" "/$c/pixels" $i 8; done
    done
    run ! "$HELP/spo-pnginfo" --pixels base/p0_i0.png "$G/sdxl.h5" /neg/pixels 0 8
}

@test "--vae DIR decodes with that VAE (the official SDXL recipe's fp16-fix is a directory of its own)" {
    tiny_sdxl xl
    rm xl/vae
    expect_fail 2 "$BIN/spo-generate" -m xl --steps 2 "$P1" -o out
    "$BIN/spo-generate" -q -m xl --vae "$FIX/tiny-sdxl/vae" --steps 20 -g 5 --latents "$G/sdxl.h5" "$P1" "$P2" -o base
    for i in 0 1; do "$HELP/spo-pnginfo" --pixels "base/p${i}_i0.png" "$G/sdxl.h5" /base/pixels $i 8; done
    tiny_sdxl xl2
    "$BIN/spo-init" -m xl2 -e "$FIX/sampling/sdxl_embeds.h5" --latent-size 8x8 -o s.h5
    "$BIN/spo-decode" -q -m xl --vae "$FIX/tiny-sdxl/vae" s.h5 -o d1
    "$BIN/spo-decode" -q -m xl2 s.h5 -o d2
    "$BIN/spo-decode" -q -m xl2 --vae "$FIX/tiny-sd/vae" s.h5 -o d3 # another scaling factor
    for f in d2/*.png; do cmp "$f" "d1/$(basename "$f")"; run ! cmp "$f" "d3/$(basename "$f")"; done
}

@test "SDXL: spo's exported LoRA (kohya names of SDXL's UNet, and diffusers) gives diffusers' pixels with it" {
    # generate/sdxl.h5 /lora_*: diffusers' load_lora_weights of tests/fixtures/export/sdxl_*.safetensors,
    # which spo-export wrote (-F kohya and -F diffusers) from one LoRA of the tiny SDXL model
    tiny_sdxl xl
    for k in kohya diffusers; do
        "$BIN/spo-generate" -q -m xl --lora "$FIX/export/sdxl_$k.safetensors" --steps 20 -g 5 --latents "$G/sdxl.h5" \
            "$P1" "$P2" -o "o_$k"
        for i in 0 1; do "$HELP/spo-pnginfo" --pixels "o_$k/p${i}_i0.png" "$G/sdxl.h5" "/lora_$k/pixels" $i 8; done
    done
    run ! "$HELP/spo-pnginfo" --pixels o_kohya/p0_i0.png "$G/sdxl.h5" /base/pixels 0 8
}

@test "two images per prompt and a negative prompt; prompts from a file" {
    printf '%s\n\n%s\n' "$P1" "$P2" > prompts.txt
    "$BIN/spo-generate" -q -m "$M" --steps 10 --images-per-prompt 2 -b 3 --negative "blurry, low quality" --latents "$G/x_T_n2.h5" \
        --prompts prompts.txt -o out
    [ "$(ls out | tr '\n' ' ')" = "p0_i0.png p0_i1.png p1_i0.png p1_i1.png " ]
    same_pixels out/p0_i0.png neg 0
    same_pixels out/p0_i1.png neg 1
    same_pixels out/p1_i0.png neg 2
    same_pixels out/p1_i1.png neg 3
    run "$HELP/spo-pnginfo" out/p0_i1.png parameters
    [[ "$output" == *"Negative prompt: blurry, low quality"* ]]
}

@test "LoRA as a lora/1 file and as diffusers' pytorch_lora_weights.safetensors" {
    for l in lora.h5 pytorch_lora_weights.safetensors; do
        rm -rf out
        "$BIN/spo-generate" -q -m "$M" --lora "$G/$l" --steps 10 --latents "$G/x_T.h5" "$P1" "$P2" -o out
        same_pixels out/p0_i0.png lora 0
        same_pixels out/p1_i0.png lora 1
        run ! same_pixels out/p0_i0.png base 0
    done
    run "$HELP/spo-pnginfo" out/p0_i0.png parameters
    [[ "$output" == *", Lora: st-"*"@0, "* ]]
}

@test "single PNG, tar file and tar stream hold the same images as the folder" {
    "$BIN/spo-generate" -q -m "$M" --steps 3 --seed 4 "$P1" "$P2" -o out
    "$BIN/spo-generate" -q -m "$M" --steps 3 --seed 4 "$P1" -o one.png
    cmp one.png out/p0_i0.png
    "$BIN/spo-generate" -q -m "$M" --steps 3 --seed 4 "$P1" "$P2" -o out.tar
    [ "$(tar tf out.tar | tr '\n' ' ')" = "p0_i0.png p1_i0.png " ]
    "$BIN/spo-generate" -q -m "$M" --steps 3 --seed 4 "$P1" "$P2" -o - > s.tar
    mkdir x y && tar xf out.tar -C x && tar xf s.tar -C y
    for n in p0_i0.png p1_i0.png; do cmp "out/$n" "x/$n"; cmp "out/$n" "y/$n"; done
    [ -z "$(ls -a | grep '\.tmp\.')" ]
}

@test "the Philox x_T of image 0 is spo-init's x_T for the prompt id and seed" {
    printf '%s\n%s\n' "$P1" "$P2" > prompts.txt
    "$BIN/spo-encode" -q -m "$M" prompts.txt -o e.h5
    "$BIN/spo-init" -m "$M" -e e.h5 --seed 9 -o s.h5
    "$BIN/spo-generate" -q -m "$M" --steps 4 --latents s.h5 --prompts prompts.txt -o a
    "$BIN/spo-generate" -q -m "$M" --steps 4 --seed 9 --prompts prompts.txt -o b
    "$BIN/spo-generate" -q -m "$M" --steps 4 --seed 10 --prompts prompts.txt -o c
    for n in p0_i0.png p1_i0.png; do
        "$HELP/spo-pnginfo" --cell "a/$n" 0 0 0 "b/$n"
        run -1 "$HELP/spo-pnginfo" --cell "a/$n" 0 0 0 "c/$n"
    done
}

@test "eta 1: the loop's chain (spo-init, spo-pool -K 1, spo-resample, spo-decode) makes the same images" {
    printf '%s\n%s\n' "$P1" "$P2" > prompts.txt
    "$BIN/spo-encode" -q -m "$M" prompts.txt -o e.h5
    "$BIN/spo-init" -m "$M" -e e.h5 --seed 3 --steps 3 -o s.h5
    for i in 0 1 2; do
        "$BIN/spo-pool" -q -m "$M" -e e.h5 -K 1 -g 7.5 --eta 1 s.h5 -o p.h5 -f
        "$BIN/spo-resample" --seed 3 p.h5 -o s.h5 -f
    done
    "$BIN/spo-decode" -q -m "$M" p.h5 -o dec
    "$BIN/spo-generate" -q -m "$M" --steps 3 --eta 1 --seed 3 --prompts prompts.txt -o gen
    for p in 0 1; do "$HELP/spo-pnginfo" --cell "dec/p${p}_k0.png" 0 0 0 "gen/p${p}_i0.png"; done
}

@test "eta > 0 is seeded and differs from eta 0; --size sets the image size" {
    "$BIN/spo-generate" -q -m "$M" --steps 3 --eta 1 --seed 2 "$P1" -o a.png
    "$BIN/spo-generate" -q -m "$M" --steps 3 --eta 1 --seed 2 "$P1" -o b.png
    "$BIN/spo-generate" -q -m "$M" --steps 3 --seed 2 "$P1" -o c.png
    cmp a.png b.png
    run -1 "$HELP/spo-pnginfo" --cell a.png 0 0 0 c.png
    "$BIN/spo-generate" -q -m "$M" --steps 2 --size 16x24 "$P1" -o d.png
    [ "$("$HELP/spo-pnginfo" d.png)" = 24x16 ]
}

@test "an existing PNG is refused without -f and replaced with it" {
    "$BIN/spo-generate" -q -m "$M" --steps 2 "$P1" -o d
    expect_fail 2 "$BIN/spo-generate" -q -m "$M" --steps 2 "$P1" -o d/p0_i0.png
    [[ "$stderr" == *"d/p0_i0.png: exists (use -f to overwrite)" ]]
    expect_fail 2 "$BIN/spo-generate" -q -m "$M" --steps 2 "$P1" -o d
    [[ "$stderr" == *"d/p0_i0.png: exists (use -f to overwrite)" ]]
    [ -z "$(ls -a d | grep '\.tmp\.')" ]
    cp d/p0_i0.png before.png
    "$BIN/spo-generate" -q -f -m "$M" --steps 3 "$P1" -o d
    [ "$(ls d)" = p0_i0.png ]
    run ! cmp -s before.png d/p0_i0.png
}

@test "bad calls: exit 2, one line, nothing left behind" {
    expect_fail 2 "$BIN/spo-generate" -m "$BATS_TEST_TMPDIR/no-model" "$P1" -o out
    expect_fail 2 "$BIN/spo-generate" "$P1" -o out
    expect_fail 2 "$BIN/spo-generate" -m "$M" "$P1"
    expect_fail 2 "$BIN/spo-generate" -m "$M" -o out
    expect_fail 2 "$BIN/spo-generate" -m "$M" --prompts /dev/null "$P1" -o out
    expect_fail 2 "$BIN/spo-generate" -m "$M" --bogus "$P1" -o out
    expect_fail 2 "$BIN/spo-generate" -m "$M" --steps 0 "$P1" -o out
    expect_fail 2 "$BIN/spo-generate" -m "$M" --size 33x32 "$P1" -o out
    [[ "$stderr" == *"multiples of the VAE factor 2" ]]
    expect_fail 2 "$BIN/spo-generate" -m "$M" --size 30x32 "$P1" -o out
    [[ "$stderr" == *"the UNet needs multiples of 2"* ]]
    expect_fail 2 "$BIN/spo-generate" -m "$M" --size 2x3x4 "$P1" -o out
    expect_fail 2 "$BIN/spo-generate" -m "$M" --images-per-prompt 2 "$P1" -o out.png
    [[ "$stderr" == *"a PNG file holds one image, this run makes 2"* ]]
    expect_fail 2 "$BIN/spo-generate" -m "$M" "$P1" -o no/such/out
    expect_fail 2 "$BIN/spo-generate" -m "$M" --latents "$G/x_T_n2.h5" "$P1" "$P2" -o out
    [[ "$stderr" == *"/latents is [4,4,16,16], expected [2,4,h,w] (one per image)" ]]
    expect_fail 2 "$BIN/spo-generate" -m "$M" --latents "$G/lora.h5" "$P1" -o out
    expect_fail 2 "$BIN/spo-generate" -m "$M" --latents "$G/x_T.h5" --size 64x64 "$P1" "$P2" -o out
}

@test "bad LoRA files: wrong shape, unknown key, text encoder, another model" {
    expect_fail 2 "$BIN/spo-generate" -m "$M" --lora "$G/lora_shape.h5" "$P1" -o out
    [[ "$stderr" == *"lora_shape.h5: LoRA module 'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q' is 32x33, the UNet's layer is 32x32" ]]
    expect_fail 2 "$BIN/spo-generate" -m "$M" --lora "$G/lora_badkey.safetensors" "$P1" -o out
    [[ "$stderr" == *"unet.conv_in.lora.down.weight: the UNet has no linear layer 'conv_in'" ]]
    expect_fail 2 "$BIN/spo-generate" -m "$M" --lora "$G/lora_te.safetensors" "$P1" -o out
    [[ "$stderr" == *"text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora.down.weight: a text-encoder LoRA"* ]]
    expect_fail 2 "$BIN/spo-generate" -m "$M" --lora "$M/unet/config.json" "$P1" -o out
    expect_fail 2 "$BIN/spo-generate" -m "$M" --lora "$BATS_TEST_TMPDIR/none.h5" "$P1" -o out
    # a LoRA made for another model of the same shapes
    "$BIN/spo-mkmodel" -q --seed 7 --no-spm -o other
    printf 'x\n' > p.txt
    "$BIN/spo-encode" -q -m other p.txt -o e.h5
    "$BIN/spo-init" -m other -e e.h5 --lora-out other.h5
    expect_fail 2 "$BIN/spo-generate" -m "$M" --lora other.h5 "$P1" -o out
    [[ "$stderr" == *"other.h5 is for model '"*"', $M for model '"* ]]
    # the same LoRA is fine on its own model
    "$BIN/spo-generate" -q -m other --lora other.h5 --steps 2 "$P1" -o out.png
    [ -f out.png ]
}
