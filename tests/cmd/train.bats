#!/usr/bin/env bats
# pipelines/spo-train: --dry-run shows every call with the official
# defaults; --config files; the run directory (settings, state, validation,
# refusal of other settings, --force, --resume); bad input; spo-plot. The
# learning, resume-after-kill and shard/rank tests need spo-step-update and
# skip without it.

load helpers

setup_file() {
    export P="$ROOT/pipelines" F="$FIX"
    export SPO_BIN="$BIN"
    # mpirun as root (CI) and with more ranks than cores
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
    # built-in scorers differ by little between children: every pair with a gap is kept (-t 0)
    export TINY="-m $F/tiny-sd --scorer saturation --steps 6 --plain 2 -t 0 --round-prompts 2 --epochs 2"
    cd "$BATS_FILE_TMPDIR"
    printf 'a red apple\n\na blue sea at dawn\na cat\nan old castle in the fog\nthree yellow tulips\n' > prompts.txt
}

setup() { cd "$BATS_FILE_TMPDIR"; }

have_update() { [ -x "$BIN/spo-step-update" ] || command -v spo-step-update > /dev/null; }

# every LoRA and AdamW dataset of A equals B's within TOL (0: exactly)
lora_cmp() {
    local d n=0
    for d in $(h5ls -r "$1" | awk '$2 == "Dataset" && $1 ~ /^\/(lora|adam)\// { print $1 }'); do
        "$HELP/spo-h5cmp" "$1" "$d" "$2" "$d" "$3" > /dev/null || { echo "$d differs"; return 1; }
        n=$((n + 1))
    done
    [ "$n" -gt 0 ]
}

@test "--dry-run prints every call of every round with the official defaults, and runs nothing" {
    run "$P/spo-train" -n -m "$F/tiny-sd" --scorer saturation prompts.txt -o dry
    [ "$status" -eq 0 ]
    [ ! -e dry ]
    # 5 prompts, 40 per round: 1 round per epoch, 10 epochs
    [ "$(grep -c '/spo-sample ' <<< "$output")" -eq 10 ]
    [ "$(grep -c 'spo-step-update ' <<< "$output")" -eq 10 ]
    # validation before training and after each epoch: 11 scorings of 20-step chains
    [ "$(grep -c 'spo-score ' <<< "$output")" -eq 11 ]
    [ "$(grep -c 'spo-pool .* -o - | .*spo-resample' <<< "$output")" -eq $((11 * 19)) ]
    [[ "$output" == *"spo-init -m $F/tiny-sd --seed 42 --lora-out "*" -r 4 --alpha 4"* ]]
    [[ "$output" == *"--steps 20 -K 4 --plain 4 -t 0.3 -g 5 --eta 1"* ]]
    [[ "$output" == *"--batch 40 --seed "*" --lr 6e-5 --beta 10 --ratio-clip 0.1 --metrics "* ]]
    # each round samples with the LoRA the round before wrote
    [[ "$output" == *"--lora dry/ckpt/lora_00003.h5 --seed"* ]]
    # a new seed for every round, the same for the same run
    [ "$(grep -o 'spo-sample .* --seed [0-9]*' <<< "$output" | grep -o '[0-9]*$' | sort -u | wc -l)" -eq 10 ]
    run2=$("$P/spo-train" -n -m "$F/tiny-sd" --scorer saturation prompts.txt -o dry 2> /dev/null)
    [ "$run2" = "$(grep -v '^spo-train:' <<< "$output")" ]
}

@test "--dry-run with --gpus spreads the sampling with GNU parallel and the update over MPI ranks" {
    run "$P/spo-train" -n $TINY --gpus 0,1 prompts.txt -o dry
    [ "$status" -eq 0 ]
    [[ "$output" == *"spo-sample-parallel --shards 2 --gpus 0,1 "* ]]
    [[ "$output" == *"mpirun -np 2 "*"spo-step-update "* ]]
    printf '2/node1\n2/node2\n' > hosts
    run "$P/spo-train" -n $TINY --sshloginfile hosts --np 4 prompts.txt -o dry
    [ "$status" -eq 0 ]
    [[ "$output" == *"spo-sample-parallel --shards 1 --sshloginfile hosts "* ]]
    [[ "$output" == *"mpirun -np 4 --hostfile dry/hostfile "* ]]
}

@test "rounds, epochs and the seeded shuffle: 5 prompts, 2 per round, 2 epochs = 6 rounds" {
    run "$P/spo-train" -n $TINY prompts.txt -o dry
    [ "$status" -eq 0 ]
    [ "$(grep -c '^# round' <<< "$output")" -eq 6 ]
    [[ "$output" == *"# round 6/6 (epoch 2, round 3/3)"* ]]
    [ "$(grep -c 'spo-score ' <<< "$output")" -eq 3 ]
}

@test "--config reads KEY=VALUE lines; the command line wins; bad files exit 2" {
    printf '# a recipe\nlr = 1e-4\n\nepochs=1\nchildren=2\nbeta=5\r\n' > recipe.conf
    run "$P/spo-train" -n -m "$F/tiny-sd" --scorer saturation --config recipe.conf --beta 7 prompts.txt -o dry
    [ "$status" -eq 0 ]
    [[ "$output" == *"-K 2 "* ]]
    [[ "$output" == *"--lr 1e-4 --beta 7 "* ]]
    [ "$(grep -c 'spo-step-update ' <<< "$output")" -eq 1 ]
    printf 'lr=1e-4\nbogus=3\n' > bad.conf
    run "$P/spo-train" -n -m "$F/tiny-sd" --scorer saturation --config bad.conf prompts.txt -o dry
    [ "$status" -eq 2 ]
    [[ "$output" == "spo-train: bad.conf: line 2: unknown setting 'bogus'" ]]
    printf 'just words\n' > bad2.conf
    run "$P/spo-train" -n -m "$F/tiny-sd" --scorer saturation --config bad2.conf prompts.txt -o dry
    [ "$status" -eq 2 ]
    [[ "$output" == *"bad2.conf: line 1: expected KEY=VALUE"* ]]
    run "$P/spo-train" -n -m "$F/tiny-sd" --scorer saturation --config nowhere.conf prompts.txt -o dry
    [ "$status" -eq 2 ]
    [[ "$output" == *"nowhere.conf: cannot read the config file"* ]]
    run "$P/spo-train" -n -m "$F/tiny-sd" --scorer saturation --epochs two prompts.txt -o dry
    [ "$status" -eq 2 ]
    [[ "$output" == *"--epochs takes an integer"* ]]
}

@test "--config sd15 and sdxl: the official recipes (pipelines/recipes) reach every tool" {
    run "$P/spo-train" -n -m "$F/tiny-sd" --scorer saturation --config sd15 prompts.txt -o dry
    [ "$status" -eq 0 ]
    [[ "$output" == *"-K 4 --plain 4 -t 0.3 -g 5 --eta 1 "* ]]
    [[ "$output" == *"--batch 40 "*"--lr 6e-5 --beta 10 --ratio-clip 0.1 "* ]]
    [[ "$output" == *"--lora-out "*" -r 4 --alpha 4 "* ]]
    [[ "$output" != *"--inner"* ]]
    run "$P/spo-train" -n -m "$F/tiny-sd" --scorer saturation --config sdxl prompts.txt -o dry
    [ "$status" -eq 0 ]
    [[ "$output" == *"-K 2 --plain 4 -t 0.4 -g 5 --eta 1 "*"--inner 3 "* ]]
    [[ "$output" == *"--batch 16 "*"--lr 1e-5 --beta 10 --ratio-clip 0.1 "* ]]
    [[ "$output" == *"--lora-out "*" -r 64 --alpha 64 "* ]]
    # 5 prompts in rounds of 8: one round an epoch, 10 epochs
    [ "$(grep -c 'spo-step-update ' <<< "$output")" -eq 10 ]
    run "$P/spo-train" -n -m "$F/tiny-sd" --scorer saturation --config sdxl3 prompts.txt -o dry
    [ "$status" -eq 2 ]
    [[ "$output" == *"sdxl3: cannot read the config file (nor a recipe: sd15, sdxl)"* ]]
}

@test "a new run directory: settings, state, initial LoRA, validation images and score, plot" {
    "$P/spo-train" -q $TINY --max-rounds 0 prompts.txt -o run0
    "$BIN/spo-inspect" --check run0/ckpt/lora_init.h5
    grep -qx 'round=0' run0/state
    grep -qx 'lr=6e-5' run0/settings
    [ "$(wc -l < run0/prompts.jsonl)" -eq 5 ]
    [ -s run0/val/epoch_000/sheet.png ]
    [ "$(ls run0/val/epoch_000/images | wc -l)" -eq 2 ]
    jq -e '.epoch == 0 and (.val_score | type) == "number"' run0/metrics.jsonl
    [ -s run0/plots/metrics.png ]
    # the settings file is a config file: the same run again from it
    run "$P/spo-train" -n --config run0/settings -o dry
    [ "$status" -eq 0 ]
}

@test "a run directory refuses other settings (and the same ones) unless --force or --resume" {
    [ -f run0/settings ] || "$P/spo-train" -q $TINY --max-rounds 0 prompts.txt -o run0
    run "$P/spo-train" -q $TINY --lr 1e-4 --max-rounds 0 prompts.txt -o run0
    [ "$status" -eq 2 ]
    [ "$output" = "spo-train: run0: holds a run of other settings (lr: 6e-5 there, 1e-4 here); use --force to start over" ]
    grep -qx 'lr=6e-5' run0/settings
    run "$P/spo-train" -q $TINY --max-rounds 0 prompts.txt -o run0
    [ "$status" -eq 2 ]
    [[ "$output" == *"use --resume run0 to continue"* ]]
    run "$P/spo-train" -q --resume run0 --seed 7 --max-rounds 0
    [ "$status" -eq 2 ]
    [[ "$output" == *"--resume with other settings (seed: 42 there, 7 here)"* ]]
    "$P/spo-train" -q --resume run0 --max-rounds 0
    cp -r run0 run1
    "$P/spo-train" -q $TINY --lr 1e-4 --max-rounds 0 -f prompts.txt -o run1
    grep -qx 'lr=1e-4' run1/settings
    [ "$(wc -l < run1/metrics.jsonl)" -eq 1 ]
}

@test "bad input: a missing model, an unreadable or bad prompt file, no rundir left behind" {
    run "$P/spo-train" -q -m nowhere --scorer saturation prompts.txt -o bad1
    [ "$status" -eq 2 ]
    [ "$output" = "spo-train: nowhere: no such model directory" ]
    run "$P/spo-train" -q $TINY missing.txt -o bad1
    [ "$status" -eq 2 ]
    [[ "$output" == *"missing.txt: cannot read the prompt file" ]]
    mkdir -p adir.txt
    run "$P/spo-train" -q $TINY adir.txt -o bad1
    [ "$status" -eq 2 ]
    printf '[{"caption": "a"},' > broken.json
    run "$P/spo-train" -q $TINY --max-rounds 0 broken.json -o bad1
    [ "$status" -eq 2 ]
    [[ "$output" == *"broken.json: not a prompt file"* ]]
    printf '[{"caption": 3}]' > nocap.json
    run "$P/spo-train" -q $TINY --max-rounds 0 nocap.json -o bad1
    [ "$status" -eq 2 ]
    [ ! -e bad1 ]
    run "$P/spo-train" -q $TINY prompts.txt
    [ "$status" -eq 2 ]
    [[ "$output" == *"-o RUNDIR is required"* ]]
    run "$P/spo-train" -q $TINY --spm "$F/tiny-spm/clip" prompts.txt -o bad1
    [ "$status" -eq 2 ]
    run "$P/spo-train" --resume nowhere
    [ "$status" -eq 2 ]
    [[ "$output" == *"nowhere: not a spo-train run directory"* ]]
}

@test "a write that fails during a commit (simulated full disk): one clear line, exit 1, and the run resumes" {
    mkdir -p full/metrics.jsonl.tmp                 # the metrics cannot be written
    run "$P/spo-train" -q $TINY --max-rounds 0 prompts.txt -o full
    [ "$status" -eq 1 ]
    [ "$output" = "spo-train: full/metrics.jsonl: cannot write (disk full or not writable); the last commit stays resumable" ]
    grep -qx 'val_epoch=-1' full/state            # the commit before it: the initial LoRA
    "$P/spo-train" -q --resume full --max-rounds 0
    grep -qx 'val_epoch=0' full/state
    [ "$(wc -l < full/metrics.jsonl)" -eq 1 ]
    mkdir full/state.tmp                            # now the state cannot be committed
    run "$P/spo-train" -q $TINY --max-rounds 0 --force --lr 1 prompts.txt -o full
    [ "$status" -eq 1 ]
    [[ "$output" == "spo-train: full/state: cannot commit the checkpoint"* ]]
}

@test "json prompt sets keep their ids; the validation prompts come from --val-prompts" {
    printf '[{"id": 7, "caption": "seven"}, "plain", {"prompt": "with \\"quotes\\""}]' > set.json
    printf 'a lake\na forest\n' > val.txt
    "$P/spo-train" -q $TINY --val-prompts val.txt --val-images 1 --max-rounds 0 set.json -o runj
    [ "$(jq -c .id runj/prompts.jsonl | tr '\n' ' ')" = "7 1 2 " ]
    [ "$(jq -r .prompt runj/prompts.jsonl | sed -n 3p)" = 'with "quotes"' ]
    [ "$(jq -r .prompt runj/val/prompts.jsonl | tr '\n' '|')" = "a lake|a forest|" ]
    [ "$(ls runj/val/epoch_000/images | wc -l)" -eq 2 ]
}

@test "spo-plot draws a PNG of the asked size from a hand-written metrics.jsonl" {
    cat > m.jsonl <<'EOF'
{"epoch":0,"val_score":0.40,"lora":"ckpt/lora_init.h5"}
{"step":1,"loss":0.6931,"mean_rw":1.0,"mean_rl":1.0,"clamped":0,"grad_norm":0.5,"lr":6e-5,"pairs":40,"seconds":1.2}
{"step":2,"loss":0.6800,"mean_rw":1.01,"mean_rl":0.99,"clamped":0,"grad_norm":0.4,"lr":6e-5,"pairs":40,"seconds":1.1}
{"round":1,"epoch":1,"step":2,"loss":0.68655,"pairs":80,"mean_win_score":0.41,"seconds":10.5}

{"epoch":1,"val_score":0.44,"lora":"ckpt/lora_00001.h5"}
EOF
    "$BIN/spo-plot" m.jsonl -o m.png --size 640x480
    # the PNG header: width and height at bytes 16..23, 8-bit RGB
    [ "$(od -An -tx1 -j16 -N10 m.png | tr -d ' \n')" = "00000280000001e00802" ]
    run "$BIN/spo-plot" m.jsonl -o m.png
    [ "$status" -eq 2 ]
    [[ "$output" == *"m.png"*"exists"* ]]
    "$BIN/spo-plot" -f m.jsonl -o m.png
    [ "$(od -An -tx1 -j16 -N8 m.png | tr -d ' \n')" = "00000384000002bc" ]
    : > empty.jsonl
    "$BIN/spo-plot" empty.jsonl -o empty.png
    [ -s empty.png ]
    "$BIN/spo-plot" - -o stdin.png < m.jsonl
    cmp m.png stdin.png || [ -s stdin.png ]
}

@test "spo-plot: a bad line or value exits 2 naming the line and leaves no PNG" {
    printf '{"step":1,"loss":0.5}\n{"step":2,"loss":\n' > bad.jsonl
    run "$BIN/spo-plot" bad.jsonl -o bad.png
    [ "$status" -eq 2 ]
    [ "$output" = "spo-plot: bad.jsonl: line 2: not a JSON object" ]
    [ ! -e bad.png ]
    printf '[1, 2]\n' > arr.jsonl
    run "$BIN/spo-plot" arr.jsonl -o bad.png
    [ "$status" -eq 2 ]
    printf '{"step":1,"loss":"high"}\n' > str.jsonl
    run "$BIN/spo-plot" str.jsonl -o bad.png
    [ "$status" -eq 2 ]
    [ "$output" = "spo-plot: str.jsonl: line 1: 'loss' is not a number" ]
    run "$BIN/spo-plot" nowhere.jsonl -o bad.png
    [ "$status" -eq 2 ]
    run "$BIN/spo-plot" --size 10x10 str.jsonl -o bad.png
    [ "$status" -eq 2 ]
    [ ! -e bad.png ]
}

# ---- these need spo-step-update (the lead runs them after the merge)

@test "learning: seeded rounds raise the validation saturation; the flipped preference lowers it" {
    have_update || skip "spo-step-update not built"
    # the demo's model and recipe at 2 epochs (4 rounds, 16 AdamW steps):
    # measured +0.027..+0.030 (saturation) and -0.025..-0.029 (flipped) over seeds 1-3
    "$BIN/spo-mkmodel" -q --preset tiny --seed 1 --no-spm -o learnm -f
    printf '%s\n' "a red apple on a wooden table" "a lighthouse at dawn, oil painting" "a cat wearing a tiny hat" \
        "a bowl of lemons" "a street market at night" "a field of tulips" "a sailing boat on a calm sea" \
        "a bird on a branch" > learn.txt
    printf 'a beautiful lake\na city at sunset\n' > learnval.txt
    for sc in saturation desaturation; do
        for s in 1 2 3; do
            "$P/spo-train" -q -m learnm --scorer $sc --epochs 2 --round-prompts 4 --batch 8 --steps 10 --plain 2 \
                -t 0 --lr 1e-3 --val-images 2 --val-prompts learnval.txt --seed $s learn.txt -o learn$sc$s
            # the saturation of the validation images, before and after
            before=$(jq -s "map(select(.val_score))[0].val_score | if \"$sc\" == \"saturation\" then . else 1 - . end" \
                learn$sc$s/metrics.jsonl)
            after=$(jq -s "map(select(.val_score))[-1].val_score | if \"$sc\" == \"saturation\" then . else 1 - . end" \
                learn$sc$s/metrics.jsonl)
            echo "$sc seed $s: validation saturation $before -> $after"
            if [ $sc = saturation ]; then jq -en "$after - $before > 0.015"; else jq -en "$before - $after > 0.015"; fi
        done
    done
    [ -s learnsaturation1/plots/metrics.png ]
    [ -s learnsaturation1/final/lora.h5 ]
}

kill_at() { # RUNDIR WHEN: start a run, kill -9 its whole process group when the file WHEN appears
    local pid
    setsid "$P/spo-train" -q $TINY --seed 5 prompts.txt -o "$1" > /dev/null 2>&1 &
    pid=$!
    for i in $(seq 600); do [ -e "$1/$2" ] && break; sleep 0.1; done
    kill -9 -- -"$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
}

@test "resume after kill -9 during sampling, during the update and between them ends bit-identical" {
    have_update || skip "spo-step-update not built"
    "$P/spo-train" -q $TINY --seed 5 prompts.txt -o whole
    kill_at killed work/round_00001/prompts.jsonl                  # sampling round 2
    "$P/spo-train" -q --resume killed --max-rounds 3 || true
    kill_at2() { # resume, killed once round 4's pairs exist (in the update)
        setsid "$P/spo-train" -q --resume killed > /dev/null 2>&1 &
        local pid=$!
        for i in $(seq 600); do [ -e killed/work/round_00003/pairs.h5 ] && break; sleep 0.1; done
        kill -9 -- -"$pid" 2> /dev/null || true
        wait "$pid" 2> /dev/null || true
    }
    kill_at2
    grep -q '^round=' killed/state
    "$P/spo-train" -q --resume killed --max-rounds 5                # stops between rounds
    "$P/spo-train" -q --resume killed
    lora_cmp killed/final/lora.h5 whole/final/lora.h5 0
    [ "$(jq -c 'del(.seconds)' killed/metrics.jsonl)" = "$(jq -c 'del(.seconds)' whole/metrics.jsonl)" ]
}

@test "2 sampling shards and 2 MPI ranks give the LoRA of 1 shard and 1 rank within float rounding" {
    have_update || skip "spo-step-update not built"
    ldd "$BIN/spo-step-update" | grep -q libmpi || skip "spo-step-update was built without MPI"
    # The same noise (keyed by seed and prompt id), but a shard's UNet batches
    # hold other latents, which moves float rounding (pairs differ by ~1e-6
    # relative L2); the rounds feed that through sampling with the updated
    # LoRA and AdamW: measured 3.6e-5 after 6 rounds. The update itself is
    # bit-identical over ranks at equal threads (step_update.bats), hence one
    # update thread per process in both runs.
    "$P/spo-train" -q $TINY --seed 9 --update-threads 1 prompts.txt -o one
    "$P/spo-train" -q $TINY --seed 9 --update-threads 1 --shards 2 --np 2 prompts.txt -o two
    jq -en --slurpfile a one/metrics.jsonl --slurpfile b two/metrics.jsonl \
        '[$a[], $b[]] | map(select(.round)) | length == 12' > /dev/null
    jq -en --slurpfile a one/metrics.jsonl --slurpfile b two/metrics.jsonl '
        [$a[] | select(.round)] as $x | [$b[] | select(.round)] as $y
        | [range($x | length)] | all(($x[.].loss - $y[.].loss | fabs) < 1e-5
                                    and ($x[.].mean_win_score - $y[.].mean_win_score | fabs) < 1e-5
                                    and $x[.].pairs == $y[.].pairs)'
    lora_cmp two/final/lora.h5 one/final/lora.h5 2e-4
}
