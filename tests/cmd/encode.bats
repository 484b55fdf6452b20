#!/usr/bin/env bats
# Command tests for spo-encode on the tiny model (tests/fixtures/tiny-sd):
# every prompt format, stdout/stdin, sharding, f16 storage, --spm, the
# end-to-end parity of /cond with transformers (h5diff against
# tiny_sd_parity.h5), and bad inputs that must give exit 2 with one stderr
# line and no file left behind.

load helpers
OUTPUTS=out.h5

setup_file() {
    export MODEL="$FIX/tiny-sd"
}

setup() {
    cd "$BATS_TEST_TMPDIR"
    printf 'a red cat\r\n\n   \na blue dog on a mat\n' > p.txt
}

# dataset shape as h5dump prints it, e.g. "( 2, 77, 32 )"
shape() { h5dump -H -d "$2" "$1" | sed -n 's/.*DATASPACE  SIMPLE { \(( [^)]* )\).*/\1/p'; }
ints() { h5dump -d "$2" -y -w 0 "$1" | sed -n '/DATA {/,/}/p' | grep -o '[0-9-]\+' | tr '\n' ' '; }

@test "text file: checks against embeds/1 with the right shapes and ids" {
    run "$BIN/spo-encode" -q -m "$MODEL" p.txt -o e.h5
    [ "$status" -eq 0 ]
    run "$BIN/spo-inspect" --check e.h5
    [ "$output" = "e.h5: ok (embeds/1)" ]
    [ "$(shape e.h5 /cond)" = "( 2, 77, 32 )" ]
    [ "$(shape e.h5 /uncond)" = "( 1, 77, 32 )" ]
    [ "$(shape e.h5 /token_ids)" = "( 2, 77 )" ]
    [ "$(ints e.h5 /prompt_id)" = "0 1 " ]
    h5dump -d /prompt e.h5 | grep -q '"a blue dog on a mat"'
    h5dump -a model_id e.h5 | grep -q '"[0-9a-f]\{16\}"'
    ! h5ls e.h5 | grep -q spm_ids
}

@test "JSON with ids, JSON lines, and a tar.gz of both" {
    printf '[{"caption": "first", "id": 17}, "second", {"prompt": "third"}]' > p.json
    printf '"fourth"\n{"caption": "fifth", "id": 99}\n' > q.jsonl
    "$BIN/spo-encode" -q -m "$MODEL" p.json -o a.h5
    [ "$(ints a.h5 /prompt_id)" = "17 1 2 " ]
    "$BIN/spo-encode" -q -m "$MODEL" q.jsonl -o b.h5
    [ "$(ints b.h5 /prompt_id)" = "0 99 " ]
    mkdir set && cp p.json q.jsonl set/ && tar czf set.tar.gz set
    "$BIN/spo-encode" -q -m "$MODEL" set.tar.gz -o c.h5
    [ "$(shape c.h5 /cond)" = "( 5, 77, 32 )" ]
    h5dump -d /prompt c.h5 | grep -q '"fifth"'
    [ "$(ints c.h5 /prompt_id)" = "17 1 2 3 99 " ]
}

@test "stdout piped into spo-inspect, and prompts from stdin" {
    run bash -c "'$BIN/spo-encode' -q -m '$MODEL' p.txt -o - | '$BIN/spo-inspect' --check -"
    [ "$status" -eq 0 ]
    [ "$output" = "<stdin>: ok (embeds/1)" ]
    run bash -c "printf '{\"caption\": \"x\", \"id\": 5}\n' | '$BIN/spo-encode' -q -m '$MODEL' - -o s.h5"
    [ "$status" -eq 0 ]
    [ "$(ints s.h5 /prompt_id)" = "5 " ]
}

@test "the same prompts give the same embeddings; model_id is stable" {
    "$BIN/spo-encode" -q -m "$MODEL" p.txt -o a.h5
    "$BIN/spo-encode" -q -m "$MODEL" --batch 1 p.txt -o b.h5
    # batch composition changes BLAS blocking, so compare within rounding
    h5diff -d 1e-5 a.h5 b.h5 /cond /cond
    h5diff a.h5 b.h5 /uncond /uncond
    h5diff a.h5 b.h5 /token_ids /token_ids
    [ "$(h5dump -a model_id a.h5 | grep '(0)')" = "$(h5dump -a model_id b.h5 | grep '(0)')" ]
}

@test "/cond reproduces transformers' last_hidden_state (tiny_sd_parity.h5)" {
    printf '["a photo of a Cat, sitting on 2 mats!", "  Caf\xc3\xa9   au lait'"'"'s\\tfoam  ", "",' > t.json
    printf ' "an extremely long prompt that goes on and on, far past the seventy-five tokens a CLIP text encoder can take, so it must be truncated"]' >> t.json
    "$BIN/spo-encode" -q -m "$MODEL" t.json -o t.h5
    h5diff -d 1e-4 t.h5 "$FIX/tiny_sd_parity.h5" /cond /text/last_hidden_state
    h5diff t.h5 "$FIX/tiny_sd_parity.h5" /token_ids /text/ids
}

@test "--shard keeps every Nth prompt with the ids of the whole set" {
    seq 0 9 | sed 's/^/prompt /' > ten.txt
    "$BIN/spo-encode" -q -m "$MODEL" --shard 1/3 ten.txt -o s.h5
    [ "$(ints s.h5 /prompt_id)" = "1 4 7 " ]
    expect_fail 2 "$BIN/spo-encode" -m "$MODEL" --shard 3/3 ten.txt -o out.h5
    expect_fail 2 "$BIN/spo-encode" -m "$MODEL" --shard 2/4 p.txt -o out.h5
}

@test "--dtype f16, --spm, -f" {
    "$BIN/spo-encode" -q -m "$MODEL" --dtype f16 --spm "$MODEL" p.txt -o e.h5
    "$BIN/spo-inspect" e.h5 | grep -q '/cond  *f16  *\[2,77,32\]'
    "$BIN/spo-inspect" e.h5 | grep -q '/uncond  *f16'
    [ "$(shape e.h5 /spm_ids)" = "( 2, 77 )" ]
    h5diff e.h5 e.h5 /spm_ids /token_ids
    "$BIN/spo-inspect" --check e.h5
    expect_fail 2 "$BIN/spo-encode" -m "$MODEL" p.txt -o e.h5
    "$BIN/spo-encode" -q -f -m "$MODEL" p.txt -o e.h5
}

@test "--text-clean: ftfy by default, basic on request; /spm_ids by the fast tokenizer" {
    printf 'it\xe2\x80\x99s a \xe2\x80\x9cCITY\xe2\x80\x9d &amp; \xef\xac\x81ne\n' > q.txt
    printf 'it'"'"'s a "CITY" & fine\n' > s.txt
    "$BIN/spo-encode" -q -m "$MODEL" --spm "$MODEL" q.txt -o f.h5
    "$BIN/spo-encode" -q -m "$MODEL" --text-clean basic q.txt -o b.h5
    "$BIN/spo-encode" -q -m "$MODEL" --text-clean basic s.txt -o s.h5
    "$BIN/spo-inspect" --check f.h5
    h5dump -a text_clean f.h5 | grep -q '"ftfy"'
    h5dump -a text_clean b.h5 | grep -q '"basic"'
    h5dump -a spm_text_clean f.h5 | grep -q '"fast"'
    ! h5dump -a spm_text_clean b.h5 2>/dev/null | grep -q fast
    # ftfy uncurls the quotes, unescapes &amp; and splits the ligature
    [ "$(ints f.h5 /token_ids)" = "$(ints s.h5 /token_ids)" ]
    [ "$(ints b.h5 /token_ids)" != "$(ints s.h5 /token_ids)" ]
    [ "$(ints f.h5 /spm_ids)" != "$(ints f.h5 /token_ids)" ]
    expect_fail 2 "$BIN/spo-encode" -m "$MODEL" --text-clean fast q.txt -o out.h5
    [[ "$stderr" == *"--text-clean"* ]]
}

# an SDXL model dir: tiny-sdxl's parts, with tiny-sd's UNet where tiny-sdxl
# has none yet (the model id needs one)
sdxl_dir() {
    mkdir -p "$1"
    local p
    for p in "$FIX"/tiny-sdxl/*; do cp -r "$p" "$1/"; done
    [ -d "$1/unet" ] || cp -r "$FIX/tiny-sd/unet" "$1/"
}

# the prompts of tiny_sdxl_text.h5
sdxl_prompts() {
    printf '["a photo of a Cat, sitting on 2 mats!", "wow!! a bright ! sky", "", "  Caf\xc3\xa9   au lait'"'"'s\\tfoam  ",' > x.json
    printf ' "an extremely long prompt that goes on and on, far past the seventy-five tokens a CLIP text encoder can take, so it must be truncated"]' >> x.json
}

@test "SDXL: both encoders, the pooled embedding and the zero negative equal diffusers' encode_prompt" {
    sdxl_dir xl
    sdxl_prompts
    "$BIN/spo-encode" -q -m xl x.json -o x.h5
    run "$BIN/spo-inspect" --check x.h5
    [ "$output" = "x.h5: ok (embeds/1)" ]
    [ "$(shape x.h5 /cond)" = "( 5, 77, 64 )" ]
    [ "$(shape x.h5 /uncond)" = "( 1, 77, 64 )" ]
    [ "$(shape x.h5 /pooled)" = "( 5, 32 )" ]
    [ "$(shape x.h5 /uncond_pooled)" = "( 1, 32 )" ]
    R="$FIX/tiny_sdxl_text.h5"
    h5diff x.h5 "$R" /token_ids /ids
    h5diff x.h5 "$R" /token_ids_2 /ids_2
    h5diff -d 1e-4 x.h5 "$R" /cond /prompt_embeds
    h5diff -d 1e-4 x.h5 "$R" /pooled /pooled
    h5diff x.h5 "$R" /uncond /neg/zeros/prompt_embeds
    h5diff x.h5 "$R" /uncond_pooled /neg/zeros/pooled
    h5dump -a uncond x.h5 | grep -q '"zeros"'
    h5dump -a tokenizer_2 x.h5 | grep -q 'xl/tokenizer_2"'
    # f16 storage of the pooled embeddings too
    "$BIN/spo-encode" -q -m xl --dtype f16 x.json -o h.h5
    h5dump -H -d /pooled h.h5 | grep -q 'H5T_IEEE_F16LE\|16-bit'
    h5diff -d 1e-2 h.h5 x.h5 /pooled /pooled
}

@test "SDXL: force_zeros_for_empty_prompt false encodes the empty prompt; text_encoder_2 is in the model id" {
    sdxl_dir xl
    sdxl_prompts
    "$BIN/spo-encode" -q -m xl x.json -o a.h5
    sed 's/"force_zeros_for_empty_prompt": true/"force_zeros_for_empty_prompt": false/' "$FIX/tiny-sdxl/model_index.json" > xl/model_index.json
    "$BIN/spo-encode" -q -m xl x.json -o b.h5
    h5dump -a uncond b.h5 | grep -q '"empty prompt"'
    R="$FIX/tiny_sdxl_text.h5"
    h5diff -d 1e-4 b.h5 "$R" /uncond /neg/empty/prompt_embeds
    h5diff -d 1e-4 b.h5 "$R" /uncond_pooled /neg/empty/pooled
    [ "$(h5dump -a model_id a.h5 | grep '(0)')" = "$(h5dump -a model_id b.h5 | grep '(0)')" ]
    echo ' ' >> xl/text_encoder_2/config.json
    "$BIN/spo-encode" -q -m xl x.json -o c.h5
    [ "$(h5dump -a model_id a.h5 | grep '(0)')" != "$(h5dump -a model_id c.h5 | grep '(0)')" ]
}

@test "SD v1.5 files have no SDXL datasets or attributes" {
    "$BIN/spo-encode" -q -m "$MODEL" p.txt -o e.h5
    ! h5ls e.h5 | grep -q 'pooled\|token_ids_2'
    ! h5dump -A e.h5 | grep -q 'ATTRIBUTE "uncond"\|tokenizer_2'
}

@test "bad: SDXL model whose text_encoder_2 is named a CLIPTextModel" {
    sdxl_dir xl
    sed 's/"CLIPTextModelWithProjection"/"CLIPTextModel"/' "$FIX/tiny-sdxl/model_index.json" > xl/model_index.json
    expect_fail 2 "$BIN/spo-encode" -m xl p.txt -o out.h5
    [[ "$stderr" == *"text_projection.weight"* ]]
}

@test "usage and man page list every long option" {
    run "$BIN/spo-encode" --help
    [ "$status" -eq 0 ]
    [[ "$output" == Usage:* ]]
    for o in $(printf '%s\n' "$output" | grep -o -- '--[a-z-]*' | sort -u); do
        grep -q -- "\\\\-\\\\-${o#--}" "$BATS_TEST_DIRNAME/../../man/spo-encode.1" || { echo "man lacks $o"; false; }
    done
}

@test "bad: missing prompts file" { expect_fail 2 "$BIN/spo-encode" -m "$MODEL" nope.txt -o out.h5; [[ "$stderr" == *"nope.txt: No such file"* ]]; }
@test "bad: invalid JSON" {
    printf '["a",\n {"caption": }]\n' > b.json
    expect_fail 2 "$BIN/spo-encode" -m "$MODEL" b.json -o out.h5
    [[ "$stderr" == *"b.json: invalid JSON at line 2"* ]]
}
@test "bad: missing caption" {
    printf '["a", {"title": "b"}]\n' > b.json
    expect_fail 2 "$BIN/spo-encode" -m "$MODEL" b.json -o out.h5
    [[ "$stderr" == *"b.json: item 1: no 'caption' string"* ]]
}
@test "bad: caption not a string" {
    printf '[{"caption": ["a"]}]\n' > b.json
    expect_fail 2 "$BIN/spo-encode" -m "$MODEL" b.json -o out.h5
    [[ "$stderr" == *"b.json: item 0: 'caption' is not a string"* ]]
}
@test "bad: truncated tar.gz" {
    seq 1 50000 | sed 's/^/prompt /' > big.txt && tar czf big.tar.gz big.txt
    head -c 20000 big.tar.gz > cut.tar.gz
    expect_fail 2 "$BIN/spo-encode" -m "$MODEL" cut.tar.gz -o out.h5
    [[ "$stderr" == *"cut.tar.gz"*"truncated"* ]]
}
@test "bad: empty prompt file" { : > e.txt; expect_fail 2 "$BIN/spo-encode" -m "$MODEL" e.txt -o out.h5; [[ "$stderr" == *"e.txt: no prompts"* ]]; }
@test "bad: duplicate id" { printf '{"caption": "a", "id": 1}\n"b"\n' > b.jsonl; expect_fail 2 "$BIN/spo-encode" -m "$MODEL" b.jsonl -o out.h5; [[ "$stderr" == *"line 2: duplicate id 1"* ]]; }
@test "bad: archive member of another type" { echo hi > README.md; tar cf b.tar p.txt README.md; expect_fail 2 "$BIN/spo-encode" -m "$MODEL" b.tar -o out.h5; [[ "$stderr" == *"member README.md"* ]]; }
@test "bad: missing model dir" { expect_fail 2 "$BIN/spo-encode" -m nomodel p.txt -o out.h5; [[ "$stderr" == *"nomodel"* ]]; }
@test "bad: model dir without text_encoder" {
    cp -r "$MODEL" m && rm -r m/text_encoder
    expect_fail 2 "$BIN/spo-encode" -m m p.txt -o out.h5
    [[ "$stderr" == *"text_encoder"* ]]
}
@test "bad: no -m" { expect_fail 2 "$BIN/spo-encode" p.txt -o out.h5; [[ "$stderr" == *"-m MODEL"* ]]; }
@test "bad: unknown option" { expect_fail 2 "$BIN/spo-encode" --frobnicate -m "$MODEL" p.txt -o out.h5; [[ "$stderr" == *"unknown option '--frobnicate'"* ]]; }
@test "bad: --dtype" { expect_fail 2 "$BIN/spo-encode" --dtype f64 -m "$MODEL" p.txt -o out.h5; [[ "$stderr" == *"--dtype"* ]]; }
@test "bad: --shard" { expect_fail 2 "$BIN/spo-encode" --shard 2 -m "$MODEL" p.txt -o out.h5; [[ "$stderr" == *"invalid shard '2'"* ]]; }
@test "bad: output in a missing folder" {
    expect_fail 2 "$BIN/spo-encode" -m "$MODEL" p.txt -o nodir/out.h5
    [[ "$stderr" == *"folder 'nodir' does not exist"* ]]
    [ ! -e nodir ]
}
