#!/usr/bin/env bats
# spo-pool on the tiny fixture model: a valid pool, batch-size invariance,
# pipes, LoRA, and bad inputs (exit 2, one line, nothing left behind).

load helpers
OUTPUTS=out.h5

setup_file() {
    export F="$FIX"
    export M="$F/tiny-sd" E="$F/score/embeds.h5"
    cd "$BATS_FILE_TMPDIR"
    "$BIN/spo-init" -m "$M" -e "$E" --seed 2 -o s0.h5
    "$BIN/spo-pool" -q -m "$M" -e "$E" s0.h5 -o p0.h5
}

setup() { cd "$BATS_FILE_TMPDIR"; }

@test "a valid pool with K children per prompt" {
    "$BIN/spo-inspect" --check p0.h5
    h5dump -H -d /children p0.h5 | grep -q '( 3, 4, 4, 16, 16 )'
    h5dump -a child_timestep p0.h5 | grep -q '(0): 901'
}

@test "the pool records the embeddings' text_clean; spo-pair refuses embeddings of another" {
    [ "$(attr p0.h5 text_clean)" = basic ]   # the fixture's embeddings predate the attribute: basic
    ids=$(h5dump -d /prompt_id -y -w 0 "$E" | sed -n '/DATA {/,/}/p' | grep -o '[0-9]\+' | paste -sd,)
    "$HELP/spo-fakepool" embeds ef.h5 ids=$ids model="$(attr p0.h5 model_id)" clean=ftfy
    "$HELP/spo-fakepool" scores sc.h5 ids=$ids K=4 step=0
    expect_fail 2 "$BIN/spo-pair" -e ef.h5 p0.h5 sc.h5 -o out.h5
    [[ "$stderr" == *"cannot mix embeddings made with --text-clean basic (p0.h5) and ftfy (ef.h5)"* ]]
}

@test "batch size and pipes do not change the pool (but by float rounding)" {
    "$BIN/spo-pool" -q -b 1 -m "$M" -e "$E" - -o - < s0.h5 > p1.h5
    # measured up to 1.4e-6 relative L2 (AMD EPYC, OpenBLAS 0.3.21)
    for d in children x0_hat eps parent_eps; do "$HELP/spo-h5cmp" p0.h5 /$d p1.h5 /$d 1e-5; done
}

@test "a fresh LoRA samples exactly as the base model" {
    "$BIN/spo-init" -m "$M" -e "$E" --lora-out l.h5 -f
    "$BIN/spo-pool" -q -m "$M" -e "$E" --lora l.h5 s0.h5 -o pl.h5
    "$HELP/spo-h5cmp" p0.h5 /x0_hat pl.h5 /x0_hat 0
    h5dump -a lora_id pl.h5 | grep -q '@0"'
}

@test "a plain step and resample continue the chain with the cached eps" {
    "$BIN/spo-pool" -q -K 1 -m "$M" -e "$E" s0.h5 -o - | "$BIN/spo-resample" - -o s1.h5
    "$BIN/spo-inspect" --check s1.h5
    h5dump -a step s1.h5 | grep -q '(0): 1'
    "$BIN/spo-pool" -q -m "$M" -e "$E" s1.h5 -o p1b.h5
    "$HELP/spo-h5cmp" s1.h5 /eps p1b.h5 /parent_eps 0
}

@test "a cached eps is reused only for the same guidance" {
    "$BIN/spo-pool" -q -K 1 -m "$M" -e "$E" s0.h5 -o - | "$BIN/spo-resample" - -o s1g.h5
    "$BIN/spo-pool" -q -m "$M" -e "$E" s1g.h5 -o same.h5
    "$HELP/spo-h5cmp" s1g.h5 /eps same.h5 /parent_eps 0
    "$BIN/spo-pool" -q -g 7 -m "$M" -e "$E" s1g.h5 -o other.h5
    run "$HELP/spo-h5cmp" s1g.h5 /eps other.h5 /parent_eps 1e-3
    [ "$status" -eq 1 ]
}

@test "bad: a model other than the one the state was made for" {
    "$BIN/spo-mkmodel" --seed 7 -o other --no-spm
    expect_fail 2 "$BIN/spo-pool" -m other -e "$E" s0.h5 -o out.h5
    [[ "$stderr" == *"s0.h5 is for model"*"other for model"* ]]
}
@test "bad: a LoRA of the wrong shape" { expect_fail 2 "$BIN/spo-pool" -m "$M" -e "$E" --lora "$F/generate/lora_shape.h5" s0.h5 -o out.h5; }
@test "bad: children out of range" { expect_fail 2 "$BIN/spo-pool" -K 0 -m "$M" -e "$E" s0.h5 -o out.h5; }
@test "bad: no embeddings" { expect_fail 2 "$BIN/spo-pool" -m "$M" s0.h5 -o out.h5; }
@test "bad: a pool instead of a state" { expect_fail 2 "$BIN/spo-pool" -m "$M" -e "$E" p0.h5 -o out.h5; }
@test "bad: both inputs on stdin" { expect_fail 2 "$BIN/spo-pool" -m "$M" -e - - -o out.h5; }
@test "bad: missing model" { expect_fail 2 "$BIN/spo-pool" -m nomodel -e "$E" s0.h5 -o out.h5; }
@test "bad: unknown option" { expect_fail 2 "$BIN/spo-pool" --bogus -m "$M" -e "$E" s0.h5 -o out.h5; }

@test "spo-init --lora-out with a missing embeds file: exit 2, no crash, no LoRA left" {
    rm -f lm.h5
    run --separate-stderr "$BIN/spo-init" -m "$M" -e missing.h5 --lora-out lm.h5
    echo "status=$status stderr=$stderr"
    [ "$status" -eq 2 ]
    [[ "$stderr" == spo-init:*missing.h5* ]]
    [ ! -e lm.h5 ]
    ! ls -a | grep -q '\.tmp\.'
}

@test "spo-init commits the LoRA and the state together: a failing state leaves no LoRA" {
    rm -f lb.h5 sb.h5
    run --separate-stderr "$BIN/spo-init" -m "$M" -e "$E" --latent-size 8x8 --lora-out lb.h5 -o nodir/sb.h5
    echo "status=$status stderr=$stderr"
    [ "$status" -ne 0 ]
    [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
    [ ! -e lb.h5 ]
    ! ls -a | grep -q '\.tmp\.'
    "$BIN/spo-init" -m "$M" -e "$E" --lora-out lb.h5 -o sb.h5
    "$BIN/spo-inspect" --check lb.h5
    "$BIN/spo-inspect" --check sb.h5
}
