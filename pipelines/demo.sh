#!/bin/sh
# demo.sh — what spo does today, on a tiny random model, offline, in about a
# minute: make the model, sample SPO training pairs for a few prompts with
# the step-aware preference model, look at them. The training step
# (spo-step-update) is not written yet; the demo says so at the end.
set -eu
cd "$(dirname "$0")/.."
BIN=${SPO_BIN:-$(pwd)/bin}
OUT=${SPO_DEMO_OUT:-demo-out}
rm -rf "$OUT"
mkdir -p "$OUT"
say() { printf '\n== %s\n' "$*"; }

say "a tiny Stable Diffusion model with seeded random weights, and a tiny step-aware preference model"
"$BIN/spo-mkmodel" --preset tiny --seed 1 -o "$OUT/tiny"
ls "$OUT/tiny" "$OUT/tiny/spm"

cat > "$OUT/prompts.txt" <<'PROMPTS'
a red apple on a wooden table
a lighthouse at dawn, oil painting
a cat wearing a tiny hat
PROMPTS
say "sampling pairs: 20 DDIM steps, 4 plain, then pools of 4 children scored at every step"
pipelines/spo-sample --dry-run -m "$OUT/tiny" --spm "$OUT/tiny/spm/clip" --spm-weights "$OUT/tiny/spm/spm.bin" \
    "$OUT/prompts.txt" -o "$OUT/pairs.h5" | sed -n '1,3p;7,10p'
echo "..."
pipelines/spo-sample -q -m "$OUT/tiny" --spm "$OUT/tiny/spm/clip" --spm-weights "$OUT/tiny/spm/spm.bin" \
    --keep "$OUT/work" --sheet "$OUT/final.png" "$OUT/prompts.txt" -o "$OUT/pairs.h5"

say "the pairs file (spo-inspect)"
"$BIN/spo-inspect" --check "$OUT/pairs.h5"
"$BIN/spo-inspect" "$OUT/pairs.h5" | grep -v '^  history' | sed -n '/^datasets:/,$p'

say "one pool: the 4 children of each prompt at step 10, as their predicted clean images"
"$BIN/spo-decode" -q -m "$OUT/tiny" -e "$OUT/work/embeds.h5" "$OUT/work/pool_010.h5" --sheet "$OUT/pool_010.png"
"$BIN/spo-inspect" "$OUT/work/scores_010.h5" | grep '^  /scores'

say "results"
echo "  $OUT/pairs.h5        training pairs (h5dump -H $OUT/pairs.h5)"
echo "  $OUT/final.png       the final images, one row per prompt"
echo "  $OUT/pool_010.png    a pool: prompts as rows, children as columns"
echo "  $OUT/work/           every intermediate file of the loop"
echo
echo "Not yet: spo-step-update (the DPO update of the LoRA from these pairs) and the CUDA path;"
echo "the model is random, so the images are noise: this shows the machinery, not a result."
