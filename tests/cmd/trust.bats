#!/usr/bin/env bats
# Hostile inputs handled by the text and core layers (issue 9): terminal
# escapes from files are printed escaped (class 8); a JSON prompt holding
# \u0000 is refused; missing tokenizer files and a missing --spm-weights are
# bad input, exit 2 (class 10); and the fixtures still match the weights
# they were made from (their recorded sha256).

load helpers

setup_file() {
    export FP="$HELP/spo-fakepool"
    export M="$FIX/tiny-sd"
}

# stderr holds no control byte but the final newline
no_controls() { ! printf '%s' "$stderr" | LC_ALL=C grep -q '[[:cntrl:]]'; }

@test "class 8: a model_id with terminal escapes is printed escaped" {
    "$FP" pool p.h5 ids=0,1 K=2 step=6 model=m0
    "$FP" scores s.h5 ids=0,1 K=2 step=6
    "$FP" embeds e.h5 ids=0,1 model=$'evil\e]0;pwned\a\e[2J\xc2\x9b31m'
    expect_fail 2 "$BIN/spo-pair" -e e.h5 p.h5 s.h5 -o out.h5
    no_controls
    [[ "$stderr" == *'evil\x1b]0;pwned\x07\x1b[2J\xc2\x9b31m'* ]]
}

@test "class 8: a prompt and an archive member name with escapes are printed escaped" {
    printf '["ok", "bad\033[2J\xff"]' > p.json
    expect_fail 2 "$BIN/spo-encode" -m "$M" p.json -o out.h5
    no_controls
    [[ "$stderr" == *"p.json: item 1: invalid UTF-8"* ]]
    mkdir d && printf 'x\n' > "d/$(printf 'a\033]0;t\007.csv')"
    tar -C d -cf t.tar .
    expect_fail 2 "$BIN/spo-encode" -m "$M" t.tar -o out.h5
    no_controls
    [[ "$stderr" == *'a\x1b]0;t\x07.csv: not a prompt file'* ]]
}

@test "class 10: a JSON prompt with \\u0000 is refused, as a NUL in a .txt is" {
    printf '["a cat", "a d\\u0000og"]' > p.json
    expect_fail 2 "$BIN/spo-encode" -m "$M" p.json -o out.h5
    [[ "$stderr" == *"p.json: line 1: NUL byte in a string (\u0000)"* ]]
    printf '{"caption": "x\\u0000"}\n' > p.jsonl
    expect_fail 2 "$BIN/spo-encode" -m "$M" p.jsonl -o out.h5
    [[ "$stderr" == *"p.jsonl: line 1: NUL"* ]]
    printf 'a\0b\n' > p.txt
    expect_fail 2 "$BIN/spo-encode" -m "$M" p.txt -o out.h5
    [[ "$stderr" == *"NUL"* ]]
}

@test "class 10: a missing tokenizer file is bad input (exit 2, names the file)" {
    cp -r "$M" m
    rm m/tokenizer/merges.txt
    printf 'a cat\n' > p.txt
    expect_fail 2 "$BIN/spo-encode" -m m p.txt -o out.h5
    [[ "$stderr" == *merges.txt* ]]
    cp "$M/tokenizer/merges.txt" m/tokenizer/ && rm m/tokenizer/vocab.json
    expect_fail 2 "$BIN/spo-encode" -m m p.txt -o out.h5
    [[ "$stderr" == *vocab.json* ]]
}

@test "class 10: a missing --spm-weights is bad input (exit 2, names the file)" {
    expect_fail 2 "$BIN/spo-score" -m "$M" --spm "$FIX/tiny-spm/clip" --spm-weights no-such.bin \
        -e "$FIX/score/embeds.h5" "$FIX/score/pool.h5" -o out.h5
    [[ "$stderr" == *no-such.bin* ]]
}
