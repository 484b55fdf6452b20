#!/usr/bin/env bats
# The whole SPO sampling pass (pipelines/spo-sample: spo-init, spo-pool,
# spo-score, spo-pair, spo-resample) against the PyTorch/diffusers reference
# tests/fixtures/sampling/reference.h5 (tests/reference/sampling_reference.py:
# the official SPO sampling semantics, 20 steps, 4 plain, K 4, 3 prompts,
# threshold 0.3, guidance 5, eta 1, with the UNet rerun at every parent
# instead of spo's cached eps). The reference draws no random numbers: it
# takes x_T, every child's z and every resample choice from
# tests/helpers/spo-noise, which calls the functions spo uses.
#
# Every pooled step's /children and /x0_hat, every step's /scores and the
# plain steps' latents: relative L2 <= 1e-4; resample choices, kept pairs'
# keys and timesteps: exact. The seed (the reference's `seed` attribute) is
# one whose softmax gaps all lie at least 1e-3 from the threshold (0.0198
# for seed 1; attribute min_gap_margin) and whose kept pairs' best/worst
# beat the runner-up by at least 1e-3 in score (min_kept_separation), so
# the exact checks are not fragile; sampling_reference.py refuses other
# seeds. The pass runs with -b 4 (default), 1 and 7 latents per UNet/VAE
# call: batching must not change anything.

load helpers

setup_file() {
    export SPO_BIN="$BIN"
    export REF="$FIX/sampling/reference.h5"
    export CMP="$HELP/spo-h5cmp"
    export W="$BATS_FILE_TMPDIR"
    export SEED="$(attr "$REF" seed)"
    export STEPS="$(attr "$REF" steps)" PLAIN="$(attr "$REF" plain)" K="$(attr "$REF" K)"
    export THR="$(attr "$REF" threshold)"
    # the default batch, once for every test
    sample 4 > "$W/b4.log" 2>&1 || echo failed > "$W/b4.failed"
}

# sample BATCH: the pass on the fixture into $W/bBATCH (--keep) and $W/pairs_bBATCH.h5
sample() {
    "$ROOT/pipelines/spo-sample" -q -m "$FIX/tiny-sd" --spm "$FIX/tiny-spm/clip" \
        --spm-weights "$FIX/tiny-spm/spm.bin" -e "$FIX/score/embeds.h5" --seed "$SEED" --steps "$STEPS" \
        --plain "$PLAIN" -K "$K" -t "$THR" -g 5 --eta 1 -b "$1" --keep "$W/b$1" -o "$W/pairs_b$1.h5" -f
}

ran() { [ ! -e "$W/b$1.failed" ] || { cat "$W/b$1.log"; return 1; }; }

# cmp A dsA B dsB TOL|exact, echoing what was compared
cmp() {
    local out
    out=$("$CMP" "$@") || { echo "FAIL $2 of $1 vs $4 of $3: $out"; return 1; }
    echo "$(basename "$1") $2: $out"
}

# steps FIRST LAST DIR: every step's latents/children/x0_hat/scores/choices against the reference
steps() {
    local s ss n n1 d=$3
    for ((s = $1; s <= $2; s++)); do
        ss=$(printf %02d $s) n=$(printf %03d $s) n1=$(printf %03d $((s + 1)))
        if [ $s -lt "$PLAIN" ]; then
            cmp "$d/state_$n1.h5" /latents "$REF" /step_$ss/latents 1e-4 || return 1
        else
            cmp "$d/pool_$n.h5" /children "$REF" /step_$ss/children 1e-4 || return 1
            cmp "$d/pool_$n.h5" /x0_hat "$REF" /step_$ss/x0_hat 1e-4 || return 1
            cmp "$d/scores_$n.h5" /scores "$REF" /step_$ss/scores 1e-4 || return 1
        fi
        cmp "$d/state_$n1.h5" /chosen "$REF" /step_$ss/chosen exact || return 1
    done
}

# pairs FILE: the kept pairs against the reference
pairs() {
    cmp "$1" /key "$REF" /pairs/key exact || return 1
    cmp "$1" /timestep "$REF" /pairs/timestep exact || return 1
    cmp "$1" /score_win "$REF" /pairs/score_win 1e-4 || return 1
    cmp "$1" /score_lose "$REF" /pairs/score_lose 1e-4
}

@test "sampling: the pass runs on the fixture with the reference's seed" {
    ran 4
    [ "$SEED" = 1 ]
    "$BIN/spo-inspect" --check "$W/pairs_b4.h5"
    [ "$(attr "$W/b4/state_$(printf %03d "$STEPS").h5" step)" = "$STEPS" ]
}

@test "sampling: spo-noise draws what spo-init and spo-resample draw" {
    ran 4
    "$HELP/spo-noise" --seed "$SEED" --steps "$STEPS" -K "$K" --plain "$PLAIN" --ids 10,11,12 --latent 4x16x16 \
        -o noise.h5
    run "$CMP" noise.h5 /init "$W/b4/state_000.h5" /latents 0
    echo "$output"
    [ "$status" -eq 0 ]
    for ((s = 0; s < STEPS; s++)); do
        [ "$(data noise.h5 /chosen -s $s,0 -c 1,3)" = "$(data "$W/b4/state_$(printf %03d $((s + 1))).h5" /chosen)" ]
    done
}

@test "sampling: plain DDIM steps equal the reference" {
    ran 4
    steps 0 $((PLAIN - 1)) "$W/b4"
}

@test "sampling: pooled steps (children, x0_hat, scores, choices) equal the reference" {
    ran 4
    steps "$PLAIN" $((STEPS - 1)) "$W/b4"
}

@test "sampling: the final latents equal the reference" {
    ran 4
    cmp "$W/b4/state_$(printf %03d "$STEPS").h5" /latents "$REF" /final 1e-4
}

@test "sampling: the kept pairs equal the reference's (keys exact)" {
    ran 4
    pairs "$W/pairs_b4.h5"
    [ "$(data "$REF" /pairs/key | wc -l)" -gt 0 ] # some pairs are kept ...
    [ "$(data "$REF" /step_04/kept | sort -u | tr '\n' ' ')" = "0 1 " ] # ... and some are not
    # win/lose are the reference's best/worst children of spo's pools
    local n i s b w l
    n=$(data "$REF" /pairs/timestep | wc -l)
    for ((i = 0; i < n; i++)); do
        s=$(data "$REF" /pairs/key -s $i,2 -c 1,1)
        b=$(( $(data "$REF" /pairs/key -s $i,1 -c 1,1) - 10 )) # ids 10, 11, 12 are rows 0, 1, 2
        w=$(data "$REF" /pairs/win -s $i -c 1)
        l=$(data "$REF" /pairs/lose -s $i -c 1)
        [ "$(data "$W/pairs_b4.h5" /win -s $i,0,0,0 -c 1,4,16,16)" = \
          "$(data "$W/b4/pool_$(printf %03d $s).h5" /children -s $b,$w,0,0,0 -c 1,1,4,16,16)" ]
        [ "$(data "$W/pairs_b4.h5" /lose -s $i,0,0,0 -c 1,4,16,16)" = \
          "$(data "$W/b4/pool_$(printf %03d $s).h5" /children -s $b,$l,0,0,0 -c 1,1,4,16,16)" ]
        [ "$(data "$W/pairs_b4.h5" /parent -s $i,0,0,0 -c 1,4,16,16)" = \
          "$(data "$W/b4/pool_$(printf %03d $s).h5" /parent -s $b,0,0,0 -c 1,4,16,16)" ]
    done
}

@test "sampling: -b 1 and -b 7 give the reference's results too" {
    ran 4
    for b in 1 7; do
        sample $b
        steps 0 $((STEPS - 1)) "$W/b$b"
        pairs "$W/pairs_b$b.h5"
        cmp "$W/pairs_b$b.h5" /key "$W/pairs_b4.h5" /key exact
        cmp "$W/pairs_b$b.h5" /win "$W/pairs_b4.h5" /win 1e-5
    done
}
