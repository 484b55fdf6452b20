#!/usr/bin/env bats
# spo-decode: a folder of PNGs, a tar of them (file, stdout, pipes), a
# contact sheet, each latent schema, and bad inputs (exit 2, one line,
# nothing left behind). Pixel parity with diffusers is tests/unit/test_decode.c.

load helpers
OUTPUTS="out out.tar sheet.png no/such"

setup_file() {
    export M="$FIX/tiny-sd"
    export POOL="$FIX/score/pool.h5"
    export EMB="$FIX/score/embeds.h5"
    export TF="$BATS_FILE_TMPDIR/tf"
    "$HELP/spo-testfiles" "$TF"
}

NAMES="p10_k0.png p10_k1.png p10_k2.png p10_k3.png p11_k0.png p11_k1.png p11_k2.png p11_k3.png p12_k0.png p12_k1.png p12_k2.png p12_k3.png"

@test "folder: one 32x32 PNG per child, named p<id>_k<child>.png, with the prompt and provenance" {
    "$BIN/spo-decode" -q -m "$M" -e "$EMB" "$POOL" -o out
    [ "$(ls out | tr '\n' ' ')" = "$NAMES " ]
    for f in out/*.png; do [ "$("$HELP/spo-pnginfo" "$f")" = 32x32 ]; done
    [ "$("$HELP/spo-pnginfo" out/p11_k2.png prompt)" = "Sunset over the sea, oil painting!" ]
    run "$HELP/spo-pnginfo" out/p11_k2.png parameters
    [[ "$output" == *"pool/1 /x0_hat, prompt id 11, child 2, seed 1, step 9 of 20, timestep 451"* ]]
    ! ls -a out | grep -q '\.tmp\.'
}

@test "folder: an existing PNG is refused without -f, replaced with it" {
    "$BIN/spo-decode" -q -m "$M" "$POOL" -o out
    run --separate-stderr "$BIN/spo-decode" -q -m "$M" "$POOL" -o out
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"p10_k0.png: exists (use -f to overwrite)" ]]
    "$BIN/spo-decode" -q -f -m "$M" "$POOL" -o out
    [ "$(ls out | wc -l)" -eq 12 ]
}

@test "tar file: same PNGs as the folder; the batch size changes nothing" {
    "$BIN/spo-decode" -q -b 1 -m "$M" "$POOL" -o out
    "$BIN/spo-decode" -q -b 5 -m "$M" "$POOL" -o out.tar
    [ "$(tar tf out.tar | tr '\n' ' ')" = "$NAMES " ]
    mkdir x && tar xf out.tar -C x
    for n in $NAMES; do cmp "out/$n" "x/$n"; done
}

@test "pipes: pool on stdin, tar stream on stdout" {
    run bash -c "cat '$POOL' | '$BIN/spo-decode' -q -m '$M' - -o - | tar tf -"
    [ "$status" -eq 0 ]
    [ "$(echo "$output" | tr '\n' ' ')" = "$NAMES " ]
}

@test "contact sheet: 3x4 grid of 32x32 with 2-pixel gaps, cells equal the PNGs" {
    "$BIN/spo-decode" -q -m "$M" "$POOL" -o out --sheet sheet.png
    [ "$("$HELP/spo-pnginfo" sheet.png)" = 134x100 ]
    # the IHDR says so too: width and height are big-endian at bytes 16..23
    [ "$(od -An -tu1 -j16 -N8 sheet.png | tr -s ' ')" = " 0 0 0 134 0 0 0 100" ]
    "$HELP/spo-pnginfo" --cell sheet.png 0 0 2 out/p10_k0.png
    "$HELP/spo-pnginfo" --cell sheet.png 1 2 2 out/p11_k2.png
    "$HELP/spo-pnginfo" --cell sheet.png 2 3 2 out/p12_k3.png
    run -1 "$HELP/spo-pnginfo" --cell sheet.png 2 3 2 out/p12_k2.png
    "$BIN/spo-decode" -q -m "$M" "$POOL" --sheet - --gap 5 > s5.png
    [ "$("$HELP/spo-pnginfo" s5.png)" = 143x106 ]
    ! ls -a | grep -q '\.tmp\.'
}

@test "pool --what children and parent" {
    "$BIN/spo-decode" -q -m "$M" "$POOL" --what children -o out.tar
    [ "$(tar tf out.tar | wc -l)" -eq 12 ]
    "$BIN/spo-decode" -q -m "$M" -e "$EMB" "$POOL" --what parent -o out --sheet sheet.png
    [ "$(ls out | tr '\n' ' ')" = "p10.png p11.png p12.png " ]
    # with -e each row's prompt is written in an 11-pixel band under it: 3 x (32 + 11) + 2 x 2,
    # and the sheet is at least 256 wide for it
    [ "$("$HELP/spo-pnginfo" sheet.png)" = 256x133 ]
    "$BIN/spo-decode" -q -m "$M" "$POOL" --what parent --sheet plain.png
    [ "$("$HELP/spo-pnginfo" plain.png)" = 32x100 ]
    run "$HELP/spo-pnginfo" out/p10.png parameters
    [[ "$output" == *"/parent, prompt id 10, seed 1, step 9 of 20, timestep 501"* ]]
}

@test "state file: one image per prompt in one column" {
    "$BIN/spo-decode" -q -m "$M" "$TF/good/state.h5" -o out --sheet sheet.png
    [ "$(ls out | tr '\n' ' ')" = "p0.png p1.png " ]
    [ "$("$HELP/spo-pnginfo" out/p1.png)" = 16x16 ]
    [ "$("$HELP/spo-pnginfo" sheet.png)" = 16x34 ]
}

@test "pairs file: win by default, lose and parent on request" {
    "$BIN/spo-decode" -q -m "$M" "$TF/good/pairs.h5" -o out
    [ "$(ls out | tr '\n' ' ')" = "p1_n0_win.png p5_n1_win.png p9_n2_win.png " ]
    "$BIN/spo-decode" -q -m "$M" "$TF/good/pairs.h5" --what lose -o out
    "$BIN/spo-decode" -q -m "$M" "$TF/good/pairs.h5" --what parent -o out
    [ "$(ls out | wc -l)" -eq 9 ]
    ! cmp -s out/p1_n0_win.png out/p1_n0_lose.png
}

@test "bad: a scores file has no latents" { expect_fail 2 "$BIN/spo-decode" -m "$M" "$TF/good/scores.h5" -o out; }
@test "bad: an embeddings file has no latents" { expect_fail 2 "$BIN/spo-decode" -m "$M" "$EMB" -o out.tar; }
@test "bad: latent channels do not match the VAE" { expect_fail 2 "$BIN/spo-decode" -m "$M" "$FIX/decode/pool_c3.h5" -o out --sheet sheet.png; }
@test "bad: missing model" { expect_fail 2 "$BIN/spo-decode" -m nomodel "$POOL" -o out; }
@test "bad: no model" { expect_fail 2 "$BIN/spo-decode" "$POOL" -o out; }
@test "bad: output folder's parent missing" { expect_fail 2 "$BIN/spo-decode" -m "$M" "$POOL" -o no/such; }
@test "bad: tar file's folder missing" { expect_fail 2 "$BIN/spo-decode" -m "$M" "$POOL" -o no/such.tar; }
@test "bad: sheet's folder missing" { expect_fail 2 "$BIN/spo-decode" -m "$M" "$POOL" -o out --sheet no/sheet.png; }
@test "bad: unknown --what" { expect_fail 2 "$BIN/spo-decode" -m "$M" "$POOL" --what win -o out; }
@test "bad: no output" { expect_fail 2 "$BIN/spo-decode" -m "$M" "$POOL"; }
@test "bad: tar and sheet both on stdout" { expect_fail 2 "$BIN/spo-decode" -m "$M" "$POOL" -o - --sheet -; }
@test "bad: a prompt id missing from the embeddings" { expect_fail 2 "$BIN/spo-decode" -m "$M" -e "$EMB" "$TF/good/pairs.h5" -o out; }
@test "bad: NaN in the latents" { expect_fail 2 "$BIN/spo-decode" -m "$M" "$TF/bad/nan.h5" -o out; }
@test "bad: no spo_schema" { expect_fail 2 "$BIN/spo-decode" -m "$M" "$TF/bad/no_schema.h5" -o out; }
@test "bad: missing input" { expect_fail 2 "$BIN/spo-decode" -m "$M" nofile.h5 -o out; }
@test "bad: batch out of range" { expect_fail 2 "$BIN/spo-decode" -m "$M" -b 0 "$POOL" -o out; }
@test "bad: the output exists as a file" {
    touch out
    run --separate-stderr "$BIN/spo-decode" -m "$M" "$POOL" -o out
    [ "$status" -eq 2 ]
    [[ "$stderr" == spo-decode:*"not a folder"* ]]
    [ ! -s out ]
}
