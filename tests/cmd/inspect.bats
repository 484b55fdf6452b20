#!/usr/bin/env bats
# Command tests for spo-inspect: good files of every schema, and bad inputs
# that must give exit 2 (invalid) or 1 (I/O) with one line on stderr, no
# crash (sanitizer exit 99 or a signal would fail), and no file left behind.

load helpers
TOOL=spo-inspect

setup_file() {
    export FILES="$BATS_FILE_TMPDIR/files"
    "$HELP/spo-testfiles" "$FILES"
}

@test "every good file passes --check" {
    for f in "$FILES"/good/*.h5; do
        run "$BIN/spo-inspect" --check "$f"
        [ "$status" -eq 0 ]
        [[ "$output" == *": ok ("*")" ]]
    done
}

@test "summary lists schema, attributes, datasets with stats" {
    run "$BIN/spo-inspect" "$FILES/good/pool.h5"
    [ "$status" -eq 0 ]
    [[ "$output" == *"schema: pool/1 (valid)"* ]]
    [[ "$output" == *"/children"*"f32"*"[2,4,4,8,8]"*"min"*"max"*"mean"*"nan 0 inf 0"* ]]
    [[ "$output" == *"history = "* ]]
}

@test "summary counts NaN and Inf" {
    run "$BIN/spo-inspect" "$FILES/bad/nan.h5"
    [ "$status" -eq 0 ]
    [[ "$output" == *"INVALID"* ]]
    [[ "$output" == *"nan 1 inf 0"* ]]
}

@test "h5dump and h5ls read every file" {
    for f in "$FILES"/good/*.h5; do
        h5dump -H "$f" > /dev/null
        h5ls -r "$f" > /dev/null
    done
}

@test "file image on stdin" {
    run bash -c "'$BIN/spo-inspect' --check - < '$FILES/good/state.h5'"
    [ "$status" -eq 0 ]
    [[ "$output" == "<stdin>: ok (state/1)" ]]
}

@test "copy through a pipe gives a normal file with history appended" {
    "$BIN/spo-inspect" --check "$FILES/good/scores.h5" -o - | "$BIN/spo-inspect" --check - -o copy.h5
    run "$BIN/spo-inspect" --check copy.h5
    [ "$status" -eq 0 ]
    h5dump -a history copy.h5 | grep -c 'spo-inspect' | grep -q 2
}

@test "bad: wrong schema name" { expect_fail 2 "$BIN/spo-inspect" --check "$FILES/bad/bad_name.h5"; [[ "$stderr" == *"poool/1"* ]]; }
@test "bad: unsupported schema version" { expect_fail 2 "$BIN/spo-inspect" --check "$FILES/bad/bad_version.h5"; [[ "$stderr" == *"version 'pool/2' is not supported"* ]]; }
@test "bad: no spo_schema attribute" { expect_fail 2 "$BIN/spo-inspect" --check "$FILES/bad/no_schema.h5"; [[ "$stderr" == *"not an spo file"* ]]; }
@test "bad: missing dataset" { expect_fail 2 "$BIN/spo-inspect" --check "$FILES/bad/missing_dataset.h5"; [[ "$stderr" == *"missing dataset /children"* ]]; }
@test "bad: wrong dtype" { expect_fail 2 "$BIN/spo-inspect" --check "$FILES/bad/wrong_dtype.h5"; [[ "$stderr" == *"/parent is i32, expected f32"* ]]; }
@test "bad: wrong rank" { expect_fail 2 "$BIN/spo-inspect" --check "$FILES/bad/wrong_rank.h5"; [[ "$stderr" == *"/children is [2,4,4,8], expected [B,K,C,h,w]"* ]]; }
@test "bad: wrong shape" { expect_fail 2 "$BIN/spo-inspect" --check "$FILES/bad/wrong_shape.h5"; [[ "$stderr" == *"[2,4,4,8,9]"* ]]; }
@test "bad: NaN where forbidden" { expect_fail 2 "$BIN/spo-inspect" --check "$FILES/bad/nan.h5"; [[ "$stderr" == *"/parent has 1 NaN/Inf"* ]]; }
@test "bad: Inf where forbidden" { expect_fail 2 "$BIN/spo-inspect" --check "$FILES/bad/inf.h5"; [[ "$stderr" == *"/x0_hat"* ]]; }
@test "bad: missing attribute" { expect_fail 2 "$BIN/spo-inspect" --check "$FILES/bad/missing_attr.h5"; [[ "$stderr" == *"missing attribute 'model_id'"* ]]; }
@test "bad: attribute of the wrong type" { expect_fail 2 "$BIN/spo-inspect" --check "$FILES/bad/attr_type.h5"; [[ "$stderr" == *"'step' is string"* ]]; }
@test "bad: check against another schema" { expect_fail 2 "$BIN/spo-inspect" --schema pairs "$FILES/good/pool.h5"; [[ "$stderr" == *"is a 'pool/1' file, expected pairs/2"* ]]; }

@test "bad: truncated file" {
    head -c 1500 "$FILES/good/pool.h5" > trunc.h5
    expect_fail 2 "$BIN/spo-inspect" --check trunc.h5
    [[ "$stderr" == *"corrupt or truncated"* ]]
}

@test "bad: truncated file on stdin" {
    head -c 1500 "$FILES/good/pool.h5" > trunc.h5
    expect_fail 2 bash -c "'$BIN/spo-inspect' - < trunc.h5"
}

@test "bad: not HDF5" {
    echo "hello" > text.h5
    expect_fail 2 "$BIN/spo-inspect" --check text.h5
    [[ "$stderr" == *"not an HDF5 file"* ]]
}

@test "bad: empty file" {
    : > empty.h5
    expect_fail 2 "$BIN/spo-inspect" empty.h5
}

@test "bad: empty stdin" {
    expect_fail 2 bash -c "'$BIN/spo-inspect' - < /dev/null"
    [[ "$stderr" == *"empty input"* ]]
}

@test "bad: missing input file" { expect_fail 2 "$BIN/spo-inspect" nothere.h5; }
@test "bad: a directory as input" { expect_fail 2 "$BIN/spo-inspect" .; }
@test "bad: no input" { expect_fail 2 "$BIN/spo-inspect"; }
@test "bad: unknown option" { expect_fail 2 "$BIN/spo-inspect" --bogus x.h5; [[ "$stderr" == *"unknown option '--bogus'"* ]]; }
@test "bad: option missing its argument" { expect_fail 2 "$BIN/spo-inspect" x.h5 --schema; }
@test "bad: unknown schema name" { expect_fail 2 "$BIN/spo-inspect" --schema nope "$FILES/good/pool.h5"; }

@test "bad: output path in a missing folder" {
    expect_fail 2 "$BIN/spo-inspect" "$FILES/good/pool.h5" -o nodir/out.h5
    [ ! -e nodir ]
}

@test "bad: unwritable output" {
    expect_fail 1 "$BIN/spo-inspect" "$FILES/good/pool.h5" -o /sys/out.h5
}

@test "bad: existing output without -f, then with -f" {
    echo keep > out.h5
    expect_fail 2 "$BIN/spo-inspect" "$FILES/good/pool.h5" -o out.h5
    [ "$(cat out.h5)" = keep ]
    run "$BIN/spo-inspect" -f "$FILES/good/pool.h5" -o out.h5
    [ "$status" -eq 0 ]
    "$BIN/spo-inspect" --check out.h5
}

@test "bad: invalid input is not copied" {
    expect_fail 2 "$BIN/spo-inspect" "$FILES/bad/nan.h5" -o out.h5
    [ ! -e out.h5 ]
}
