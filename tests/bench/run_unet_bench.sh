#!/bin/sh
# run_unet_bench.sh [THREADS] — the C UNet (build/rel/bench/unet_bench) against
# diffusers (tests/bench/torch_unet_bench.py, Python from $SPO_PYTHON or
# /work/venv) on the CPU, same configs and shapes, and a table of the
# medians and minima with the ratio spo/torch (below 1: the C code is
# faster). On a shared machine the minima are the steadier numbers.
#   RUNS=N      timed runs per pass (default 5)
#   SD15=1      also time one SD v1.5-size forward (C only, 64x64, batch 1)
# OpenBLAS picks its kernels by CPU model; on CPUs it does not know (VMs
# with a masked model name) it falls back to the slow Prescott kernels. If
# OPENBLAS_CORETYPE is unset and the CPU has AVX-512 (or AVX2) it is set to
# SkylakeX (or Haswell) here, and the table says so.
T=${1:-1}
RUNS=${RUNS:-5}
cd "$(dirname "$0")/../.." || exit 2
PY=${SPO_PYTHON:-/work/venv/bin/python}
make -s -j2 bench >/dev/null || { echo "run_unet_bench: make bench failed" >&2; exit 1; }
if [ -z "${OPENBLAS_CORETYPE+x}" ]; then
    if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then export OPENBLAS_CORETYPE=SkylakeX
    elif grep -qw avx2 /proc/cpuinfo 2>/dev/null; then export OPENBLAS_CORETYPE=Haswell
    fi
fi
out=$(mktemp) || exit 2
trap 'rm -f "$out"' EXIT
SPO_ROOT=. build/rel/bench/unet_bench -t "$T" -r "$RUNS" -c tiny,mid >>"$out" || exit 1
OMP_NUM_THREADS=$T "$PY" tests/bench/torch_unet_bench.py --threads "$T" --runs "$RUNS" 2>/dev/null | grep '^{' >>"$out" ||
    echo "run_unet_bench: torch benchmark failed ($PY)" >&2
if [ "${SD15:-0}" = 1 ]; then
    SPO_ROOT=. build/rel/bench/unet_bench -t "$T" -r 1 -c sd15 >>"$out" || exit 1
fi
cat "$out"
echo
echo "threads $T, runs $RUNS, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-auto}"
awk '
function field(s, k,   r) {
    if (match(s, "\"" k "\": *\"?[^,\"}]*")) { r = substr(s, RSTART, RLENGTH); sub(/^"[^"]*": *"?/, "", r); return r }
    return ""
}
/^\{/ {
    key = field($0, "config") " " field($0, "pass")
    ms[field($0, "impl") SUBSEP key] = field($0, "ms")
    mn[field($0, "impl") SUBSEP key] = field($0, "min_ms")
    if (!(key in seen)) { seen[key] = 1; order[n++] = key }
}
END {
    printf "%-6s %-8s %11s %11s %6s   %11s %11s %6s\n", "config", "pass", "spo_med", "torch_med", "ratio",
        "spo_min", "torch_min", "ratio"
    for (i = 0; i < n; i++) {
        k = order[i]; split(k, a, " ")
        s = ms["spo" SUBSEP k]; t = ms["torch" SUBSEP k]; s1 = mn["spo" SUBSEP k]; t1 = mn["torch" SUBSEP k]
        r = (s != "" && t != "" && t > 0) ? sprintf("%.2f", s / t) : "-"
        r1 = (s1 != "" && t1 != "" && t1 > 0) ? sprintf("%.2f", s1 / t1) : "-"
        printf "%-6s %-8s %11s %11s %6s   %11s %11s %6s\n", a[1], a[2], s == "" ? "-" : s, t == "" ? "-" : t, r,
            s1 == "" ? "-" : s1, t1 == "" ? "-" : t1, r1
    }
}' "$out"
