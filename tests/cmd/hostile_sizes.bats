#!/usr/bin/env bats
# Sizes read from the loop's HDF5 files are checked before anything is
# allocated (issue 9, class 3): a file of a few KB that declares latents of
# 3x4x100000x100000, a pool of K = 2^31 children, 2^31 prompts or pairs, or
# a width of 2^60+16 is refused with one line naming the file, exit 2,
# under a 2 GB address-space limit (before the fix: hundreds of GB asked,
# or a width read as 16 and a run that succeeds). A dataset that stores
# fewer bytes than its shape declares is refused too, not read as zeros.

load helpers
OUTPUTS=out.h5

setup_file() {
    export M="$FIX/tiny-sd" E="$FIX/score/embeds.h5" POOL="$FIX/score/pool.h5" PAIRS="$FIX/update/pairs.h5"
    export HOST="$HELP/spo-hostile"
}

# hostile FILE SHAPE DATASET...: a copy of FILE whose DATASETs declare SHAPE, written nowhere
hostile() {
    local d
    cp "$1" h.h5
    for d in "${@:3}"; do "$HOST" h.h5 huge "$d" "$2"; done
    [ "$(stat -c %s h.h5)" -lt 200000 ]
}

# run a tool with at most 2 GB of address space, 60 s; under ASan (which
# reserves terabytes of shadow address space) no allocation over 2 GB instead
limited() {
    if ldd "$BIN/spo-pool" | grep -q libasan; then
        ASAN_OPTIONS="${ASAN_OPTIONS:-}:max_allocation_size_mb=2000:allocator_may_return_null=1" timeout 60 "$@"
    else
        (ulimit -v 2000000; exec timeout 60 "$@")
    fi
}

@test "class 3: the limited run itself works on the real files" {
    limited "$BIN/spo-init" -m "$M" -e "$E" --seed 2 -o s0.h5
    limited "$BIN/spo-pool" -q -m "$M" -e "$E" s0.h5 -o p.h5
    limited "$BIN/spo-inspect" --check "$PAIRS"
}

@test "class 3: a state of 3x4x100000x100000 latents is refused by spo-pool" {
    "$BIN/spo-init" -m "$M" -e "$E" --seed 2 -o s0.h5
    hostile s0.h5 3x4x100000x100000 /latents
    TOOL=spo-pool expect_fail 2 limited "$BIN/spo-pool" -q -m "$M" -e "$E" h.h5 -o out.h5
    [[ "$stderr" == *h.h5* ]]
}

@test "class 3: a width of 2^60+16 is not read as 16" {
    "$BIN/spo-init" -m "$M" -e "$E" --seed 2 -o s0.h5
    hostile s0.h5 3x4x16x1152921504606846992 /latents
    TOOL=spo-pool expect_fail 2 limited "$BIN/spo-pool" -q -m "$M" -e "$E" h.h5 -o out.h5
    [[ "$stderr" == *h.h5* ]]
}

@test "class 3: a pool of K = 2^31 children is refused by spo-score and spo-resample" {
    hostile "$POOL" 3x2147483648x4x16x16 /children /eps /x0_hat
    TOOL=spo-score expect_fail 2 limited "$BIN/spo-score" --scorer saturation -m "$M" h.h5 -o out.h5
    [[ "$stderr" == *h.h5* ]]
    TOOL=spo-resample expect_fail 2 limited "$BIN/spo-resample" h.h5 -o out.h5
    [[ "$stderr" == *h.h5* ]]
}

@test "class 3: 2^31 prompts in an embeddings file are refused by spo-init" {
    hostile "$E" 2147483648 /prompt_id
    TOOL=spo-init expect_fail 2 limited "$BIN/spo-init" -m "$M" -e h.h5 --seed 2 -o out.h5
    [[ "$stderr" == *h.h5* ]]
}

@test "class 3: 2^31 pairs are refused by spo-step-update" {
    "$BIN/spo-init" -m "$M" --seed 1 --lora-out l0.h5
    hostile "$PAIRS" 2147483648x4x16x16 /win /lose /parent
    TOOL=spo-step-update expect_fail 2 limited "$BIN/spo-step-update" -q -m "$M" --lora l0.h5 h.h5 -o out.h5
    [[ "$stderr" == *h.h5* ]]
}

@test "class 3: a dataset storing fewer bytes than its shape declares is refused, not read as zeros" {
    cp "$PAIRS" h.h5
    "$HOST" h.h5 hollow /win x
    TOOL=spo-inspect expect_fail 2 "$BIN/spo-inspect" --check h.h5
    [[ "$stderr" == *"h.h5: /win stores fewer bytes than its shape declares"* ]]
}

@test "class 10: latents the UNet cannot take (17x17) are refused naming the state file" {
    "$BIN/spo-init" -m "$M" -e "$E" --seed 2 --latent-size 17 -o s17.h5
    TOOL=spo-pool expect_fail 2 "$BIN/spo-pool" -q -m "$M" -e "$E" s17.h5 -o out.h5
    [[ "$stderr" == *"s17.h5: /latents are 17x17, the UNet takes multiples of 2"* ]]
}
