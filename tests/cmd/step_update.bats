#!/usr/bin/env bats
# spo-step-update on the tiny fixture model and the pairs of
# tests/fixtures/update: steps, AdamW state, metrics, reruns, MPI ranks,
# and bad inputs (exit 2 or 1, one line, nothing written, input untouched).

load helpers
OUTPUTS="out.h5"

setup_file() {
    export M="$FIX/tiny-sd" P="$FIX/update/pairs.h5"
    cd "$BATS_FILE_TMPDIR"
    "$BIN/spo-init" -m "$M" -e "$FIX/score/embeds.h5" -o s.h5 --seed 3 --lora-out l0.h5
    "$BIN/spo-step-update" -q -m "$M" --lora l0.h5 "$P" -o l2.h5 --steps 2 --batch 3 --metrics m.jsonl
    # the same model with another id (its config differs by a space)
    cp -r "$M" other
    sed -i 's/"sample_size": 16/"sample_size":  16/' other/unet/config.json
    # a LoRA for a UNet of another shape
    mkdir mix && ln -s "$FIX/unet-variants/mix" mix/unet
    "$BIN/spo-init" -m mix --lora-out lmix.h5
    # a fresh LoRA that names no model
    "$BIN/spo-init" -m "$M" --lora-out lfree.h5
}

setup() { cd "$BATS_FILE_TMPDIR"; }

# expect_fail (helpers), and the LoRA l2.h5 the failed runs read is untouched
fails_untouched() {
    cp l2.h5 keep.h5
    expect_fail "$@"
    cmp keep.h5 l2.h5
}

@test "two steps: a valid LoRA with its step count, AdamW state and metrics" {
    "$BIN/spo-inspect" --check l2.h5
    h5dump -a step l2.h5 | grep -q '(0): 2'
    h5dump -d "/adam/mid_block.attentions.0.transformer_blocks.0.attn2.to_k/up_v" l2.h5 >/dev/null
    h5dump -a /adam/guidance l2.h5 | grep -q '(0): 5'
    [ "$(wc -l < m.jsonl)" -eq 2 ]
    head -1 m.jsonl | grep -q '"step": 1, "loss": 0.693147181, "ratio_win": 1, "ratio_lose": 1, "clamped": 0,'
    for k in grad_norm lr pairs seconds; do grep -q "\"$k\"" m.jsonl; done
    sed -n 2p m.jsonl | grep -q '"step": 2,.*"pairs": 3,'
}

@test "--config: a recipe sets the update's options, the command line wins, a bad key exits 2" {
    "$BIN/spo-step-update" -q -m "$M" --lora l0.h5 "$P" -o lc.h5 --steps 1 --config sdxl --metrics mc.jsonl
    grep -q '"lr": 1e-05' mc.jsonl
    "$BIN/spo-step-update" -q -m "$M" --lora l0.h5 "$P" -o lc2.h5 --steps 1 --config sd15 --lr 2e-5 --metrics mc2.jsonl
    grep -q '"lr": 2e-05' mc2.jsonl
    printf 'lr = 1e-4\nbogus = 1\n' > bad.conf
    expect_fail 2 "$BIN/spo-step-update" -m "$M" --lora l0.h5 "$P" -o lc3.h5 --config bad.conf
    [[ "$stderr" == *"bad.conf: line 2: unknown setting 'bogus'"* ]]
}

@test "the input LoRA is untouched and a rerun gives the same LoRA" {
    "$BIN/spo-inspect" --check l0.h5
    h5dump -a step l0.h5 | grep -q '(0): 0'
    "$BIN/spo-step-update" -q -m "$M" --lora l0.h5 "$P" -o again.h5 --steps 2 --batch 3
    m=down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q
    "$HELP/spo-h5cmp" l2.h5 /lora/$m/up again.h5 /lora/$m/up 0
    "$HELP/spo-h5cmp" l2.h5 /adam/$m/down_v again.h5 /adam/$m/down_v 0
}

@test "a LoRA trained in two calls continues its step count and moments" {
    "$BIN/spo-step-update" -q -m "$M" --lora l2.h5 "$P" -o l3.h5 --steps 1 --batch 3
    h5dump -a step l3.h5 | grep -q '(0): 3'
    "$BIN/spo-inspect" --check l3.h5
}

@test "default: one pass over the pairs in batches of 40" {
    "$BIN/spo-step-update" -q -m "$M" --lora l0.h5 "$P" "$P" -o l1.h5 --metrics one.jsonl
    [ "$(wc -l < one.jsonl)" -eq 1 ]
    grep -q '"pairs": 12,' one.jsonl
}

@test "bad input: pairs of another model" {
    fails_untouched 2 "$BIN/spo-step-update" -q -m other --lora lfree.h5 "$P" -o out.h5
    [[ "$stderr" == *"pairs.h5: pairs of model"* ]]
}

@test "bad input: a LoRA of another model" {
    fails_untouched 2 "$BIN/spo-step-update" -q -m other --lora l2.h5 "$P" -o out.h5
    [[ "$stderr" == *"l2.h5: a LoRA of model"* ]]
}

@test "bad input: pairs sampled with another guidance than the LoRA was trained on" {
    fails_untouched 2 "$BIN/spo-step-update" -q -m "$M" --lora l2.h5 "$FIX/update/pairs_g3.h5" -o out.h5
    [[ "$stderr" == *"pairs_g3.h5: pairs sampled with guidance 3"* ]]
}

@test "bad input: pairs files that disagree" {
    fails_untouched 2 "$BIN/spo-step-update" -q -m "$M" --lora l0.h5 "$P" "$FIX/update/pairs_g3.h5" -o out.h5
    [[ "$stderr" == *"pairs_g3.h5: sampled with"* ]]
}

@test "bad input: a LoRA for a UNet of another shape" {
    fails_untouched 2 "$BIN/spo-step-update" -q -m "$M" --lora lmix.h5 "$P" -o out.h5
    [[ "$stderr" == *"lmix.h5: "* ]]
}

@test "bad input: an empty pairs file" {
    fails_untouched 2 "$BIN/spo-step-update" -q -m "$M" --lora l0.h5 "$FIX/update/pairs_empty.h5" -o out.h5
    [[ "$stderr" == *"pairs_empty.h5: no pairs"* ]]
}

@test "bad input: not a pairs file, a missing file, no output" {
    fails_untouched 2 "$BIN/spo-step-update" -q -m "$M" --lora l0.h5 l0.h5 -o out.h5
    fails_untouched 2 "$BIN/spo-step-update" -q -m "$M" --lora l0.h5 nothere.h5 -o out.h5
    fails_untouched 2 "$BIN/spo-step-update" -q -m "$M" --lora l0.h5 "$P"
}

@test "a NaN in the loss stops the tool with exit 1 naming the step" {
    fails_untouched 1 "$BIN/spo-step-update" -q -m "$M" --lora l2.h5 "$P" -o out.h5 --steps 3 --batch 3 --lr 1e20
    [[ "$stderr" == *"step 4: NaN or Inf in the loss or the gradient"* ]]
}

@test "an existing output is kept without -f" {
    fails_untouched 2 "$BIN/spo-step-update" -q -m "$M" --lora l0.h5 "$P" -o l2.h5 --steps 1
}

@test "mpirun: the LoRA after 3 steps agrees for 1, 2 and 3 ranks" {
    if ! ldd "$BIN/spo-step-update" | grep -q libmpi; then
        skip "spo-step-update was built without MPI (install openmpi: scripts/deps.sh)"
    fi
    mr="mpirun --allow-run-as-root --oversubscribe"
    for r in 1 2 3; do
        $mr -np $r "$BIN/spo-step-update" -q -m "$M" --lora l2.h5 "$P" -o r$r.h5 --steps 3 --batch 5 --threads 1
    done
    for m in down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q up_blocks.1.attentions.0.transformer_blocks.0.attn2.to_out.0; do
        for r in 2 3; do
            "$HELP/spo-h5cmp" r1.h5 /lora/$m/up r$r.h5 /lora/$m/up 1e-6
            "$HELP/spo-h5cmp" r1.h5 /lora/$m/down r$r.h5 /lora/$m/down 1e-6
        done
    done
}
