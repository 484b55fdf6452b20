#!/usr/bin/env bats
# Outputs and inputs that are not ordinary (issue 9, classes 1, 2, 5, 9):
# HDF5 files that reach outside themselves are refused; a full disk is exit
# 1 with a message naming the output, no temporary left, no crash; a FIFO
# where an input file is expected is refused at once (no hang); a device or
# FIFO given as output is written as a stream, never replaced.

load helpers

setup_file() {
    export M="$FIX/tiny-sd" E="$FIX/score/embeds.h5" POOL="$FIX/score/pool.h5"
    cd "$BATS_FILE_TMPDIR"
    "$BIN/spo-init" -m "$M" -e "$E" --seed 2 -o s0.h5
    printf 'a red cube\na blue ball\n' > prompts.txt
}

setup() { cd "$BATS_FILE_TMPDIR"; }

# expect_fail (helpers) within 60 seconds: nothing here may hang
fails_soon() {
    local want=$1
    shift
    TOOL=$(basename "$1") expect_fail "$want" timeout 60 "$@"
}

no_temps() { ! ls -a "${1:-.}" | grep -q '\.tmp\.'; }

# ---- class 1: files that reach outside themselves ---------------------------------
@test "hostile HDF5: external storage, virtual dataset, external link are refused" {
    head -c 3072 /dev/urandom > secret.bin
    cp s0.h5 src.h5
    for k in external virtual elink; do
        cp s0.h5 $k.h5
        case $k in external) t="$PWD/secret.bin" ;; *) t="$PWD/src.h5" ;; esac
        "$HELP/spo-hostile" $k.h5 $k /latents "$t"
        fails_soon 2 "$BIN/spo-inspect" $k.h5
        [[ "$stderr" == *"$k.h5: /latents "*"refused"* ]]
        fails_soon 2 "$BIN/spo-inspect" --check - < $k.h5
        fails_soon 2 "$BIN/spo-pool" -q -m "$M" -e "$E" $k.h5 -o out-$k.h5
        [[ "$stderr" == *"$k.h5: /latents "*"refused"* ]]
        [ ! -e out-$k.h5 ]
        no_temps
    done
}

@test "hostile HDF5: /etc/passwd bytes are never copied into an output" {
    cp s0.h5 pw.h5
    "$HELP/spo-hostile" pw.h5 external /latents /etc/passwd
    fails_soon 2 "$BIN/spo-inspect" -o pw-copy.h5 pw.h5
    [ ! -e pw-copy.h5 ]
    fails_soon 2 "$BIN/spo-pool" -q -m "$M" -e "$E" pw.h5 -o pw-pool.h5
    [ ! -e pw-pool.h5 ]
    ! grep -rqa "root:x:0" . 2>/dev/null
}

# ---- class 2: a full disk ---------------------------------------------------------------
full_disk() {
    [ "$(id -u)" -eq 0 ] || skip "needs root to mount a small tmpfs"
    mkdir -p full
    mountpoint -q full || mount -t tmpfs -o size=64k tmpfs full || skip "cannot mount a tmpfs"
}

teardown() { mountpoint -q "$BATS_FILE_TMPDIR/full" 2>/dev/null && umount "$BATS_FILE_TMPDIR/full" || true; }

@test "disk full: spo-pool, spo-inspect -o, spo-encode exit 1 naming the output, leave nothing" {
    full_disk
    fails_soon 1 "$BIN/spo-pool" -q -m "$M" -e "$E" s0.h5 -o full/p.h5
    [[ "$stderr" == *"full/p.h5"* ]]
    no_temps full && [ ! -e full/p.h5 ]
    fails_soon 1 "$BIN/spo-inspect" -o full/c.h5 "$POOL"
    [[ "$stderr" == *"full/c.h5"* ]]
    no_temps full && [ ! -e full/c.h5 ]
    head -c 60000 /dev/zero > full/filler || true
    fails_soon 1 "$BIN/spo-encode" -q -m "$M" prompts.txt -o full/e.h5
    [[ "$stderr" == *"full/e.h5"* ]]
    no_temps full && [ ! -e full/e.h5 ]
}

@test "disk full: spo-decode to a tar and to PNG files exits 1, leaves nothing" {
    full_disk
    head -c 40000 /dev/zero > full/filler
    fails_soon 1 "$BIN/spo-decode" -q -m "$M" "$POOL" -o full/out.tar
    [[ "$stderr" == *"full/out.tar"* ]]
    no_temps full && [ ! -e full/out.tar ]
    head -c 65536 /dev/zero >> full/filler || true
    fails_soon 1 "$BIN/spo-decode" -q -m "$M" "$POOL" -o full/one.png
    no_temps full && [ ! -e full/one.png ]
}

# ---- class 5: a FIFO where a file is expected --------------------------------------------
@test "FIFO inputs are refused at once: HDF5 input, config, weights, prompts" {
    mkfifo in.fifo
    fails_soon 2 "$BIN/spo-inspect" in.fifo
    [[ "$stderr" == *"in.fifo: not a regular file"* ]]
    fails_soon 2 "$BIN/spo-pool" -q -m "$M" -e "$E" in.fifo -o out.h5
    [[ "$stderr" == *"in.fifo: not a regular file"* ]]
    fails_soon 2 "$BIN/spo-encode" -q -m "$M" in.fifo -o out.h5
    [[ "$stderr" == *"in.fifo: not a regular file"* ]]
    fails_soon 2 "$BIN/spo-convert" --list in.fifo
    [[ "$stderr" == *"in.fifo: not a regular file"* ]]
    # a model folder whose configs, weights or tokenizer files are FIFOs
    fifo_in_model() {
        local part=$1; shift
        rm -rf m && cp -r "$M" m && rm -f "m/$part" && mkfifo "m/$part"
        fails_soon 2 "$@"
        [[ "$stderr" == *"m/$part"* ]]
    }
    fifo_in_model unet/config.json "$BIN/spo-pool" -q -m m -e "$E" s0.h5 -o out.h5
    fifo_in_model unet/diffusion_pytorch_model.safetensors "$BIN/spo-pool" -q -m m -e "$E" s0.h5 -o out.h5
    fifo_in_model scheduler/scheduler_config.json "$BIN/spo-pool" -q -m m -e "$E" s0.h5 -o out.h5
    fifo_in_model vae/config.json "$BIN/spo-decode" -q -m m "$POOL" -o out.tar
    fifo_in_model vae/diffusion_pytorch_model.safetensors "$BIN/spo-decode" -q -m m "$POOL" -o out.tar
    fifo_in_model text_encoder/config.json "$BIN/spo-encode" -q -m m prompts.txt -o out.h5
    fifo_in_model tokenizer/vocab.json "$BIN/spo-encode" -q -m m prompts.txt -o out.h5
    [ ! -e out.h5 ] && [ ! -e out.tar ]
}

# ---- class 9: a device or FIFO as output ----------------------------------------------------
@test "a character device as output is written to, never replaced" {
    [ -c /dev/null ]
    ln -s /dev/null devnull
    "$BIN/spo-inspect" -o devnull "$POOL"
    "$BIN/spo-inspect" -o devnull -f "$POOL"
    "$BIN/spo-pool" -q -m "$M" -e "$E" s0.h5 -o devnull -f
    [ -c /dev/null ] && [ -L devnull ]
    "$BIN/spo-decode" -q -m "$M" "$POOL" -o /dev/null
    [ -c /dev/null ]
    no_temps && no_temps /dev
}

@test "a FIFO as output is streamed to its reader, and stays a FIFO" {
    mkfifo out.fifo
    timeout 60 cat out.fifo > got.h5 &
    timeout 60 "$BIN/spo-inspect" -o out.fifo "$POOL"
    wait
    [ -p out.fifo ]
    "$BIN/spo-inspect" --check got.h5
    "$HELP/spo-h5cmp" got.h5 /children "$POOL" /children 0
    timeout 60 cat out.fifo > got.tar &
    timeout 60 "$BIN/spo-decode" -q -m "$M" "$POOL" -o out.fifo
    wait
    [ -p out.fifo ]
    tar tf got.tar | grep -q png
    no_temps
}
