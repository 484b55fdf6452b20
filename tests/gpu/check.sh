#!/usr/bin/env bash
# tests/gpu/check.sh — the CUDA path against the CPU path, on one GPU, in a
# few minutes, with nothing but this repository (no network, no Python).
#
#   1. build with CUDA (make CUDA=1 all tests bench; warnings in .cu are errors)
#   2. every op test on the GPU (SPO_TEST_DEVICE=cuda: double reference and
#      finite differences at the GPU tolerance), and test_ops_cuda: every op
#      on the GPU against the CPU at the fp32 bound 1e-5, NaN-poisoned
#      outputs, batch 1 and 7, odd sizes
#   3. the tiny model end to end on both devices, each stage from the same
#      inputs: spo-encode, spo-pool, spo-score (preference model and a
#      built-in scorer), spo-pair, spo-step-update (two AdamW steps),
#      spo-decode; files compared dataset by dataset with spo-h5cmp
#      (relative L2 error <= MODEL_TOL)
#   4. spo-generate on the tiny model with the committed x_T against the
#      diffusers fixture (tests/fixtures/generate, as tests/cmd/generate.bats
#      does on the CPU)
#   5. one SD v1.5-size UNet forward and forward+backward (random weights
#      from spo-mkmodel --preset sd15, 64x64 latent, batch 1), time and peak
#      GPU memory (nvidia-smi's memory.used, sampled)
#   6. the command tests of the GPU tools (tests/cmd/{encode,pool,score,
#      step_update,generate,decode}.bats) with SPO_DEVICE=cuda: reported,
#      not counted (some compare CPU runs bit for bit, e.g. batch-size
#      invariance, which a GPU need not meet); skipped when the checks
#      before took more than CHECK_BATS_BEFORE seconds (default 180)
#
# The full log goes to tests/gpu/out/check.log (or $CHECK_LOG); a short
# summary is printed last; exit 0 only if every counted check passed.
#
# CHECK_DEVICE=cpu runs the same script with the CPU on both sides and no
# CUDA build, to check the script itself on a machine without a GPU (the
# SD v1.5 UNet and the command tests are then skipped unless CHECK_ALL=1).
set -u
cd "$(dirname "$0")/../.." || exit 2
ROOT=$(pwd)
DEV=${CHECK_DEVICE:-cuda}
OUT="$ROOT/tests/gpu/out"
LOG=${CHECK_LOG:-$OUT/check.log}
OP_TOL=1e-5    # ops, fp32 (test_ops_cuda)
MODEL_TOL=1e-4 # models end to end, fp32 (DESIGN.md section 7: CPU fp32 parity bound)
mkdir -p "$OUT" && : > "$LOG" || exit 2
W=$(mktemp -d "${TMPDIR:-/tmp}/spo-gpucheck.XXXXXX") || exit 2
trap '[ -n "${SMI_PID:-}" ] && kill "$SMI_PID" 2>/dev/null; [ -n "${MK_PID:-}" ] && wait "$MK_PID" 2>/dev/null; rm -rf "$W"' EXIT
T0=$(date +%s)
results=()
nfail=0

log() { printf '%s\n' "$*" >> "$LOG"; }
say() { printf '%s\n' "$*" | tee -a "$LOG"; }

# check NAME CMD...: run CMD (stdout and stderr to the log), record PASS/FAIL
check() {
    local name="$1" t rc
    shift
    t=$(date +%s.%N)
    log "" "=== $name: $*"
    "$@" >> "$LOG" 2>&1
    rc=$?
    t=$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    if [ "$rc" -eq 0 ]; then
        results+=("PASS  $name (${t}s)")
    else
        results+=("FAIL  $name (exit $rc, ${t}s)")
        nfail=$((nfail + 1))
    fi
    log "=== $name: exit $rc, ${t}s"
    printf '%-5s %s\n' "$([ "$rc" -eq 0 ] && echo ok || echo FAIL)" "$name" >&2
    return "$rc"
}
note() { results+=("$*"); log "$*"; }

B=build/rel
BIN="$ROOT/bin"
H5CMP="$ROOT/$B/tests/helpers/spo-h5cmp"
FIX="$ROOT/tests/fixtures"
M="$FIX/tiny-sd"
SPM=(--spm "$FIX/tiny-spm/clip" --spm-weights "$FIX/tiny-spm/spm.bin")

# ---- 0. the machine --------------------------------------------------------
log "spo tests/gpu/check.sh, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(git rev-parse --short HEAD 2>/dev/null) on $(hostname)"
if command -v nvidia-smi > /dev/null; then
    CARD=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)
else
    CARD="no nvidia-smi"
fi
say "card: $CARD; device under test: $DEV"

# ---- 1. build --------------------------------------------------------------
J=$(nproc 2>/dev/null || echo 4)
if [ "$DEV" = cuda ]; then
    check "build with CUDA (make CUDA=1, -j$J)" make -j"$J" CUDA=1 all tests bench || {
        say "build failed: see $LOG"
        exit 1
    }
    check "the build has CUDA" sh -c "'$BIN/spo-inspect' --version | grep -q 'CUDA: built with'"
else
    check "build (CPU only: CHECK_DEVICE=cpu)" make -j"$J" all tests bench || exit 1
fi

# the SD v1.5-size model of section 5 (random weights, about 2 GB on disk) is
# written in the background meanwhile
MK_PID=
if [ "$DEV" = cuda ] || [ "${CHECK_ALL:-0}" = 1 ]; then
    ("$BIN/spo-mkmodel" -q --preset sd15 --no-spm -o "$W/sd15" -f > "$W/mkmodel.log" 2>&1
        echo $? > "$W/mkmodel.rc") &
    MK_PID=$!
fi

# ---- 2. ops ----------------------------------------------------------------
# a GPU op test that skips is a failure here: a GPU is expected
op_test() {
    local t="$1" out rc
    out=$(SPO_TEST_DEVICE=$DEV CMOCKA_MESSAGE_OUTPUT=stdout "$B/tests/$t" 2>&1)
    rc=$?
    printf '%s\n' "$out"
    if [ "$DEV" = cuda ] && grep -q '^SKIP\|^NOTE' <<< "$out"; then
        echo "$t did not run on the GPU"
        return 1
    fi
    return "$rc"
}
for t in act adaln attn conv dense dev norm shape; do
    check "op test test_ops_$t on $DEV (reference and finite differences)" op_test "test_ops_$t"
done
check "test_ops_cuda: every op, $DEV vs cpu, relative L2 <= $OP_TOL" op_test test_ops_cuda

# ---- 3. the tiny model end to end on both devices ----------------------------
# h5same A B TOL: every dataset of A equals B's: floats within TOL (relative
# L2, spo-h5cmp), integers exactly, strings as spo-inspect shows them (no
# HDF5 command-line tools needed)
h5same() {
    local a="$1" b="$2" tol="$3" d ty rc r n=0 bad=0
    while read -r d ty; do
        rc=0
        case "$ty" in
        f16 | f32 | f64 | bf16) r=$("$H5CMP" "$a" "$d" "$b" "$d" "$tol" 2>&1) || rc=$? ;;
        i* | u*) r=$("$H5CMP" "$a" "$d" "$b" "$d" exact 2>&1) || rc=$? ;;
        *)
            r="$ty, as spo-inspect shows it"
            [ "$(inspect_line "$a" "$d")" = "$(inspect_line "$b" "$d")" ] || rc=1
            ;;
        esac
        echo "  $d: $r $([ "$rc" -eq 0 ] && echo ok || echo DIFFERS)"
        [ "$rc" -eq 0 ] || bad=1
        n=$((n + 1))
    done < <(datasets "$a")
    [ "$n" -gt 0 ] && [ "$bad" -eq 0 ]
}
datasets() { "$BIN/spo-inspect" "$1" | awk '/^datasets:/ { on = 1; next } on && $1 ~ /^\// { print $1, $2 }'; }
inspect_line() { "$BIN/spo-inspect" "$1" | awk -v d="$2" '$1 == d'; }

# stage NAME OUT TOL TOOL ARGS...: TOOL ARGS --device cpu -o W/cpu.OUT and
# --device DEV -o W/dev.OUT, then compare
stage() {
    local name="$1" out="$2" tol="$3"
    shift 3
    "$@" --device cpu -o "$W/cpu.$out" -f || return 1
    "$@" --device "$DEV" -o "$W/dev.$out" -f || return 1
    h5same "$W/dev.$out" "$W/cpu.$out" "$tol"
}

printf 'a red apple on a table\na blue sea at dawn\na cat\n' > "$W/p.txt"
check "tiny: spo-encode, $DEV vs cpu" stage encode e.h5 "$MODEL_TOL" "$BIN/spo-encode" -q -m "$M" --spm "$FIX/tiny-spm/clip" "$W/p.txt"
E="$W/cpu.e.h5"
"$BIN/spo-init" -m "$M" -e "$E" --seed 3 -o "$W/s0.h5" --lora-out "$W/l0.h5" -f >> "$LOG" 2>&1 ||
    log "spo-init failed"
check "tiny: spo-pool (K 4, LoRA), $DEV vs cpu" stage pool pool.h5 "$MODEL_TOL" \
    "$BIN/spo-pool" -q -m "$M" -e "$E" --lora "$W/l0.h5" -K 4 "$W/s0.h5"
P="$W/cpu.pool.h5"
check "tiny: spo-score (preference model), $DEV vs cpu" stage score sc.h5 "$MODEL_TOL" \
    "$BIN/spo-score" -q -m "$M" "${SPM[@]}" -e "$E" "$P"
check "tiny: spo-score (built-in scorer), $DEV vs cpu" stage score2 sc2.h5 "$MODEL_TOL" \
    "$BIN/spo-score" -q -m "$M" --scorer saturation "$P"
"$BIN/spo-pair" -e "$E" -t 0 "$P" "$W/cpu.sc.h5" -o "$W/pairs.h5" -f >> "$LOG" 2>&1 || log "spo-pair failed"
check "tiny: spo-step-update (2 AdamW steps on the pool's pairs), $DEV vs cpu" stage update l1.h5 "$MODEL_TOL" \
    "$BIN/spo-step-update" -q -m "$M" --lora "$W/l0.h5" "$W/pairs.h5" --steps 2 --batch 2
check "tiny: spo-step-update (fixture pairs), $DEV vs cpu" stage update2 l2.h5 "$MODEL_TOL" \
    "$BIN/spo-step-update" -q -m "$M" --lora "$W/l0.h5" "$FIX/update/pairs.h5" --steps 2 --batch 3
decode_both() {
    "$BIN/spo-decode" -q -m "$M" -e "$E" "$P" --device cpu -o "$W/dec.cpu" -f || return 1
    "$BIN/spo-decode" -q -m "$M" -e "$E" "$P" --device "$DEV" -o "$W/dec.dev" -f || return 1
    local f n=0 same=0
    for f in "$W"/dec.cpu/*.png; do
        n=$((n + 1))
        cmp -s "$f" "$W/dec.dev/${f##*/}" && same=$((same + 1))
    done
    echo "spo-decode: $same of $n PNGs byte-identical on $DEV and cpu"
    [ "$n" -gt 0 ] && [ "$(ls "$W/dec.dev" | wc -l)" -eq "$n" ]
}
check "tiny: spo-decode runs on $DEV (PNGs compared, reported)" decode_both

# ---- 4. spo-generate against diffusers ------------------------------------------
G="$FIX/generate"
gen_fixture() {
    local P1="a photo of a cat" P2="A red car on a snowy road, at night" px="$ROOT/$B/tests/helpers/spo-pnginfo"
    "$BIN/spo-generate" -q -m "$M" --device "$DEV" --steps 10 --latents "$G/x_T.h5" "$P1" "$P2" -o "$W/gen" -f || return 1
    "$px" --pixels "$W/gen/p0_i0.png" "$G/expected.h5" /base/pixels 0 8 &&
        "$px" --pixels "$W/gen/p1_i0.png" "$G/expected.h5" /base/pixels 1 8 || return 1
    "$BIN/spo-generate" -q -m "$M" --device "$DEV" --lora "$G/lora.h5" --steps 10 --latents "$G/x_T.h5" "$P1" "$P2" \
        -o "$W/genl" -f || return 1
    "$px" --pixels "$W/genl/p0_i0.png" "$G/expected.h5" /lora/pixels 0 8 &&
        "$px" --pixels "$W/genl/p1_i0.png" "$G/expected.h5" /lora/pixels 1 8
}
check "spo-generate on $DEV vs the diffusers fixture (base and LoRA)" gen_fixture

# ---- 5. SD v1.5-size UNet ------------------------------------------------------
sd15() {
    wait "$MK_PID"
    cat "$W/mkmodel.log"
    [ "$(cat "$W/mkmodel.rc" 2>/dev/null)" = 0 ] || { echo "spo-mkmodel --preset sd15 failed"; return 1; }
    local base=0 peak=0
    if command -v nvidia-smi > /dev/null && [ "$DEV" = cuda ]; then
        base=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
        nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$W/mem.txt" 2>/dev/null &
        SMI_PID=$!
    fi
    local rc=0
    "$ROOT/$B/bench/unet_bench" -d "$DEV" -r 3 -c "$W/sd15/" --sd15-bwd > "$W/sd15.json" || rc=$?
    if [ -n "${SMI_PID:-}" ]; then
        kill "$SMI_PID" 2>/dev/null
        wait "$SMI_PID" 2>/dev/null
        SMI_PID=
        peak=$(awk 'BEGIN { m = 0 } $1 + 0 > m { m = $1 + 0 } END { print m }' "$W/mem.txt")
    fi
    cat "$W/sd15.json"
    [ "$rc" -eq 0 ] || return "$rc"
    SD15_LINE=$(awk -v base="$base" -v peak="$peak" '
        function f(s, k,   r) { if (match(s, "\"" k "\": *\"?[^,\"}]*")) { r = substr(s, RSTART, RLENGTH); sub(/^"[^"]*": *"?/, "", r); return r } return "" }
        /^\{/ { t[f($0, "pass")] = f($0, "ms") }
        END { printf "SD v1.5 UNet 64x64 batch 1: forward %s ms, forward+backward %s ms (median of 3); peak GPU memory %d MiB (%d MiB before)", t["fwd"], t["fwd_bwd"], peak, base }' "$W/sd15.json")
    echo "$SD15_LINE"
    grep -q '"pass": "fwd_bwd"' "$W/sd15.json"
}
SD15_LINE=""
if [ "$DEV" = cuda ] || [ "${CHECK_ALL:-0}" = 1 ]; then
    check "SD v1.5-size UNet forward and backward on $DEV (spo-mkmodel --preset sd15)" sd15
    [ -n "$SD15_LINE" ] && note "      $SD15_LINE"
else
    note "skip  SD v1.5-size UNet (CHECK_DEVICE=cpu; CHECK_ALL=1 runs it)"
fi

# ---- 6. command tests on the device (reported, not counted) ------------------------
# only while the whole script stays inside its 5 minutes (CHECK_BATS_BEFORE
# seconds elapsed at most, default 180; the suites take 1 to 2 minutes)
if ! { [ "$DEV" = cuda ] || [ "${CHECK_ALL:-0}" = 1 ]; }; then
    note "skip  command tests with SPO_DEVICE=$DEV (CHECK_DEVICE=cpu; CHECK_ALL=1 runs them)"
elif [ $(($(date +%s) - T0)) -gt "${CHECK_BATS_BEFORE:-180}" ]; then
    note "skip  command tests with SPO_DEVICE=$DEV: $(($(date +%s) - T0)) s spent already (CHECK_BATS_BEFORE=${CHECK_BATS_BEFORE:-180})"
elif command -v bats > /dev/null; then
    for s in encode pool score step_update generate decode; do
        r=$(SPO_DEVICE=$DEV SPO_BIN="$BIN" SPO_HELPERS="$ROOT/$B/tests/helpers" bats --tap "tests/cmd/$s.bats" 2>&1)
        log "" "=== bats $s with SPO_DEVICE=$DEV (not counted)" "$r"
        note "info  bats $s.bats with SPO_DEVICE=$DEV: $(grep -c '^ok ' <<< "$r") ok, $(grep -c '^not ok ' <<< "$r") not ok$(grep '^not ok ' <<< "$r" | sed 's/^not ok [0-9]* /; /' | tr -d '\n')"
    done
else
    note "skip  command tests with SPO_DEVICE=$DEV: bats is not installed"
fi

# ---- summary -----------------------------------------------------------------------
T1=$(date +%s)
{
    echo
    echo "==== tests/gpu/check.sh summary ($((T1 - T0)) s; card: $CARD; device: $DEV; log: $LOG)"
    printf '%s\n' "${results[@]}"
    if [ "$nfail" -eq 0 ]; then echo "ALL PASSED"; else echo "$nfail CHECK(S) FAILED"; fi
} | tee -a "$LOG"
[ "$nfail" -eq 0 ]
