#!/bin/sh
# run_step_bench.sh [THREADS] — one SPO optimizer step of 40 pairs:
# spo-step-update against the official recipe's PyTorch step
# (tests/bench/torch_spo_step.py: two policy and two reference UNet passes
# per pair, peft LoRA r 4, AdamW, clipping; Python from $SPO_PYTHON or
# /work/venv) on the CPU, same configs (tiny, mid), same thread count, in
# one run, and a table of medians and minima with the ratio spo/torch
# (below 1: spo is faster).
#   THREADS      default: all cores (what spo's CPU device uses unless
#                spo-step-update has a --threads option, which gets THREADS)
#   RUNS=N       timed steps per side (default 3; torch adds one warm-up)
#   CONFIGS="tiny mid"   which configs (mid is slow on small machines)
# The pairs are made with the existing tools, without networks:
# tests/helpers/spo-fakepool writes embeds (77 x cross_attention_dim),
# pools and scores for 100 prompts, spo-pair keeps the pairs; the LoRA is a
# fresh one (spo-init --lora-out) given the model's id by spo-export -F lora.
# The mid model is tiny-sd with tests/bench/mid_unet_config.json's UNet in
# random weights (torch_spo_step.py --write-model). spo's time per step is
# the "seconds" of its --metrics line when it writes one (the step alone,
# as torch's), else the tool's wall time; the wall time is shown too.
T=${1:-$(nproc)}
RUNS=${RUNS:-3}
CONFIGS=${CONFIGS:-tiny mid}
cd "$(dirname "$0")/../.." || exit 2
PY=${SPO_PYTHON:-/work/venv/bin/python}
make -s -j2 tools tests >/dev/null || { echo "run_step_bench: make failed" >&2; exit 1; }
if [ -z "${OPENBLAS_CORETYPE+x}" ]; then
    if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then export OPENBLAS_CORETYPE=SkylakeX
    elif grep -qw avx2 /proc/cpuinfo 2>/dev/null; then export OPENBLAS_CORETYPE=Haswell
    fi
fi
BIN=$PWD/bin
FP=$PWD/build/rel/tests/helpers/spo-fakepool
w=$(mktemp -d) || exit 2
trap 'rm -rf "$w"' EXIT
out=$w/results
: >"$out"
IDS=$(seq -s, 0 99)
THR=""
"$BIN/spo-step-update" --help 2>/dev/null | grep -q -- '--threads' && THR="--threads $T"

now_ms() { date +%s%N | awk '{ printf "%.1f", $1 / 1e6 }'; }

for cfg in $CONFIGS; do
    case $cfg in
    tiny) model=tests/fixtures/tiny-sd; side=16 ;;
    mid) model=$w/mid; side=32
        "$PY" tests/bench/torch_spo_step.py --write-model "$model" --config mid 2>/dev/null ||
            { echo "run_step_bench: cannot write the mid model ($PY)" >&2; exit 1; } ;;
    *) echo "run_step_bench: unknown config $cfg" >&2; exit 2 ;;
    esac
    D=$(tr -d ' \n' <"$model/unet/config.json" | sed -n 's/.*"cross_attention_dim":\([0-9]*\).*/\1/p')
    "$BIN/spo-init" -m "$model" --lora-out "$w/l0.h5" --seed 1 -f &&
        "$BIN/spo-export" -F lora -m "$model" --lora "$w/l0.h5" -o "$w/lora.h5" -f || exit 1
    id=$(h5dump -a /model_id "$w/lora.h5" | sed -n 's/.*(0): "\(.*\)".*/\1/p')
    "$FP" embeds "$w/e.h5" ids="$IDS" L=77 D="$D" model="$id" &&
        "$FP" pool "$w/p.h5" ids="$IDS" K=4 C=4 h=$side w=$side step=5 model="$id" guidance=5 eta=1 &&
        "$FP" scores "$w/s.h5" ids="$IDS" K=4 step=5 &&
        "$BIN/spo-pair" -e "$w/e.h5" "$w/p.h5" "$w/s.h5" -o "$w/pairs.h5" -f || exit 1
    np=$(h5ls "$w/pairs.h5/win" | sed -n 's/.*{\([0-9]*\).*/\1/p')
    [ "${np:-0}" -ge 40 ] || { echo "run_step_bench: only ${np:-0} pairs" >&2; exit 1; }
    if [ -x "$BIN/spo-step-update" ]; then
        for r in $(seq 0 "$RUNS"); do # run 0: warm-up (page cache)
            rm -f "$w/m.jsonl"
            t0=$(now_ms)
            "$BIN/spo-step-update" -m "$model" --lora "$w/lora.h5" "$w/pairs.h5" -o "$w/l1.h5" --batch 40 \
                --steps 1 -q -f --metrics "$w/m.jsonl" $THR || { echo "run_step_bench: spo-step-update failed" >&2; exit 1; }
            t1=$(now_ms)
            [ "$r" -eq 0 ] && continue
            s=$(sed -n 's/.*"seconds": *\([0-9.eE+-]*\).*/\1/p' "$w/m.jsonl" 2>/dev/null | tail -n 1)
            echo "$cfg spo $(awk -v a="$t0" -v b="$t1" -v s="$s" 'BEGIN { printf "%.1f %.1f", s != "" ? s * 1000 : b - a, b - a }')"
        done >>"$out"
    else
        echo "run_step_bench: $BIN/spo-step-update not built; torch only" >&2
    fi
    OMP_NUM_THREADS=$T "$PY" tests/bench/torch_spo_step.py --threads "$T" --runs "$RUNS" --configs "$cfg" 2>/dev/null |
        grep '^{' | tee "$w/t.json" | sed 's/.*"ms": \([0-9.]*\), "min_ms": \([0-9.]*\).*/\1 \2/' |
        while read -r med mn; do echo "$cfg torch-median $med"; echo "$cfg torch-min $mn"; done >>"$out"
    cat "$w/t.json"
done

echo
echo "one optimizer step of 40 pairs; threads $T, runs $RUNS, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-auto}"
awk '
$2 == "spo" { n[$1]++; v[$1, n[$1]] = $3; if (!($1 in mn) || $3 < mn[$1]) mn[$1] = $3; wall[$1] = $4 }
$2 == "torch-median" { tm[$1] = $3 }
$2 == "torch-min" { tn[$1] = $3 }
!($1 in seen) { seen[$1] = 1; order[k++] = $1 }
function median(c,   i, j, t, a) {
    for (i = 1; i <= n[c]; i++) a[i] = v[c, i]
    for (i = 1; i <= n[c]; i++) for (j = i + 1; j <= n[c]; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n[c] % 2 ? a[(n[c] + 1) / 2] : (a[n[c] / 2] + a[n[c] / 2 + 1]) / 2
}
END {
    printf "%-6s %12s %12s %7s   %12s %12s %7s   %12s\n", "config", "spo_ms", "torch_ms", "ratio", "spo_min", "torch_min",
        "ratio", "spo_wall_ms"
    for (i = 0; i < k; i++) {
        c = order[i]
        s = n[c] ? median(c) : ""
        r = (s != "" && tm[c] > 0) ? sprintf("%.3f", s / tm[c]) : "-"
        r1 = (n[c] && tn[c] > 0) ? sprintf("%.3f", mn[c] / tn[c]) : "-"
        printf "%-6s %12s %12s %7s   %12s %12s %7s   %12s\n", c, s == "" ? "-" : s, tm[c] == "" ? "-" : tm[c], r,
            n[c] ? mn[c] : "-", tn[c] == "" ? "-" : tn[c], r1, n[c] ? wall[c] : "-"
    }
}' "$out"
