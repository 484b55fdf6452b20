#!/usr/bin/env bats
# Command tests for spo-convert: PyTorch checkpoints and safetensors to
# safetensors or to PyTorch checkpoints (as torch.save writes them);
# malicious and damaged checkpoints give exit 2 with one stderr line, no
# output file, and nothing they name ever runs.
# Fixtures: tests/fixtures/pickles (tests/reference/make_pickles.py).

load helpers
OUTPUTS="out.safetensors out.bin"

setup_file() {
    export PK="$FIX/pickles"
    export MARKER=/tmp/spo-pwned-5c1e9a7d3b # as in make_pickles.py
}

@test "--help prints Usage and exits 0" {
    run "$BIN/spo-convert" --help
    [ "$status" -eq 0 ]
    [[ "$output" == Usage:* ]]
}

@test "converts a torch.save checkpoint, keeping names, dtypes and shapes" {
    run "$BIN/spo-convert" "$PK/good.bin" -o out.safetensors
    [ "$status" -eq 0 ]
    [ -s out.safetensors ]
    run "$BIN/spo-convert" --list out.safetensors
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 15 ]
    [[ "$output" == *$'f16\tF16\t[4]'* ]]
    [[ "$output" == *$'bf16\tBF16\t[3,2]'* ]]
    [[ "$output" == *$'i64\tI64\t[5]'* ]]
    [[ "$output" == *$'scalar\tF32\t[]'* ]]
    [[ "$output" == *$'transposed\tF32\t[4,3]'* ]]
    [[ "$output" == *$'empty\tF32\t[0,4]'* ]]
    # the same tensors (sorted) as the expected file written by torch
    diff <("$BIN/spo-convert" --list out.safetensors | sort) \
         <("$BIN/spo-convert" --list "$PK/expected.safetensors" | grep -v '^mod/' | sort)
}

@test "protocol 4, nn.Module state dicts and {'state_dict': ...} convert too" {
    for f in good_p4 module nested; do
        run "$BIN/spo-convert" "$PK/$f.bin" -o "$f.safetensors"
        [ "$status" -eq 0 ]
    done
    [ "$("$BIN/spo-convert" --list module.safetensors | wc -l)" -eq 4 ]
    diff <("$BIN/spo-convert" --list good_p4.safetensors) <("$BIN/spo-convert" --list nested.safetensors)
}

@test "--dtype converts float tensors only" {
    "$BIN/spo-convert" "$PK/good.bin" -o a.safetensors
    run "$BIN/spo-convert" --dtype bf16 a.safetensors -o b.safetensors
    [ "$status" -eq 0 ]
    run "$BIN/spo-convert" --list b.safetensors
    [[ "$output" == *$'f32\tBF16\t[2,3]'* ]]
    [[ "$output" == *$'f64\tBF16\t[2]'* ]]
    [[ "$output" == *$'i32\tI32\t[3]'* ]]
    [[ "$output" == *$'bool\tBOOL\t[3]'* ]]
    run "$BIN/spo-convert" -d f16 "$PK/good.bin" -o c.safetensors
    [ "$status" -eq 0 ]
    [[ "$("$BIN/spo-convert" -l c.safetensors)" == *$'bf16\tF16\t[3,2]'* ]]
}

@test "writes a PyTorch checkpoint: safetensors -> bin -> safetensors gives the same file" {
    "$BIN/spo-convert" "$PK/good.bin" -o a.safetensors
    mkdir sub # named good.bin too, so the metadata (spo_source) agrees
    run "$BIN/spo-convert" a.safetensors -o sub/good.bin
    [ "$status" -eq 0 ]
    [ "$(head -c 2 sub/good.bin)" = PK ]
    diff <("$BIN/spo-convert" --list a.safetensors) <("$BIN/spo-convert" --list sub/good.bin | sort)
    run "$BIN/spo-convert" sub/good.bin -o b.safetensors
    [ "$status" -eq 0 ]
    cmp a.safetensors b.safetensors
    ! ls -a sub | grep -q '\.tmp'
}

@test "a torch.save checkpoint written again as bin comes back byte for byte" {
    mkdir sub
    run "$BIN/spo-convert" "$PK/torch_ref.bin" -o sub/torch_ref.bin
    [ "$status" -eq 0 ]
    cmp "$PK/torch_ref.bin" sub/torch_ref.bin
}

@test "--to picks the output format; .pt and .pth are checkpoints too; --dtype applies" {
    run "$BIN/spo-convert" --to bin "$PK/good.bin" -o model.weights
    [ "$status" -eq 0 ]
    [ "$(head -c 2 model.weights)" = PK ]
    run "$BIN/spo-convert" --to safetensors "$PK/good.bin" -o model.bin
    [ "$status" -eq 0 ]
    [ "$(head -c 2 model.bin)" != PK ]
    "$BIN/spo-convert" "$PK/good.bin" -o m.pt
    "$BIN/spo-convert" "$PK/good.bin" -o m.pth
    [ "$(head -c 2 m.pt)" = PK ] && [ "$(head -c 2 m.pth)" = PK ]
    run "$BIN/spo-convert" -d f16 "$PK/good.bin" -o h.bin
    [ "$status" -eq 0 ]
    [[ "$("$BIN/spo-convert" -l h.bin)" == *$'f32\tF16\t[2,3]'* ]]
    [[ "$("$BIN/spo-convert" -l h.bin)" == *$'i64\tI64\t[5]'* ]]
}

@test "bin output: dtypes torch has no storage for, bad --to, unwritable folder" {
    h='{"x":{"dtype":"U16","shape":[1],"data_offsets":[0,2]}}'
    printf "\\x$(printf %02x ${#h})\\0\\0\\0\\0\\0\\0\\0%s\\1\\0" "$h" > u16.safetensors
    "$BIN/spo-convert" --list u16.safetensors
    expect_fail 2 "$BIN/spo-convert" u16.safetensors -o out.bin
    [[ "$stderr" == *"tensor 'x': U16 has no PyTorch storage type"* ]]
    expect_fail 2 "$BIN/spo-convert" --to zip "$PK/good.bin" -o out.bin
    [[ "$stderr" == *"invalid value 'zip' for --to"* ]]
    expect_fail 2 "$BIN/spo-convert" --to bin --list "$PK/good.bin"
    expect_fail 2 "$BIN/spo-convert" "$PK/good.bin" -o /nonexistent-dir/out.bin
}

@test "output exists: refused without -f, replaced with -f" {
    echo x > out.safetensors
    run --separate-stderr "$BIN/spo-convert" "$PK/good.bin" -o out.safetensors
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"exists (use -f"* ]]
    run "$BIN/spo-convert" -f "$PK/good.bin" -o out.safetensors
    [ "$status" -eq 0 ]
    [ "$(stat -c %s out.safetensors)" -gt 100 ]
}

@test "malicious checkpoints are refused and nothing runs" {
    rm -f "$MARKER"
    expect_fail 2 "$BIN/spo-convert" "$PK/evil_system.bin" -o out.safetensors
    [[ "$stderr" == *"evil_system.bin: refused pickle GLOBAL 'posix system' (not a state-dict type)" ]]
    expect_fail 2 "$BIN/spo-convert" "$PK/evil_eval.bin" -o out.safetensors
    [[ "$stderr" == *"refused pickle GLOBAL '__builtin__ eval'"* ]]
    expect_fail 2 "$BIN/spo-convert" "$PK/evil_p4.bin" -o out.safetensors
    [[ "$stderr" == *"refused pickle STACK_GLOBAL 'posix system'"* ]]
    expect_fail 2 "$BIN/spo-convert" --list "$PK/evil_storage.bin"
    [ ! -e "$MARKER" ]
}

@test "damaged checkpoints are refused" {
    for f in truncated corrupt_pkl nopkl missing_storage short_storage bad_crc bigendian legacy notzip; do
        expect_fail 2 "$BIN/spo-convert" "$PK/$f.bin" -o out.safetensors
        [[ "$stderr" == *"$f.bin: "* ]]
    done
}

@test "bad calls" {
    expect_fail 2 "$BIN/spo-convert" "$PK/good.bin"
    [[ "$stderr" == *"missing -o"* ]]
    expect_fail 2 "$BIN/spo-convert" --dtype f8 "$PK/good.bin" -o out.safetensors
    [[ "$stderr" == *"invalid value 'f8' for --dtype"* ]]
    expect_fail 2 "$BIN/spo-convert" "$PK/good.bin" -o -
    expect_fail 2 "$BIN/spo-convert" --list "$PK/good.bin" -o out.safetensors
    expect_fail 2 "$BIN/spo-convert" nothere.bin -o out.safetensors
    expect_fail 2 "$BIN/spo-convert" --bogus "$PK/good.bin"
    expect_fail 2 "$BIN/spo-convert"
}

@test "missing output folder is a bad call (exit 2), as for every output" {
    expect_fail 2 "$BIN/spo-convert" "$PK/good.bin" -o /nonexistent-dir/out.safetensors
}
