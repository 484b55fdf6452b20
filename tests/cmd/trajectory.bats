#!/usr/bin/env bats
# Trajectory-level pairs (Diffusion-DPO style, the baseline of SPO's claim):
# spo-sample --pairs trajectory and spo-pair --trajectory make valid pairs
# files with /parent_lose, spo-step-update trains on them, merging keeps
# /parent_lose, spo-train passes --pairs on. The bench that compares the
# methods is tests/bench/claim.sh.

load helpers

setup_file() {
    cd "$BATS_FILE_TMPDIR"
    printf 'a red apple\na blue sea at dawn\na cat\n' > prompts.txt
    # 3 prompts, 6 steps, 2 plain: 2 chains each, up to 3 x 4 pairs
    "$ROOT/pipelines/spo-sample" -q -m "$FIX/tiny-sd" --scorer saturation --steps 6 --plain 2 -t 0 --seed 7 \
        --pairs trajectory prompts.txt -o traj.h5 --keep K
    "$ROOT/pipelines/spo-sample" -q -m "$FIX/tiny-sd" --scorer saturation --steps 6 --plain 2 -t 0 --seed 8 \
        prompts.txt -o step.h5
}

setup() { cd "$BATS_FILE_TMPDIR"; }

@test "spo-sample --pairs trajectory writes valid pairs/2 with the loser's own parent, labelled by the final scores" {
    run "$BIN/spo-inspect" --check traj.h5
    [ "$status" -eq 0 ]
    [[ "$output" == *"ok"* ]]
    h5ls traj.h5 | grep -q '^parent_lose .*{12, 4, 16, 16}'
    # per pair: the winner's final score is the higher; every step after --plain (timesteps 499 .. 1)
    paste <(data traj.h5 /score_win) <(data traj.h5 /score_lose) | awk '$1 <= $2 { exit 1 }'
    [ "$(data traj.h5 /timestep | sort -un | tr '\n' ' ')" = "1 167 333 499 " ]
    # pair of prompt 0 at step 2: parent and win from one chain, parent_lose and lose from the other
    w=0 l=1
    awk -v a="$(data K/chain_00/final_scores.h5 /scores | head -1)" -v b="$(data K/chain_01/final_scores.h5 /scores | head -1)" \
        'BEGIN { exit !(a < b) }' && w=1 l=0
    cmp <(data traj.h5 /parent -s 0,0,0,0 -c 1,4,16,16) <(data K/chain_0$w/pool_002.h5 /parent -s 0,0,0,0 -c 1,4,16,16)
    cmp <(data traj.h5 /win -s 0,0,0,0 -c 1,4,16,16) <(data K/chain_0$w/pool_002.h5 /children -s 0,0,0,0,0 -c 1,1,4,16,16)
    cmp <(data traj.h5 /parent_lose -s 0,0,0,0 -c 1,4,16,16) <(data K/chain_0$l/pool_002.h5 /parent -s 0,0,0,0 -c 1,4,16,16)
    cmp <(data traj.h5 /lose -s 0,0,0,0 -c 1,4,16,16) <(data K/chain_0$l/pool_002.h5 /children -s 0,0,0,0,0 -c 1,1,4,16,16)
    # step-wise pairs have no /parent_lose
    ! h5ls step.h5 | grep -q parent_lose
}

@test "spo-step-update trains on trajectory pairs: a fresh LoRA starts at ratio 1 and loss ln 2, and moves" {
    "$BIN/spo-init" -m "$FIX/tiny-sd" --seed 1 --lora-out L0.h5 -f
    "$BIN/spo-step-update" -q -m "$FIX/tiny-sd" --lora L0.h5 traj.h5 -o L1.h5 -f --batch 4 --seed 3 --lr 1e-3 \
        --metrics m.jsonl
    [ "$(wc -l < m.jsonl)" -eq 3 ]
    jq -se '.[] | select(.step == 1) | .ratio_win == 1 and .ratio_lose == 1 and (.loss - 0.693147 | fabs) < 1e-5' m.jsonl
    jq -se '.[] | select(.step == 3) | .ratio_win != 1 and (.loss | isfinite) and .pairs == 4' m.jsonl
    d=/lora/down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q/up
    ! h5diff -q L0.h5 L1.h5 $d $d
}

@test "spo-pair --merge keeps /parent_lose; step-wise pairs get their /parent there" {
    "$BIN/spo-pair" --merge traj.h5 step.h5 -o both.h5 -f
    "$BIN/spo-inspect" --check both.h5
    nt=$(data traj.h5 /timestep | wc -l) ns=$(data step.h5 /timestep | wc -l)
    [ "$(h5ls both.h5 | sed -n 's/^parent_lose .*{\([0-9]*\),.*/\1/p')" -eq $((nt + ns)) ]
    # keys sort the trajectory pairs (seed 7) first: the first step-wise row's /parent_lose is its /parent
    cmp <(data both.h5 /parent_lose -s $nt,0,0,0 -c 1,4,16,16) <(data step.h5 /parent -s 0,0,0,0 -c 1,4,16,16)
    cmp <(data both.h5 /parent_lose -s 0,0,0,0 -c 1,4,16,16) <(data traj.h5 /parent_lose -s 0,0,0,0 -c 1,4,16,16)
    # and spo-step-update trains on the mix
    "$BIN/spo-init" -m "$FIX/tiny-sd" --seed 1 --lora-out L0m.h5 -f
    "$BIN/spo-step-update" -q -m "$FIX/tiny-sd" --lora L0m.h5 both.h5 -o L2.h5 -f --batch 64 --seed 3
}

@test "spo-pair --trajectory refuses chains of the same seed, an odd argument count, and --merge with it" {
    TOOL=spo-pair expect_fail 2 "$BIN/spo-pair" --trajectory -e K/embeds.h5 K/chain_00/pool_003.h5 \
        K/chain_00/final_scores.h5 K/chain_00/pool_003.h5 K/chain_00/final_scores.h5 -o same.h5
    [[ "$stderr" == *"same noise seed"* ]]
    TOOL=spo-pair expect_fail 2 "$BIN/spo-pair" --trajectory -e K/embeds.h5 K/chain_00/pool_003.h5 \
        K/chain_00/final_scores.h5 K/chain_01/pool_003.h5 -o odd.h5
    TOOL=spo-pair expect_fail 2 "$BIN/spo-pair" --trajectory --merge traj.h5 -o m.h5
    # a step's scores in place of the final ones
    "$BIN/spo-score" -q -m "$FIX/tiny-sd" --scorer saturation -e K/embeds.h5 K/chain_01/pool_003.h5 -o s3.h5 -f
    TOOL=spo-pair expect_fail 2 "$BIN/spo-pair" --trajectory -e K/embeds.h5 K/chain_00/pool_003.h5 \
        K/chain_00/final_scores.h5 K/chain_01/pool_003.h5 s3.h5 -o wrong.h5
}

@test "spo-train --pairs trajectory samples with it (dry run); a bad --pairs or --chains exits 2" {
    run "$ROOT/pipelines/spo-train" -n -m "$FIX/tiny-sd" --scorer saturation --pairs trajectory --chains 3 \
        prompts.txt -o dry
    [ "$status" -eq 0 ]
    grep -q 'spo-sample .*--pairs trajectory --chains 3' <<< "$output"
    run "$ROOT/pipelines/spo-train" -n -m "$FIX/tiny-sd" --scorer saturation prompts.txt -o dry
    ! grep -q -- '--pairs' <<< "$output"
    TOOL=spo-train expect_fail 2 "$ROOT/pipelines/spo-train" -n -m "$FIX/tiny-sd" --scorer saturation --pairs dpo \
        prompts.txt -o dry
    TOOL=spo-train expect_fail 2 "$ROOT/pipelines/spo-train" -n -m "$FIX/tiny-sd" --scorer saturation --chains 1 \
        prompts.txt -o dry
    TOOL=spo-sample expect_fail 2 "$ROOT/pipelines/spo-sample" -n -m "$FIX/tiny-sd" --scorer saturation \
        --pairs trajectory --chains 65 prompts.txt -o x.h5
}
