#!/usr/bin/env bats
# spo-score against the PyTorch reference (tests/reference/score_fixture.py):
# diffusers' VAE decode + the step-aware preference model at each child's
# timestep; and its bad inputs.

load helpers
OUTPUTS=out.h5

setup_file() {
    export SPM="--spm $FIX/tiny-spm/clip --spm-weights $FIX/tiny-spm/spm.bin"
}

@test "scores equal the PyTorch reference at the child timestep" {
    "$BIN/spo-score" -q -m "$FIX/tiny-sd" $SPM -e "$FIX/score/embeds.h5" "$FIX/score/pool.h5" -o sc.h5
    "$BIN/spo-inspect" --check sc.h5
    run "$HELP/spo-h5cmp" sc.h5 /scores "$FIX/score/expected.h5" /scores 1e-4
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "final latents are scored at timestep 0" {
    "$BIN/spo-score" -q -m "$FIX/tiny-sd" $SPM -e "$FIX/score/embeds.h5" "$FIX/score/pool_final.h5" -o sc.h5
    run "$HELP/spo-h5cmp" sc.h5 /scores "$FIX/score/expected.h5" /scores_final 1e-4
    echo "$output"
    [ "$status" -eq 0 ]
    h5dump -a timestep sc.h5 | grep -q '(0): 0'
}

@test "batch size does not change the scores; the pool comes through a pipe" {
    "$BIN/spo-score" -q -b 5 -m "$FIX/tiny-sd" $SPM -e "$FIX/score/embeds.h5" - -o - < "$FIX/score/pool.h5" > sc.h5
    run "$HELP/spo-h5cmp" sc.h5 /scores "$FIX/score/expected.h5" /scores 1e-4
    [ "$status" -eq 0 ]
}

@test "built-in scorer needs no embeddings" {
    "$BIN/spo-score" -q -m "$FIX/tiny-sd" --scorer saturation "$FIX/score/pool.h5" -o sc.h5
    "$BIN/spo-inspect" --check sc.h5
    h5dump -a scorer sc.h5 | grep -q 'builtin:saturation'
}

@test "bad: no scorer" { expect_fail 2 "$BIN/spo-score" -m "$FIX/tiny-sd" "$FIX/score/pool.h5" -o out.h5; }
@test "bad: unknown built-in scorer" { expect_fail 2 "$BIN/spo-score" -m "$FIX/tiny-sd" --scorer nope "$FIX/score/pool.h5" -o out.h5; }
@test "bad: SPM without embeddings" { expect_fail 2 "$BIN/spo-score" -m "$FIX/tiny-sd" $SPM "$FIX/score/pool.h5" -o out.h5; }
@test "bad: embeddings instead of a pool" { expect_fail 2 "$BIN/spo-score" -m "$FIX/tiny-sd" $SPM -e "$FIX/score/embeds.h5" "$FIX/score/embeds.h5" -o out.h5; }
@test "bad: missing model" { expect_fail 2 "$BIN/spo-score" -m nomodel --scorer saturation "$FIX/score/pool.h5" -o out.h5; }
@test "bad: malicious SPM weights are refused" { expect_fail 2 "$BIN/spo-score" -m "$FIX/tiny-sd" --spm "$FIX/tiny-spm/clip" --spm-weights "$FIX/pickles/evil_system.bin" -e "$FIX/score/embeds.h5" "$FIX/score/pool.h5" -o out.h5; }
@test "bad: both inputs on stdin" { expect_fail 2 "$BIN/spo-score" -m "$FIX/tiny-sd" $SPM -e - - -o out.h5; }
@test "bad: batch out of range" { expect_fail 2 "$BIN/spo-score" -m "$FIX/tiny-sd" --scorer saturation -b 0 "$FIX/score/pool.h5" -o out.h5; }
