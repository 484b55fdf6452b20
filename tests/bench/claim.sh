#!/bin/bash
# claim.sh — the SPO paper's claim in miniature (issue 11): on the same tiny
# random model, built-in scorer, prompts, recipe and seeds, compare
#   spo       SPO's step-wise pairs (pools of K = 4 children, step-aware score)
#   traj2     trajectory-level pairs, Diffusion-DPO style: 2 independent chains
#             per prompt, only the final images compared, the label given to
#             every step (spo-train --pairs trajectory)
#   traj3     the same with 3 chains (best vs worst), the sampling budget of spo
#   none      no training: the validation score of the initial LoRA
# and print the final validation score of every run, the mean and spread of
# each method, and the seconds. A bench, not a test: nothing passes or fails.
#
# Usage: tests/bench/claim.sh [OUTDIR]     (env: SEEDS="1 2 3", METHODS, SCORER)
# Tools: bin/ and pipelines/ of this checkout (make first), or SPO_BIN.
#
# The recipe is train.bats' learning test: 8 prompts, 2 epochs of 2 rounds of
# 4 prompts, 10 steps of which 2 plain, -t 0, batch 8, lr 1e-3, 2 validation
# prompts x 2 images (validation seed 0, the same for every run).
# Budget per prompt and round, in guided UNet evaluations while sampling:
#   spo   1 (x_T) + 2 plain + 4 children x 7 pooled steps (the last step's
#         children need none) = 31, and 32 scorer calls; up to 8 pairs
#   trajN N chains x 10 = 10 N (20 or 30), and N scorer calls; up to 8 pairs
# Update: the same pairs per prompt, batch and steps for all; a trajectory
# pair costs 4 UNet images per pass instead of 2 (the loser's own parent).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$here/../.." && pwd)
export SPO_BIN=${SPO_BIN:-$ROOT/bin}
PIPE=$ROOT/pipelines
SEEDS=${SEEDS:-1 2 3}
METHODS=${METHODS:-none spo traj2 traj3}
SCORER=${SCORER:-saturation}
OUT=${1:-$(mktemp -d "${TMPDIR:-/tmp}/spo-claim.XXXXXX")}
mkdir -p -- "$OUT"
cd -- "$OUT"
[ -x "$SPO_BIN/spo-step-update" ] || { echo "claim.sh: $SPO_BIN/spo-step-update not built (make)" >&2; exit 1; }

"$SPO_BIN/spo-mkmodel" -q --preset tiny --seed 1 --no-spm -o model -f
printf '%s\n' "a red apple on a wooden table" "a lighthouse at dawn, oil painting" "a cat wearing a tiny hat" \
    "a bowl of lemons" "a street market at night" "a field of tulips" "a sailing boat on a calm sea" \
    "a bird on a branch" > prompts.txt
printf 'a beautiful lake\na city at sunset\n' > val.txt
recipe=(-q -m model --scorer "$SCORER" --epochs 2 --round-prompts 4 --batch 8 --steps 10 --plain 2 -t 0 --lr 1e-3
    --val-images 2 --val-prompts val.txt)

budget() { case "$1" in none) echo 0 ;; spo) echo 31 ;; traj*) echo $((10 * ${1#traj})) ;; esac; }
: > results.tsv
for m in $METHODS; do
    for s in $SEEDS; do
        extra=()
        case "$m" in
        none) extra=(--max-rounds 0) ;;
        spo) ;;
        traj*) extra=(--pairs trajectory --chains "${m#traj}") ;;
        *) echo "claim.sh: unknown method '$m'" >&2; exit 2 ;;
        esac
        t0=$(date +%s.%N)
        "$PIPE/spo-train" "${recipe[@]}" "${extra[@]}" --seed "$s" prompts.txt -o "run_${m}_$s" -f
        secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
        M=run_${m}_$s/metrics.jsonl
        final=$(jq -s 'map(select(.val_score != null)) | .[-1].val_score' "$M")
        first=$(jq -s 'map(select(.val_score != null)) | .[0].val_score' "$M")
        pairs=$(jq -s 'map(select(.round != null) | .pairs) | add // 0' "$M")
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$m" "$s" "$final" "$first" "$pairs" "$(budget "$m")" "$secs" >> results.tsv
        echo "claim.sh: $m seed $s: final $final (initial $first), $pairs pairs, $secs s" >&2
    done
done

{
    echo "Final validation $SCORER (mean over 2 prompts x 2 images, validation seed 0) after 2 epochs (4 rounds, 16 AdamW steps)"
    echo
    echo "| method | seed | final val score | change from initial | pairs trained | UNet evals / prompt / round (sampling) | seconds |"
    echo "|---|---|---|---|---|---|---|"
    awk -F'\t' '{ printf "| %s | %s | %.6f | %+.6f | %s | %s | %s |\n", $1, $2, $3, $3 - $4, $5, $6, $7 }' results.tsv
    echo
    echo "| method | runs | mean final | sd | min .. max | mean change | mean seconds |"
    echo "|---|---|---|---|---|---|---|"
    awk -F'\t' '{ n[$1]++; s[$1] += $3; q[$1] += $3 * $3; d[$1] += $3 - $4; t[$1] += $7
                  if (!($1 in lo) || $3 < lo[$1]) lo[$1] = $3; if (!($1 in hi) || $3 > hi[$1]) hi[$1] = $3
                  if (!($1 in ord)) { ord[$1] = ++k; name[k] = $1 } }
        END { for (i = 1; i <= k; i++) { m = name[i]; mu = s[m] / n[m]; v = n[m] > 1 ? (q[m] - n[m] * mu * mu) / (n[m] - 1) : 0
              printf "| %s | %d | %.6f | %.6f | %.6f .. %.6f | %+.6f | %.1f |\n", m, n[m], mu, sqrt(v > 0 ? v : 0), lo[m], hi[m], d[m] / n[m], t[m] / n[m] } }' results.tsv
} | tee claim.md
echo "claim.sh: runs and results in $OUT" >&2
