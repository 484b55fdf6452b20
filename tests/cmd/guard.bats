#!/usr/bin/env bats
# The device-memory guard (SPO_DEV_GUARD=1, lib/ops/cpu/cpu_guard.c): every
# tool with --device runs on the tiny model with device buffers that fault
# on any host access outside the op table, as device memory would on a GPU,
# and writes exactly what it writes without the guard.

load helpers

setup_file() {
    export M="$FIX/tiny-sd" E="$FIX/score/embeds.h5" POOL="$FIX/score/pool.h5"
    export SPM="--spm $FIX/tiny-spm/clip --spm-weights $FIX/tiny-spm/spm.bin"
    export SPO_DEVICE=cpu
    cd "$BATS_FILE_TMPDIR"
    "$BIN/spo-init" -m "$M" -e "$E" --seed 2 -o s0.h5 --lora-out l0.h5
}

setup() { cd "$BATS_FILE_TMPDIR"; }

# every dataset of A equals B's exactly (floats with RTOL 0, integers exactly)
same_data() {
    local d n=0 rc
    for d in $(h5ls -r "$1" | awk '$2 == "Dataset" { print $1 }'); do
        rc=0
        "$HELP/spo-h5cmp" "$1" "$d" "$2" "$d" 0 > /dev/null 2>&1 || rc=$?
        if [ "$rc" -eq 2 ]; then # not floats
            rc=0
            "$HELP/spo-h5cmp" "$1" "$d" "$2" "$d" exact > /dev/null 2>&1 || rc=$?
        fi
        if [ "$rc" -eq 2 ]; then # not numbers: the same text
            rc=0
            [ "$(h5dump -d "$d" -y "$1" | tail -n +2)" = "$(h5dump -d "$d" -y "$2" | tail -n +2)" ] || rc=1
        fi
        [ "$rc" -eq 0 ] || { echo "$d differs"; return 1; }
        n=$((n + 1))
    done
    [ "$n" -gt 0 ]
}

# run "$@" without and with the guard, writing -o plain.EXT and -o guard.EXT (replaced)
both() {
    local ext="$1"
    shift
    rm -rf "plain.$ext" "guard.$ext"
    "$@" -o "plain.$ext"
    SPO_DEV_GUARD=1 "$@" -o "guard.$ext"
}

@test "spo-encode under the guard" {
    printf 'a red cat\na blue dog on a mat\n' > p.txt
    both h5 "$BIN/spo-encode" -q -m "$M" p.txt
    same_data guard.h5 plain.h5
}

@test "spo-pool under the guard" {
    both h5 "$BIN/spo-pool" -q -m "$M" -e "$E" --lora l0.h5 s0.h5
    same_data guard.h5 plain.h5
}

@test "spo-score (preference model and built-in scorer) under the guard" {
    both h5 "$BIN/spo-score" -q -m "$M" $SPM -e "$E" "$POOL"
    same_data guard.h5 plain.h5
    both h5 "$BIN/spo-score" -q -m "$M" --scorer saturation "$POOL"
    same_data guard.h5 plain.h5
}

@test "spo-step-update under the guard" {
    both h5 "$BIN/spo-step-update" -q -m "$M" --lora l0.h5 "$FIX/update/pairs.h5" --steps 2 --batch 3
    same_data guard.h5 plain.h5
}

@test "spo-generate and spo-decode under the guard" {
    both d "$BIN/spo-generate" -q -m "$M" --lora l0.h5 --steps 3 --seed 4 "a red apple" "a cat"
    for f in plain.d/*.png; do cmp "$f" "guard.d/${f#plain.d/}"; done
    both e "$BIN/spo-decode" -q -m "$M" -e "$E" "$POOL"
    for f in plain.e/*.png; do cmp "$f" "guard.e/${f#plain.e/}"; done
}

@test "the guard is on: a host read of device memory faults" {
    run env SPO_DEV_GUARD=1 "$HELP/spo-guardprobe"
    [ "$status" -ne 0 ]
    [[ "$output" == *"argument 'x' is not device memory"* ]]
    run env SPO_DEV_GUARD=0 "$HELP/spo-guardprobe"
    [ "$status" -eq 0 ]
}
