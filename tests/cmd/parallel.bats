#!/usr/bin/env bats
# The sampling pipelines: two shards through GNU parallel, merged, give
# exactly the pairs of a single run (noise keyed by seed and prompt id);
# --dry-run shows every tool call; bad calls exit 2.

load helpers

setup_file() {
    export P="$ROOT/pipelines"
    export F="$FIX"
    export SPO_BIN="$BIN"
    export ARGS="-q -m $F/tiny-sd --spm $F/tiny-spm/clip --spm-weights $F/tiny-spm/spm.bin --steps 8 --plain 2 --seed 3"
    cd "$BATS_FILE_TMPDIR"
    printf 'a red apple\na blue sea at dawn\na cat\nan old castle in the fog\nthree yellow tulips\n' > prompts.txt
    "$P/spo-sample" $ARGS prompts.txt -o single.h5
}

setup() { cd "$BATS_FILE_TMPDIR"; }

@test "single run leaves a valid pairs file with pairs in it" {
    "$BIN/spo-inspect" --check single.h5
    n=$(h5dump -H -d /key single.h5 | grep -o 'SIMPLE { ( [0-9]*' | grep -o '[0-9]*$')
    echo "pairs: $n"
    [ "$n" -ge 1 ]
}

# A shard batches other latents through the UNet and other prompts through
# the text encoder: the noise is the same (keyed by seed and prompt id) and
# the keys and timesteps are equal exactly, the floats by rounding (measured
# 1.1e-6 relative L2 on AMD EPYC with OpenBLAS 0.3.21; exact on some CPUs).
@test "two shards with GNU parallel, merged, equal the single run (keys exactly, floats to rounding)" {
    "$P/spo-sample-parallel" --shards 2 -j 2 $ARGS prompts.txt -o merged.h5 -f
    "$BIN/spo-inspect" --check merged.h5
    for d in key timestep; do "$HELP/spo-h5cmp" single.h5 /$d merged.h5 /$d exact; done
    for d in parent win lose score_win score_lose cond uncond; do "$HELP/spo-h5cmp" single.h5 /$d merged.h5 /$d 1e-5; done
}

@test "three shards run one after another give the same pairs" {
    "$P/spo-sample-parallel" --shards 3 -j 1 $ARGS prompts.txt -o merged3.h5 -f
    "$HELP/spo-h5cmp" single.h5 /key merged3.h5 /key exact
    "$HELP/spo-h5cmp" single.h5 /win merged3.h5 /win 1e-5
}

@test "--dry-run prints every tool call and runs nothing" {
    run "$P/spo-sample" -n -m M --scorer colorfulness prompts.txt -o never.h5 --steps 6 --plain 2
    [ "$status" -eq 0 ]
    [ ! -e never.h5 ]
    [ "$(grep -c 'spo-pool' <<< "$output")" -eq 6 ]
    [ "$(grep -c 'spo-score' <<< "$output")" -eq 4 ]
    [ "$(grep -c 'spo-pair' <<< "$output")" -eq 4 ]
    [ "$(grep -c 'spo-resample' <<< "$output")" -eq 6 ]
    [[ "$output" == *"-K 1 "*"| "*"spo-resample - -o"* ]]
    run "$P/spo-sample-parallel" -n --gpus 0,1 -m M --scorer colorfulness prompts.txt -o never.h5
    [ "$status" -eq 0 ]
    [[ "$output" == *"CUDA_VISIBLE_DEVICES"*"--shard {}/2"* ]]
    [[ "$output" == *"spo-pair --merge"* ]]
}

@test "--keep keeps every intermediate file, each valid" {
    "$P/spo-sample" $ARGS prompts.txt -o kept.h5 --keep work
    ls work/state_000.h5 work/pool_002.h5 work/scores_007.h5 work/state_008.h5
    for f in work/*.h5; do "$BIN/spo-inspect" --check "$f" > /dev/null; done
}

bad() {
    run --separate-stderr "$@"
    echo "status=$status stderr=$stderr"
    [ "$status" -eq 2 ]
    [ -n "$stderr" ]
    [ ! -e out.h5 ]
}

@test "bad calls exit 2 with a message" {
    bad "$P/spo-sample" --scorer colorfulness prompts.txt -o out.h5
    bad "$P/spo-sample" -m M prompts.txt -o out.h5
    bad "$P/spo-sample" -m M --scorer x --spm y prompts.txt -o out.h5
    bad "$P/spo-sample" -m M --scorer x prompts.txt
    bad "$P/spo-sample" -m M --scorer x --bogus prompts.txt -o out.h5
    bad "$P/spo-sample" -m M --scorer x --steps 4 --plain 4 prompts.txt -o out.h5
    bad "$P/spo-sample" -m M --scorer x prompts.txt -o nodir/out.h5
    bad "$P/spo-sample" -m "$F/tiny-sd" --scorer nope prompts.txt -o out.h5
    bad "$P/spo-sample-parallel" --shard 0/2 -m M --scorer x prompts.txt -o out.h5
    bad "$P/spo-sample-parallel" -j 0 -m M --scorer x prompts.txt -o out.h5
}
