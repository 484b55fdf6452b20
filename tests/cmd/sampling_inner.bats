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
#
# The same pass runs on a tiny SDXL model (tiny_sdxl: the tiny SDXL UNet
# with addition_embed_type text_time, tiny-sd's VAE and scheduler) against
# tests/fixtures/sampling/sdxl.h5 (sampling_reference.py --sdxl: the UNet
# gets the pooled text embeddings and time ids as the official SDXL
# sampler passes them; embeddings from sampling/sdxl_embeds.h5): the tests
# marked "SDXL" check that run ($W/xl) the same way.

load helpers

setup_file() {
    export CMP="$HELP/spo-h5cmp"
    export W="$BATS_FILE_TMPDIR"
    export REF="$FIX/sampling/inner.h5"
    export SEED="$(attr "$REF" seed)" STEPS="$(attr "$REF" steps)" PLAIN="$(attr "$REF" plain)"
    export K="$(attr "$REF" K)" THR="$(attr "$REF" threshold)" INNER="$(attr "$REF" inner)"
    pass "$FIX/tiny-sd" "$FIX/score/embeds.h5" "$W/sd"
    tiny_sdxl "$W/tiny-sdxl"
    pass "$W/tiny-sdxl" "$FIX/sampling/sdxl_embeds.h5" "$W/xl"
}

# pass MODEL EMBEDS DIR: the sampling pass with the reference's settings into DIR/run, DIR/pairs.h5
pass() {
    mkdir -p "$3"
    SPO_BIN="$BIN" "$ROOT/pipelines/spo-sample" -q -m "$1" --spm "$FIX/tiny-spm/clip" \
        --spm-weights "$FIX/tiny-spm/spm.bin" -e "$2" --seed "$SEED" --steps "$STEPS" \
        --plain "$PLAIN" -K "$K" --inner "$INNER" -t "$THR" -g 5 --eta 1 --keep "$3/run" -o "$3/pairs.h5" -f \
        > "$3/log" 2>&1 || echo failed > "$3/failed"
}

# use sd|xl: the run and the reference the checks below read
use() {
    D="$W/$1"
    [ "$1" = sd ] && REF="$FIX/sampling/inner.h5" LAT=4,16,16 || REF="$FIX/sampling/sdxl.h5" LAT=4,8,8
    [ ! -e "$D/failed" ] || { cat "$D/log"; return 1; }
}

cmp() {
    local out
    out=$("$CMP" "$@") || { echo "FAIL $2 of $1 vs $4 of $3: $out"; return 1; }
    echo "$(basename "$1") $2: $out"
}

check_pools() {
    local s n
    for s in 4 8 12 16; do
        n=$(printf %03d $s)
        [ "$(attr "$D/run/pool_$n.h5" inner_steps)" = 3 ]
        [ "$(attr "$D/run/pool_$n.h5" end_timestep)" = "$(attr "$REF" /step_$(printf %02d $s)/end_timestep)" ]
        cmp "$D/run/pool_$n.h5" /children "$REF" /step_$(printf %02d $s)/children 1e-5
        cmp "$D/run/pool_$n.h5" /inner "$REF" /step_$(printf %02d $s)/inner 1e-5
        cmp "$D/run/pool_$n.h5" /x0_hat "$REF" /step_$(printf %02d $s)/x0_hat 1e-5
        cmp "$D/run/scores_$n.h5" /scores "$REF" /step_$(printf %02d $s)/scores 1e-5
        cmp "$D/run/state_$(printf %03d $((s + 4))).h5" /chosen "$REF" /step_$(printf %02d $s)/chosen exact
    done
    # no pool at the inner steps, none after 16 (its chains ran to the end)
    for s in 5 6 7 9 17 18 19; do [ ! -e "$D/run/pool_$(printf %03d $s).h5" ]; done
    [ "$(attr "$D/run/pool_016.h5" end_timestep)" = 0 ]
}

check_final() {
    cmp "$D/run/state_$(printf %03d "$STEPS").h5" /latents "$REF" /final 1e-5
    [ "$(attr "$D/run/state_$(printf %03d "$STEPS").h5" step)" = "$STEPS" ]
    cmp "$D/pairs.h5" /key "$REF" /pairs/key exact
    cmp "$D/pairs.h5" /timestep "$REF" /pairs/timestep exact
    cmp "$D/pairs.h5" /score_win "$REF" /pairs/score_win 1e-5
    cmp "$D/pairs.h5" /score_lose "$REF" /pairs/score_lose 1e-5
    [ "$(data "$REF" /pairs/key | wc -l)" -gt 0 ]
}

check_pairs() {
    "$BIN/spo-inspect" --check "$D/pairs.h5"
    local n i s p b j w l
    n=$(data "$REF" /pairs/timestep | wc -l)
    for ((i = 0; i < n; i++)); do
        s=$(data "$REF" /pairs/key -s $i,2 -c 1,1)
        b=$(( $(data "$REF" /pairs/key -s $i,1 -c 1,1) - 10 )) # ids 10, 11, 12 are rows 0, 1, 2
        w=$(data "$REF" /pairs/win -s $i -c 1) l=$(data "$REF" /pairs/lose -s $i -c 1)
        p=$(( (s - PLAIN) / 4 * 4 + PLAIN )) j=$((s - p)) # the pool and the transition
        pool="$D/run/pool_$(printf %03d $p).h5"
        at() { # CHILD J: chain CHILD of row b after J steps
            if [ "$2" = 0 ]; then data "$pool" /children -s $b,$1,0,0,0 -c 1,1,$LAT
            else data "$pool" /inner -s $b,$1,$(($2 - 1)),0,0,0 -c 1,1,1,$LAT; fi
        }
        [ "$(data "$D/pairs.h5" /win -s $i,0,0,0 -c 1,$LAT)" = "$(at $w $j)" ]
        [ "$(data "$D/pairs.h5" /lose -s $i,0,0,0 -c 1,$LAT)" = "$(at $l $j)" ]
        if [ $j = 0 ]; then
            [ "$(data "$D/pairs.h5" /parent -s $i,0,0,0 -c 1,$LAT)" = \
              "$(data "$pool" /parent -s $b,0,0,0 -c 1,$LAT)" ]
            [ "$(data "$D/pairs.h5" /parent_lose -s $i,0,0,0 -c 1,$LAT)" = \
              "$(data "$pool" /parent -s $b,0,0,0 -c 1,$LAT)" ]
        else
            [ "$(data "$D/pairs.h5" /parent -s $i,0,0,0 -c 1,$LAT)" = "$(at $w $((j - 1)))" ]
            [ "$(data "$D/pairs.h5" /parent_lose -s $i,0,0,0 -c 1,$LAT)" = "$(at $l $((j - 1)))" ]
        fi
    done
}

@test "inner steps: the references are the SDXL recipe's loop, on the same settings" {
    [ "$INNER" = 3 ] && [ "$K" = 2 ] && [ "$THR" = 0.4 ] && [ "$STEPS" = 20 ] && [ "$PLAIN" = 4 ]
    for a in seed steps plain K threshold inner; do [ "$(attr "$FIX/sampling/sdxl.h5" $a)" = "$(attr "$REF" $a)" ]; done
    [ "$(attr "$FIX/sampling/sdxl.h5" sdxl)" = 1 ]
    use sd
    use xl
}




@test "inner steps: pools at 4, 8, 12, 16, the chains' latents and scores equal the reference" {
    use sd
    check_pools
}

@test "SDXL, inner steps: pools at 4, 8, 12, 16, the chains' latents and scores equal the reference" {
    use xl
    check_pools
}

@test "inner steps: the final latents and the kept pairs equal the reference" {
    use sd
    check_final
}

@test "SDXL, inner steps: the final latents and the kept pairs equal the reference" {
    use xl
    check_final
}

@test "inner steps: each pair is a transition of the best and the worst chain, each from its own parent" {
    use sd
    check_pairs
}

@test "SDXL, inner steps: each pair is a transition of the best and the worst chain, each from its own parent" {
    use xl
    check_pairs
}

@test "SDXL: the pairs carry the prompts' pooled embeddings, and spo-step-update trains on them (ln 2 fresh)" {
    use xl
    run "$BIN/spo-inspect" "$D/pairs.h5"
    [[ "$output" == *"/pooled "* ]] && [[ "$output" == *"/uncond_pooled "* ]]
    "$BIN/spo-init" -m "$W/tiny-sdxl" --lora-out l0.h5
    "$BIN/spo-step-update" -q -m "$W/tiny-sdxl" --lora l0.h5 "$D/pairs.h5" -o l1.h5 --metrics m.jsonl
    grep -q '"loss": 0.693147' m.jsonl
    # SD pairs on the SDXL model (and back) are refused naming what differs
    run "$BIN/spo-step-update" -q -m "$W/tiny-sdxl" --lora l0.h5 "$W/sd/pairs.h5" -o l2.h5
    [ "$status" -eq 2 ]
}

@test "SDXL preset: spo-mkmodel --preset sdxl-tiny makes a model the whole SDXL loop runs on" {
    "$BIN/spo-mkmodel" --preset sdxl-tiny -o m
    for d in text_encoder_2 tokenizer_2; do [ -d "m/$d" ]; done
    grep -q StableDiffusionXLPipeline m/model_index.json
    grep -q '"pad_token": "!"' m/tokenizer_2/special_tokens_map.json
    printf 'a red cube\na blue ball\n' > p.txt
    SPO_BIN="$BIN" "$ROOT/pipelines/spo-sample" -q -m m --spm m/spm/clip --spm-weights m/spm/spm.bin --steps 10 \
        --plain 2 -K 2 --inner 3 -t 0 p.txt -o pairs.h5
    run "$BIN/spo-inspect" pairs.h5
    [[ "$output" == *"/pooled "* ]]
    "$BIN/spo-init" -m m --lora-out l0.h5
    "$BIN/spo-step-update" -q -m m --lora l0.h5 pairs.h5 -o l1.h5 --metrics mt.jsonl
    grep -q '"loss": 0.693147' mt.jsonl
    "$BIN/spo-generate" -q -m m --lora l1.h5 --steps 2 "a red cube" -o g.png
    [ "$("$HELP/spo-pnginfo" g.png)" = 16x16 ]
}

@test "inner steps: a pool whose next pool would be the last step runs its chains to the end" {
    use sd
    # plain steps from the state at 12 to one at 15; a pool there with --inner 3 would pool next at 19, the
    # last step, so its chains take 4 inner steps and end in final latents (no eps)
    local M="$FIX/tiny-sd" E="$FIX/score/embeds.h5"
    cp "$D/run/state_012.h5" s12.h5
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
