#!/usr/bin/env bats
# Command tests for the network-free loop tools: spo-init, spo-pair,
# spo-resample. Inputs come from tests/helpers/spo-fakepool (embeds, pool and
# scores files whose values depend only on prompt id, child and element).

load helpers

setup_file() {
    export FP="$HELP/spo-fakepool"
    export FILES="$BATS_FILE_TMPDIR/files"
    "$HELP/spo-testfiles" "$FILES"
}

# ---- spo-init -------------------------------------------------------------

@test "spo-init: x_T with SD v1.5 defaults, attributes from the embeds file" {
    "$FP" embeds e.h5 ids=0,1,2 model=sd15-abc
    "$BIN/spo-init" -e e.h5 --seed 7 -o s.h5
    run "$BIN/spo-inspect" --check s.h5
    [ "$status" -eq 0 ]
    run "$BIN/spo-inspect" s.h5
    [[ "$output" == *"/latents"*"f32"*"[3,4,64,64]"* ]]
    [ "$(attr s.h5 step)" = 0 ]
    [ "$(attr s.h5 num_steps)" = 20 ]
    [ "$(attr s.h5 timestep)" = 951 ]
    [ "$(attr s.h5 seed)" = 7 ]
    [ "$(attr s.h5 model_id)" = sd15-abc ]
    [ "$(attr s.h5 lora_id)" = none ]
    [ "$(data s.h5 /prompt_id | tr '\n' ' ')" = "0 1 2 " ]
}

@test "spo-init: the noise looks standard normal" {
    "$FP" embeds e.h5 ids=0,1,2,3
    "$BIN/spo-init" -e e.h5 -o s.h5
    data s.h5 /latents | awk '{ s += $1; q += $1 * $1; n++ }
        END { m = s / n; v = q / n - m * m; print n, m, v; exit !(n == 65536 && m > -0.02 && m < 0.02 && v > 0.97 && v < 1.03) }'
}

@test "spo-init: deterministic, and the seed matters" {
    "$FP" embeds e.h5 ids=0,1,2
    "$BIN/spo-init" -e e.h5 --seed 3 --latent-size 8x8 -o a.h5
    "$BIN/spo-init" -e e.h5 --seed 3 --latent-size 8x8 -o b.h5
    "$BIN/spo-init" -e e.h5 --seed 4 --latent-size 8x8 -o c.h5
    [ "$(data a.h5 /latents)" = "$(data b.h5 /latents)" ]
    [ "$(data a.h5 /latents)" != "$(data c.h5 /latents)" ]
}

@test "spo-init: a prompt's noise does not depend on its batch or shard" {
    "$FP" embeds all.h5 ids=0,1,2
    "$FP" embeds s1.h5 ids=0,1
    "$FP" embeds s2.h5 ids=2
    "$FP" embeds rev.h5 ids=2,0
    for f in all s1 s2 rev; do "$BIN/spo-init" -e $f.h5 --seed 9 --latent-size 6x5 -o x$f.h5; done
    [ "$(data xall.h5 /latents -s 0,0,0,0 -c 2,4,6,5)" = "$(data xs1.h5 /latents)" ]
    [ "$(data xall.h5 /latents -s 2,0,0,0 -c 1,4,6,5)" = "$(data xs2.h5 /latents)" ]
    [ "$(data xall.h5 /latents -s 2,0,0,0 -c 1,4,6,5)" = "$(data xrev.h5 /latents -s 0,0,0,0 -c 1,4,6,5)" ]
    [ "$(data xall.h5 /latents -s 0,0,0,0 -c 1,4,6,5)" = "$(data xrev.h5 /latents -s 1,0,0,0 -c 1,4,6,5)" ]
}

@test "spo-init: --steps, -m model (size and scheduler), --latent-size overrides" {
    "$FP" embeds e.h5 ids=4
    "$BIN/spo-init" -e e.h5 --steps 10 -o a.h5
    [ "$(attr a.h5 timestep)" = 901 ]
    [ "$(attr a.h5 num_steps)" = 10 ]
    "$BIN/spo-init" -e e.h5 -m "$ROOT/tests/fixtures/tiny-sd" -o b.h5
    [ "$(attr b.h5 timestep)" = 951 ]
    run "$BIN/spo-inspect" b.h5
    [[ "$output" == *"/latents"*"[1,4,16,16]"* ]]
    "$BIN/spo-init" -e e.h5 -m "$ROOT/tests/fixtures/tiny-sd" --latent-size 12 -o c.h5
    run "$BIN/spo-inspect" c.h5
    [[ "$output" == *"/latents"*"[1,4,12,12]"* ]]
}

@test "spo-init: embeds from a pipe, state to a pipe" {
    "$FP" embeds e.h5 ids=0,1
    run bash -c "cat e.h5 | '$BIN/spo-init' -e - --latent-size 4x4 -o - | '$BIN/spo-inspect' --check -"
    [ "$status" -eq 0 ]
    [ "$output" = "<stdin>: ok (state/1)" ]
}

# ---- spo-pair -------------------------------------------------------------

# prompt 0: best 1 worst 3, gap tanh(1.5) = 0.905        kept at 0.3
# ties as torch.sort(descending=True) on CPU (stable): best = lowest index
# among the largest, worst = highest index among the smallest
# prompt 1: best 2 worst 3 (ties), gap tanh(0.05) = 0.05  dropped
# prompt 2: best 1 (tie with 3), worst 2 (tie with 0), gap tanh(0.35) = 0.336  kept
# prompt 3: best 0, worst 3, gap tanh(0.275) = 0.268      dropped at 0.3, kept at 0.2
hand_case() {
    "$FP" pool p.h5 ids=0,1,2,3 K=4 step=6 seed=5 lora=ab12@3
    "$FP" scores s.h5 ids=0,1,2,3 K=4 step=6 values=1,3,2,0,0.5,0.5,0.6,0.5,2,2.7,2,2.7,5,4.45,5,4.45
    "$FP" embeds e.h5 ids=3,2,1,0
}

@test "spo-pair: keeps what the threshold implies (hand-computed)" {
    hand_case
    "$BIN/spo-pair" -e e.h5 p.h5 s.h5 -o pairs.h5
    "$BIN/spo-inspect" --check pairs.h5
    [ "$(data pairs.h5 /key | tr '\n' ' ')" = "5 0 6 3 5 2 6 3 " ]
    [ "$(data pairs.h5 /score_win | tr '\n' ' ')" = "3 2.70000005 " ]
    [ "$(data pairs.h5 /score_lose | tr '\n' ' ')" = "0 2 " ]
    [ "$(data pairs.h5 /timestep | tr '\n' ' ')" = "651 651 " ]
    [ "$(data pairs.h5 /win -s 0,0,0,0 -c 1,4,8,8)" = "$(data p.h5 /children -s 0,1,0,0,0 -c 1,1,4,8,8)" ]
    [ "$(data pairs.h5 /lose -s 0,0,0,0 -c 1,4,8,8)" = "$(data p.h5 /children -s 0,3,0,0,0 -c 1,1,4,8,8)" ]
    [ "$(data pairs.h5 /win -s 1,0,0,0 -c 1,4,8,8)" = "$(data p.h5 /children -s 2,1,0,0,0 -c 1,1,4,8,8)" ]
    [ "$(data pairs.h5 /lose -s 1,0,0,0 -c 1,4,8,8)" = "$(data p.h5 /children -s 2,2,0,0,0 -c 1,1,4,8,8)" ]
    [ "$(data pairs.h5 /parent -s 1,0,0,0 -c 1,4,8,8)" = "$(data p.h5 /parent -s 2,0,0,0 -c 1,4,8,8)" ]
    # embeds rows are in another order: prompt 2 is row 1
    [ "$(data pairs.h5 /cond -s 1,0,0 -c 1,7,8)" = "$(data e.h5 /cond -s 1,0,0 -c 1,7,8)" ]
    [ "$(data pairs.h5 /uncond)" = "$(data e.h5 /uncond)" ]
    [ "$(attr pairs.h5 model_id)" = m0 ]
    [ "$(attr pairs.h5 num_steps)" = 20 ]
}

@test "spo-pair: other thresholds" {
    hand_case
    "$BIN/spo-pair" -e e.h5 p.h5 s.h5 --threshold 0.2 -o a.h5
    [ "$(data a.h5 /key | awk 'NR % 4 == 2' | tr '\n' ' ')" = "0 2 3 " ]
    "$BIN/spo-pair" -e e.h5 p.h5 s.h5 -t 0.9 -o b.h5
    [ "$(data b.h5 /key | awk 'NR % 4 == 2' | tr '\n' ' ')" = "0 " ]
    "$BIN/spo-pair" -e e.h5 p.h5 s.h5 -t 0.95 -o c.h5
    run "$BIN/spo-inspect" --check c.h5
    [ "$status" -eq 0 ]
    run "$BIN/spo-inspect" c.h5
    [[ "$output" == *"/win"*"[0,4,8,8]"* ]]
}

@test "spo-pair: plain steps (K = 1) and the last step pair the same way" {
    "$FP" embeds e.h5 ids=0,1,2
    "$FP" pool p1.h5 ids=0,1,2 K=1 step=2
    "$FP" scores s1.h5 ids=0,1,2 K=1 step=2
    "$BIN/spo-pair" -e e.h5 p1.h5 s1.h5 -o a.h5
    run "$BIN/spo-inspect" a.h5
    [[ "$output" == *"/key"*"[0,4]"* ]]
    "$FP" pool pl.h5 ids=0,1,2 step=19 eps=0
    "$FP" scores sl.h5 ids=0,1,2 step=19 values=0,1,2,3,1,1,1,1,3,0,0,0
    "$BIN/spo-pair" -e e.h5 pl.h5 sl.h5 -o b.h5
    [ "$(data b.h5 /key | tr '\n' ' ')" = "1 0 19 0 1 2 19 0 " ]
    [ "$(data b.h5 /win -s 0,0,0,0 -c 1,4,8,8)" = "$(data pl.h5 /children -s 0,3,0,0,0 -c 1,1,4,8,8)" ]
    [ "$(data b.h5 /timestep | tr '\n' ' ')" = "1 1 " ]
}

@test "spo-pair: appending the same pool twice keeps each pair once" {
    "$FP" embeds e.h5 ids=0,1,2,3,4,5
    "$FP" pool p.h5 ids=0,1,2,3,4,5
    "$FP" scores s.h5 ids=0,1,2,3,4,5
    "$BIN/spo-pair" -e e.h5 p.h5 s.h5 -o once.h5
    n=$(data once.h5 /score_win | wc -l)
    [ "$n" -ge 2 ] && [ "$n" -le 5 ]
    "$BIN/spo-pair" -e e.h5 p.h5 s.h5 -a acc.h5
    "$BIN/spo-pair" -e e.h5 p.h5 s.h5 -a acc.h5
    for d in /key /parent /win /lose /score_win /score_lose /timestep /cond /uncond; do
        [ "$(data acc.h5 $d)" = "$(data once.h5 $d)" ]
    done
    [ "$(h5dump -a history acc.h5 | grep -o -- '-a acc.h5' | wc -l)" -eq 2 ]
    # a later step adds its pairs, sorted by key
    "$FP" pool p7.h5 ids=0,1,2,3,4,5 step=7
    "$FP" scores s7.h5 ids=0,1,2,3,4,5 step=7
    "$BIN/spo-pair" -e e.h5 p7.h5 s7.h5 -a acc.h5
    [ "$(data acc.h5 /score_win | wc -l)" -eq $((2 * n)) ]
    data acc.h5 /key | paste - - - - | sort -c -k2,2n -k3,3n
}

@test "spo-pair: merging shards equals the single run" {
    "$FP" embeds e.h5 ids=0,1,2,3,4,5,6,7
    "$FP" pool p.h5 ids=0,1,2,3,4,5,6,7
    "$FP" scores s.h5 ids=0,1,2,3,4,5,6,7
    "$FP" pool pa.h5 ids=5,0,2
    "$FP" scores sa.h5 ids=5,0,2
    "$FP" pool pb.h5 ids=1,3,4,6,7
    "$FP" scores sb.h5 ids=1,3,4,6,7
    "$FP" embeds eb.h5 ids=7,6,4,3,1
    "$BIN/spo-pair" -e e.h5 p.h5 s.h5 -o single.h5
    "$BIN/spo-pair" -e e.h5 pa.h5 sa.h5 -o a.h5
    "$BIN/spo-pair" -e eb.h5 pb.h5 sb.h5 -o b.h5
    "$BIN/spo-pair" --merge b.h5 a.h5 -o ab.h5
    "$BIN/spo-pair" --merge a.h5 b.h5 a.h5 -o aba.h5
    "$BIN/spo-pair" -e eb.h5 pb.h5 sb.h5 -a acc.h5
    "$BIN/spo-pair" -e e.h5 pa.h5 sa.h5 -a acc.h5
    [ "$(data single.h5 /score_win | wc -l)" -ge 3 ]
    for f in ab aba acc; do
        "$BIN/spo-inspect" --check $f.h5
        for d in /key /parent /win /lose /score_win /score_lose /timestep /cond /uncond; do
            [ "$(data $f.h5 $d)" = "$(data single.h5 $d)" ] || { echo "$f $d differs"; false; }
        done
    done
}

@test "spo-pair: merge keeps f16 embeddings when every input has them" {
    "$FP" embeds e.h5 ids=0,1,2,3 f16=1
    "$FP" pool p.h5 ids=0,1,2,3
    "$FP" scores s.h5 ids=0,1,2,3
    "$BIN/spo-pair" -e e.h5 p.h5 s.h5 -o a.h5
    run "$BIN/spo-inspect" a.h5
    [[ "$output" == *"/cond"*"f16"* ]]
    "$FP" embeds e32.h5 ids=0,1,2,3
    "$FP" pool p2.h5 ids=0,1,2,3 step=8
    "$FP" scores s2.h5 ids=0,1,2,3 step=8
    "$BIN/spo-pair" -e e32.h5 p2.h5 s2.h5 -o b.h5
    "$BIN/spo-pair" --merge a.h5 b.h5 -o ab.h5
    run "$BIN/spo-inspect" ab.h5
    [[ "$output" == *"/cond"*"f32"* ]]
}

@test "spo-pair: pool, scores and embeds on pipes, pairs to a pipe" {
    hand_case
    run bash -c "cat p.h5 | '$BIN/spo-pair' -e e.h5 - s.h5 -o - | '$BIN/spo-inspect' --check -"
    [ "$status" -eq 0 ]
    [ "$output" = "<stdin>: ok (pairs/2)" ]
}

# ---- spo-resample ---------------------------------------------------------

@test "spo-resample: the next state is the chosen child with its eps" {
    "$FP" pool p.h5 ids=3,1,4,1000 step=5 seed=11 lora=ab@2
    "$BIN/spo-resample" p.h5 -o s.h5
    "$BIN/spo-inspect" --check s.h5
    [ "$(attr s.h5 step)" = 6 ]
    [ "$(attr s.h5 timestep)" = 651 ]
    [ "$(attr s.h5 seed)" = 11 ]
    [ "$(attr s.h5 lora_id)" = ab@2 ]
    [ "$(data s.h5 /prompt_id | tr '\n' ' ')" = "3 1 4 1000 " ]
    b=0
    for c in $(data s.h5 /chosen); do
        [ "$(data s.h5 /latents -s $b,0,0,0 -c 1,4,8,8)" = "$(data p.h5 /children -s $b,$c,0,0,0 -c 1,1,4,8,8)" ]
        [ "$(data s.h5 /eps -s $b,0,0,0 -c 1,4,8,8)" = "$(data p.h5 /eps -s $b,$c,0,0,0 -c 1,1,4,8,8)" ]
        b=$((b + 1))
    done
    [ $b -eq 4 ]
}

@test "spo-resample: deterministic by seed; the default is the pool's seed" {
    "$FP" pool p.h5 ids=$(seq -s, 0 63) seed=5 h=2 w=2
    "$BIN/spo-resample" p.h5 -o a.h5
    "$BIN/spo-resample" p.h5 --seed 5 -o b.h5
    "$BIN/spo-resample" p.h5 --seed 6 -o c.h5
    [ "$(data a.h5 /chosen)" = "$(data b.h5 /chosen)" ]
    [ "$(data a.h5 /chosen)" != "$(data c.h5 /chosen)" ]
    [ "$(attr c.h5 choice_seed)" = 6 ]
    [ "$(attr c.h5 seed)" = 5 ]
    # shard independence: the choice of a prompt does not depend on the batch
    "$FP" pool q.h5 ids=40,7 seed=5 h=2 w=2
    "$BIN/spo-resample" q.h5 -o d.h5
    [ "$(data d.h5 /chosen | tr '\n' ' ')" = "$(data a.h5 /chosen | sed -n '41p;8p' | tac | tr '\n' ' ')" ]
}

# counts of each child over many prompts: chi-square with K-1 degrees of freedom
chisq() {
    awk -v K=$1 '{ c[$1]++; n++ } END { for (k = 0; k < K; k++) { e = n / K; x += (c[k] - e)^2 / e; printf "%d ", c[k] }
                   print "chi2", x; exit !(x < 25) }'
}

@test "spo-resample: chooses uniformly (K = 4, and K = 3 by rejection)" {
    "$FP" pool p4.h5 ids=$(seq -s, 0 799) K=4 h=1 w=1 C=1
    "$BIN/spo-resample" p4.h5 -o a.h5
    data a.h5 /chosen | chisq 4
    "$FP" pool p3.h5 ids=$(seq -s, 0 599) K=3 h=1 w=1 C=1
    "$BIN/spo-resample" p3.h5 -o b.h5
    data b.h5 /chosen | chisq 3
    "$FP" pool p1.h5 ids=0,1,2 K=1 h=1 w=1 C=1
    "$BIN/spo-resample" p1.h5 -o c.h5
    [ "$(data c.h5 /chosen | tr '\n' ' ')" = "0 0 0 " ]
}

@test "spo-resample: after the last step the state is final, without eps" {
    "$FP" pool p.h5 ids=0,1 step=19 num_steps=20 eps=0
    "$BIN/spo-resample" p.h5 -o s.h5
    "$BIN/spo-inspect" --check s.h5
    [ "$(attr s.h5 step)" = 20 ]
    [ "$(attr s.h5 timestep)" = 0 ]
    ! h5ls s.h5 | grep -q '^eps'
}

@test "spo-resample: pipes" {
    "$FP" pool p.h5 ids=0,1,2
    run bash -c "'$BIN/spo-resample' p.h5 -o - | '$BIN/spo-inspect' --check -"
    [ "$status" -eq 0 ]
    [ "$output" = "<stdin>: ok (state/1)" ]
    run bash -c "cat p.h5 | '$BIN/spo-resample' - -o s.h5 && '$BIN/spo-inspect' --check s.h5"
    [ "$status" -eq 0 ]
}

# ---- bad inputs -------------------------------------------------------------

@test "bad: pool and scores of other prompts" {
    hand_case
    "$FP" scores s2.h5 ids=0,1,3,2 K=4 step=6
    expect_fail 2 "$BIN/spo-pair" -e e.h5 p.h5 s2.h5 -o out.h5
    [[ "$stderr" == *"s2.h5 does not match p.h5"* ]]
    [ ! -e out.h5 ]
}

@test "bad: pool and scores of other sizes or steps" {
    hand_case
    "$FP" scores k3.h5 ids=0,1,2,3 K=3 step=6
    expect_fail 2 "$BIN/spo-pair" -e e.h5 p.h5 k3.h5 -o out.h5
    [[ "$stderr" == *"k3.h5 does not match p.h5"*"[4,3]"* ]]
    "$FP" scores b3.h5 ids=0,1,2 K=4 step=6
    expect_fail 2 "$BIN/spo-pair" -e e.h5 p.h5 b3.h5 -o out.h5
    "$FP" scores st.h5 ids=0,1,2,3 K=4 step=7
    expect_fail 2 "$BIN/spo-pair" -e e.h5 p.h5 st.h5 -o out.h5
    [[ "$stderr" == *"step 7"* ]]
    [ ! -e out.h5 ]
}

@test "bad: a prompt missing from the embeds, or embeds of another model" {
    hand_case
    "$FP" embeds e2.h5 ids=0,1,3
    expect_fail 2 "$BIN/spo-pair" -e e2.h5 p.h5 s.h5 -o out.h5
    [[ "$stderr" == *"e2.h5: no prompt id 2"* ]]
    "$FP" embeds e3.h5 ids=0,1,2,3 model=other
    expect_fail 2 "$BIN/spo-pair" -e e3.h5 p.h5 s.h5 -o out.h5
    [[ "$stderr" == *"e3.h5 for model 'other'"* ]]
    [ ! -e out.h5 ]
}

@test "bad: a lora_id without an optimizer step" {
    "$FP" embeds e.h5 ids=0,1
    "$FP" pool p.h5 ids=0,1 lora=abc
    "$FP" scores s.h5 ids=0,1
    expect_fail 2 "$BIN/spo-pair" -e e.h5 p.h5 s.h5 -o out.h5
    [[ "$stderr" == *"p.h5: lora_id 'abc'"* ]]
}

@test "bad: merging pairs of different models, steps, guidance or eta" {
    "$FP" embeds e.h5 ids=0,1,2,3
    "$FP" embeds m1.h5 ids=0,1,2,3 model=m1
    "$FP" scores s.h5 ids=0,1,2,3
    "$FP" pool p.h5 ids=0,1,2,3
    "$BIN/spo-pair" -e e.h5 p.h5 s.h5 -o a.h5
    cp a.h5 a.orig
    for v in "model=m1" "num_steps=25" "guidance=7.5" "eta=0"; do
        "$FP" pool q.h5 ids=0,1,2,3 $v
        if [ "$v" = model=m1 ]; then emb=m1.h5; else emb=e.h5; fi
        "$BIN/spo-pair" -e $emb q.h5 s.h5 -o b.h5 -f
        expect_fail 2 "$BIN/spo-pair" --merge a.h5 b.h5 -o out.h5
        [[ "$stderr" == *"cannot mix"*"a.h5"*"b.h5"* ]]
        [ ! -e out.h5 ]
        expect_fail 2 "$BIN/spo-pair" -e $emb q.h5 s.h5 -a a.h5
        cmp a.h5 a.orig
    done
}

@test "bad: pairs of embeddings made with different --text-clean never mix" {
    "$FP" embeds e.h5 ids=0,1,2,3            # no text_clean attribute: basic
    "$FP" embeds f.h5 ids=0,1,2,3 clean=ftfy
    "$FP" scores s.h5 ids=0,1,2,3
    "$FP" pool p.h5 ids=0,1,2,3
    "$BIN/spo-pair" -e e.h5 p.h5 s.h5 -o a.h5
    [ "$(attr a.h5 text_clean)" = basic ]
    "$BIN/spo-pair" -e f.h5 p.h5 s.h5 -o b.h5
    [ "$(attr b.h5 text_clean)" = ftfy ]
    "$BIN/spo-inspect" --check b.h5
    cp a.h5 a.orig
    expect_fail 2 "$BIN/spo-pair" --merge a.h5 b.h5 -o out.h5
    [[ "$stderr" == *"cannot mix embeddings made with --text-clean basic (a.h5) and ftfy (b.h5)"* ]]
    [ ! -e out.h5 ]
    expect_fail 2 "$BIN/spo-pair" -e f.h5 p.h5 s.h5 -a a.h5
    [[ "$stderr" == *"--text-clean"* ]]
    cmp a.h5 a.orig
}

@test "bad: wrong schema" {
    hand_case
    expect_fail 2 "$BIN/spo-pair" -e e.h5 e.h5 s.h5 -o out.h5
    [[ "$stderr" == *"expected pool/1"* ]]
    expect_fail 2 "$BIN/spo-pair" -e e.h5 p.h5 s.h5 -a p.h5
    [[ "$stderr" == *"expected pairs/2"* ]]
    expect_fail 2 "$BIN/spo-pair" --merge p.h5 -o out.h5
    expect_fail 2 "$BIN/spo-resample" s.h5 -o out.h5
    expect_fail 2 "$BIN/spo-resample" "$FILES/bad/nan.h5" -o out.h5
    expect_fail 2 "$BIN/spo-init" -e p.h5 -o out.h5
    [ ! -e out.h5 ]
}

@test "bad: missing files" {
    hand_case
    expect_fail 2 "$BIN/spo-pair" -e e.h5 nothere.h5 s.h5 -o out.h5
    expect_fail 2 "$BIN/spo-pair" -e nothere.h5 p.h5 s.h5 -o out.h5
    expect_fail 2 "$BIN/spo-pair" --merge nothere.h5 -o out.h5
    expect_fail 2 "$BIN/spo-resample" nothere.h5 -o out.h5
    expect_fail 2 "$BIN/spo-init" -e nothere.h5 -o out.h5
    expect_fail 2 "$BIN/spo-init" -e e.h5 -m nothere -o out.h5
    [ ! -e out.h5 ]
}

@test "bad: threshold out of range" {
    hand_case
    for t in 1.5 -0.1 abc nan; do
        expect_fail 2 "$BIN/spo-pair" -e e.h5 p.h5 s.h5 --threshold $t -o out.h5
        [[ "$stderr" == *"--threshold"* ]]
    done
    [ ! -e out.h5 ]
}

@test "bad: unknown options and bad calls" {
    hand_case
    expect_fail 2 "$BIN/spo-init" --bogus -e e.h5 -o out.h5
    expect_fail 2 "$BIN/spo-pair" --bogus -e e.h5 p.h5 s.h5 -o out.h5
    expect_fail 2 "$BIN/spo-resample" --bogus p.h5 -o out.h5
    expect_fail 2 "$BIN/spo-init" -o out.h5
    expect_fail 2 "$BIN/spo-init" -e e.h5
    expect_fail 2 "$BIN/spo-init" -e e.h5 --steps 0 -o out.h5
    expect_fail 2 "$BIN/spo-init" -e e.h5 --latent-size 8x -o out.h5
    expect_fail 2 "$BIN/spo-pair" -e e.h5 p.h5 s.h5
    expect_fail 2 "$BIN/spo-pair" -e e.h5 p.h5 s.h5 -o out.h5 -a out.h5
    expect_fail 2 "$BIN/spo-pair" p.h5 s.h5 -o out.h5
    expect_fail 2 "$BIN/spo-pair" -e e.h5 p.h5 -o out.h5
    expect_fail 2 "$BIN/spo-pair" -e e.h5 p.h5 s.h5 -a -
    expect_fail 2 "$BIN/spo-pair" --merge -e e.h5 p.h5 -o out.h5
    expect_fail 2 "$BIN/spo-resample" p.h5
    expect_fail 2 "$BIN/spo-resample" p.h5 p.h5 -o out.h5
    expect_fail 2 "$BIN/spo-resample" --seed -1 p.h5 -o out.h5
    [ ! -e out.h5 ]
}

@test "bad: an existing output needs -f" {
    hand_case
    "$BIN/spo-resample" p.h5 -o out.h5
    cp out.h5 keep.h5
    expect_fail 2 "$BIN/spo-resample" p.h5 -o out.h5
    expect_fail 2 "$BIN/spo-pair" -e e.h5 p.h5 s.h5 -o out.h5
    expect_fail 2 "$BIN/spo-init" -e e.h5 -o out.h5
    cmp out.h5 keep.h5
    "$BIN/spo-resample" p.h5 -o out.h5 -f --seed 3
}

@test "bad: a pool whose step is past the schedule" {
    "$FP" pool p.h5 ids=0,1 step=20 num_steps=20
    expect_fail 2 "$BIN/spo-resample" p.h5 -o out.h5
    [[ "$stderr" == *"step 20 out of range"* ]]
}

@test "bad: duplicate or out-of-range prompt ids" {
    "$FP" embeds d.h5 ids=1,2,1
    expect_fail 2 "$BIN/spo-init" -e d.h5 -o out.h5
    [[ "$stderr" == *"prompt id 1 appears more than once"* ]]
    "$FP" embeds n.h5 ids=-3
    expect_fail 2 "$BIN/spo-init" -e n.h5 -o out.h5
    [[ "$stderr" == *"out of range"* ]]
    [ ! -e out.h5 ]
}

# ---- pairs/2, pairs/1, timesteps -------------------------------------------

PFIX="$BATS_TEST_DIRNAME/../fixtures/pairs"

@test "spo-pair writes pairs/2: each prompt's embedding once, found by prompt id" {
    "$FP" embeds e.h5 ids=5,3,1,0,2,4
    "$FP" pool p6.h5 ids=0,1,2,3,4,5 step=6
    "$FP" scores s6.h5 ids=0,1,2,3,4,5 step=6
    "$FP" pool p7.h5 ids=0,1,2,3,4,5 step=7
    "$FP" scores s7.h5 ids=0,1,2,3,4,5 step=7
    "$BIN/spo-pair" -t 0 -e e.h5 p6.h5 s6.h5 -a acc.h5
    "$BIN/spo-pair" -t 0 -e e.h5 p7.h5 s7.h5 -a acc.h5
    [ "$(attr acc.h5 spo_schema)" = "pairs/2" ]
    [ "$(data acc.h5 /score_win | wc -l)" -eq 12 ]
    # six prompts, twelve pairs: six /cond rows, prompt ids increasing
    [ "$(data acc.h5 /prompt_id | tr '\n' ' ')" = "0 1 2 3 4 5 " ]
    h5dump -H -d /cond acc.h5 | grep -q '( 6, 7, 8 )'
    # row r of the table is the embeds row of prompt id r (embeds ids 5,3,1,0,2,4)
    erow=(3 2 4 1 5 0)
    for r in 0 1 2 3 4 5; do
        [ "$(data acc.h5 /cond -s $r,0,0 -c 1,7,8)" = "$(data e.h5 /cond -s ${erow[$r]},0,0 -c 1,7,8)" ]
    done
}

@test "pairs/1 files are still read: --merge and -a turn them into the same pairs/2" {
    hand_case
    "$BIN/spo-pair" -t 0.1 -e e.h5 p.h5 s.h5 -o new.h5
    "$BIN/spo-pair" --merge "$PFIX/pairs1.h5" -o m.h5
    cp "$PFIX/pairs1.h5" acc.h5 && chmod u+w acc.h5
    "$BIN/spo-pair" -t 0.1 -e e.h5 p.h5 s.h5 -a acc.h5
    for f in m acc; do
        "$BIN/spo-inspect" --check $f.h5
        [ "$(attr $f.h5 spo_schema)" = "pairs/2" ]
        for d in /key /parent /win /lose /score_win /score_lose /timestep /prompt_id /cond /uncond; do
            [ "$(data $f.h5 $d)" = "$(data new.h5 $d)" ] || { echo "$f $d differs"; false; }
        done
    done
    # the pairs/1 file holds one /cond row per pair, the pairs/2 one per prompt: here the same
    [ "$(data new.h5 /prompt_id | tr '\n' ' ')" = "0 2 3 " ]
    [ "$(data "$PFIX/pairs1.h5" /cond)" = "$(data new.h5 /cond)" ]
}

@test "bad: a pool timestep of 2^40 or below 0 is refused, naming the pool" {
    "$FP" embeds e.h5 ids=0,1
    "$FP" scores s.h5 ids=0,1
    "$FP" pool big.h5 ids=0,1 t=1099511627776
    expect_fail 2 "$BIN/spo-pair" -t 0 -e e.h5 big.h5 s.h5 -o out.h5
    [[ "$stderr" == *"big.h5: timestep 1099511627776 out of range"* ]]
    "$FP" pool neg.h5 ids=0,1 t=-7
    expect_fail 2 "$BIN/spo-pair" -t 0 -e e.h5 neg.h5 s.h5 -o out.h5
    [[ "$stderr" == *"neg.h5: timestep -7 out of range"* ]]
    expect_fail 2 "$BIN/spo-resample" neg.h5 -o out.h5
    [ ! -e out.h5 ]
}

@test "bad: --merge and -a refuse a pairs file with a timestep out of range, naming it" {
    expect_fail 2 "$BIN/spo-pair" --merge "$PFIX/pairs1.h5" "$PFIX/bad_timestep.h5" -o out.h5
    [[ "$stderr" == *"bad_timestep.h5: pair 0 has timestep -549, out of range"* ]]
    [ ! -e out.h5 ]
    cp "$PFIX/bad_timestep.h5" acc.h5 && chmod u+w acc.h5
    hand_case
    expect_fail 2 "$BIN/spo-pair" -t 0.1 -e e.h5 p.h5 s.h5 -a acc.h5
    cmp acc.h5 "$PFIX/bad_timestep.h5"
}
