#!/usr/bin/env bats
# The SDXL recipe's sampling loop with inner steps (spo-sample --inner 3,
# -K 2, threshold 0.4: spo-pool --inner, spo-score, spo-pair, spo-resample)
# against tests/fixtures/sampling/inner.h5 (tests/reference/sampling_reference.py
# --inner 3: the official multi_sample_pipeline_sdxl loop on the tiny SD
# model and spo's noise from tests/helpers/spo-noise). Pools at steps 4, 8,
# 12, 16 of 20; each child's chain takes 3 inner steps; the last chains run
# to the end. Children, inner latents, x0_hat, scores: relative L2 <= 1e-5;
# choices, kept pairs' keys and timesteps: exact. The kept pairs are every
# transition of the best and worst chains (4 per kept prompt).

load helpers

setup_file() {
    export REF="$FIX/sampling/inner.h5"
    export CMP="$HELP/spo-h5cmp"
    export W="$BATS_FILE_TMPDIR"
    export SEED="$(attr "$REF" seed)" STEPS="$(attr "$REF" steps)" PLAIN="$(attr "$REF" plain)"
    export K="$(attr "$REF" K)" THR="$(attr "$REF" threshold)" INNER="$(attr "$REF" inner)"
    SPO_BIN="$BIN" "$ROOT/pipelines/spo-sample" -q -m "$FIX/tiny-sd" --spm "$FIX/tiny-spm/clip" \
        --spm-weights "$FIX/tiny-spm/spm.bin" -e "$FIX/score/embeds.h5" --seed "$SEED" --steps "$STEPS" \
        --plain "$PLAIN" -K "$K" --inner "$INNER" -t "$THR" -g 5 --eta 1 --keep "$W/run" -o "$W/pairs.h5" -f \
        > "$W/log" 2>&1 || echo failed > "$W/failed"
}

ran() { [ ! -e "$W/failed" ] || { cat "$W/log"; return 1; }; }

cmp() {
    local out
    out=$("$CMP" "$@") || { echo "FAIL $2 of $1 vs $4 of $3: $out"; return 1; }
    echo "$(basename "$1") $2: $out"
}

@test "inner steps: the reference is the SDXL recipe's loop" {
    [ "$INNER" = 3 ] && [ "$K" = 2 ] && [ "$THR" = 0.4 ] && [ "$STEPS" = 20 ] && [ "$PLAIN" = 4 ]
    ran
}

@test "inner steps: pools at 4, 8, 12, 16, the chains' latents and scores equal the reference" {
    ran
    local s n
    for s in 4 8 12 16; do
        n=$(printf %03d $s)
        [ "$(attr "$W/run/pool_$n.h5" inner_steps)" = 3 ]
        [ "$(attr "$W/run/pool_$n.h5" end_timestep)" = "$(attr "$REF" /step_$(printf %02d $s)/end_timestep)" ]
        cmp "$W/run/pool_$n.h5" /children "$REF" /step_$(printf %02d $s)/children 1e-5
        cmp "$W/run/pool_$n.h5" /inner "$REF" /step_$(printf %02d $s)/inner 1e-5
        cmp "$W/run/pool_$n.h5" /x0_hat "$REF" /step_$(printf %02d $s)/x0_hat 1e-5
        cmp "$W/run/scores_$n.h5" /scores "$REF" /step_$(printf %02d $s)/scores 1e-5
        cmp "$W/run/state_$(printf %03d $((s + 4))).h5" /chosen "$REF" /step_$(printf %02d $s)/chosen exact
    done
    # no pool at the inner steps, none after 16 (its chains ran to the end)
    for s in 5 6 7 9 17 18 19; do [ ! -e "$W/run/pool_$(printf %03d $s).h5" ]; done
    [ "$(attr "$W/run/pool_016.h5" end_timestep)" = 0 ]
}

@test "inner steps: the final latents and the kept pairs equal the reference" {
    ran
    cmp "$W/run/state_$(printf %03d "$STEPS").h5" /latents "$REF" /final 1e-5
    [ "$(attr "$W/run/state_$(printf %03d "$STEPS").h5" step)" = "$STEPS" ]
    cmp "$W/pairs.h5" /key "$REF" /pairs/key exact
    cmp "$W/pairs.h5" /timestep "$REF" /pairs/timestep exact
    cmp "$W/pairs.h5" /score_win "$REF" /pairs/score_win 1e-5
    cmp "$W/pairs.h5" /score_lose "$REF" /pairs/score_lose 1e-5
    [ "$(data "$REF" /pairs/key | wc -l)" -gt 0 ]
}

@test "inner steps: each pair is a transition of the best and the worst chain, each from its own parent" {
    ran
    "$BIN/spo-inspect" --check "$W/pairs.h5"
    local n i s p b j w l
    n=$(data "$REF" /pairs/timestep | wc -l)
    for ((i = 0; i < n; i++)); do
        s=$(data "$REF" /pairs/key -s $i,2 -c 1,1)
        b=$(( $(data "$REF" /pairs/key -s $i,1 -c 1,1) - 10 )) # ids 10, 11, 12 are rows 0, 1, 2
        w=$(data "$REF" /pairs/win -s $i -c 1) l=$(data "$REF" /pairs/lose -s $i -c 1)
        p=$(( (s - PLAIN) / 4 * 4 + PLAIN )) j=$((s - p)) # the pool and the transition
        pool="$W/run/pool_$(printf %03d $p).h5"
        at() { # CHILD J: chain CHILD of row b after J steps
            if [ "$2" = 0 ]; then data "$pool" /children -s $b,$1,0,0,0 -c 1,1,4,16,16
            else data "$pool" /inner -s $b,$1,$(($2 - 1)),0,0,0 -c 1,1,1,4,16,16; fi
        }
        [ "$(data "$W/pairs.h5" /win -s $i,0,0,0 -c 1,4,16,16)" = "$(at $w $j)" ]
        [ "$(data "$W/pairs.h5" /lose -s $i,0,0,0 -c 1,4,16,16)" = "$(at $l $j)" ]
        if [ $j = 0 ]; then
            [ "$(data "$W/pairs.h5" /parent -s $i,0,0,0 -c 1,4,16,16)" = \
              "$(data "$pool" /parent -s $b,0,0,0 -c 1,4,16,16)" ]
            [ "$(data "$W/pairs.h5" /parent_lose -s $i,0,0,0 -c 1,4,16,16)" = \
              "$(data "$pool" /parent -s $b,0,0,0 -c 1,4,16,16)" ]
        else
            [ "$(data "$W/pairs.h5" /parent -s $i,0,0,0 -c 1,4,16,16)" = "$(at $w $((j - 1)))" ]
            [ "$(data "$W/pairs.h5" /parent_lose -s $i,0,0,0 -c 1,4,16,16)" = "$(at $l $((j - 1)))" ]
        fi
    done
}

@test "inner steps: a pool whose next pool would be the last step runs its chains to the end" {
    ran
    # plain steps from the state at 12 to one at 15; a pool there with --inner 3 would pool next at 19, the
    # last step, so its chains take 4 inner steps and end in final latents (no eps)
    local M="$FIX/tiny-sd" E="$FIX/score/embeds.h5"
    cp "$W/run/state_012.h5" s12.h5
    for s in 12 13 14; do
        "$BIN/spo-pool" -q -m "$M" -e "$E" -K 1 s$s.h5 -o - | "$BIN/spo-resample" - -o s$((s + 1)).h5
    done
    "$BIN/spo-pool" -q -m "$M" -e "$E" -K 2 --inner 3 s15.h5 -o p15.h5
    [ "$(attr p15.h5 inner_steps)" = 4 ]
    [ "$(attr p15.h5 end_timestep)" = 0 ]
    "$BIN/spo-inspect" --check p15.h5
    run "$BIN/spo-inspect" p15.h5
    [[ "$output" != */eps* ]]
    "$BIN/spo-resample" p15.h5 -o s20.h5
    [ "$(attr s20.h5 step)" = 20 ]
    [ "$(attr s20.h5 timestep)" = 0 ]
    # and a pool at the last step has no inner steps at all
    "$BIN/spo-pool" -q -m "$M" -e "$E" -K 1 s15.h5 -o - | "$BIN/spo-resample" - -o s16.h5
    for s in 16 17 18; do
        "$BIN/spo-pool" -q -m "$M" -e "$E" -K 1 s$s.h5 -o - | "$BIN/spo-resample" - -o s$((s + 1)).h5
    done
    "$BIN/spo-pool" -q -m "$M" -e "$E" -K 2 --inner 3 s19.h5 -o p19.h5
    run "$BIN/spo-inspect" p19.h5
    [[ "$output" != *inner_steps* ]]
}
