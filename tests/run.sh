#!/bin/sh
# run.sh BINDIR BUILDDIR — run every test and end with "N passed, N failed".
# Unit tests (cmocka) count per test case, command tests (bats, TAP) per
# case, fuzzers per target. Logs of failures are kept in tests/out/.
BINDIR=${1:-bin}
B=${2:-build/rel}
cd "$(dirname "$0")/.." || exit 2
mkdir -p tests/out
export SPO_BIN="$(pwd)/$BINDIR"
export SPO_ROOT="$(pwd)"
export SPO_HELPERS="$(pwd)/$B/tests/helpers"
# the tools default to --device cuda where a GPU answers; these tests check
# the CPU path (tests/gpu/check.sh checks the GPU against it)
export SPO_DEVICE="${SPO_DEVICE:-cpu}"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=99"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=99"
# OpenBLAS picks its kernels by CPU model and falls back to the slow generic
# (Prescott) ones on CPUs it does not know; the tools re-exec themselves with
# OPENBLAS_CORETYPE set (tools/frame.c), the test binaries get it from here,
# as in tests/bench/run_unet_bench.sh.
if [ -z "${OPENBLAS_CORETYPE+x}" ]; then
    if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then export OPENBLAS_CORETYPE=SkylakeX
    elif grep -qw avx2 /proc/cpuinfo 2>/dev/null; then export OPENBLAS_CORETYPE=Haswell
    fi
fi
pass=0
fail=0
failed=""

for t in "$B"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    log="tests/out/$name.log"
    CMOCKA_MESSAGE_OUTPUT=stdout "$t" > "$log" 2>&1
    rc=$?
    p=$(grep -c '^\[       OK \]' "$log")
    f=$(grep -c '^\[  FAILED  \] [a-z_]' "$log")
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    pass=$((pass + p)); fail=$((fail + f))
    [ "$f" -gt 0 ] && failed="$failed $name" && { echo "FAIL $name (log $log)"; tail -n 20 "$log"; }
    echo "unit $name: $p passed, $f failed"
done

for t in tests/cmd/*.bats; do
    [ -f "$t" ] || continue
    name=$(basename "$t" .bats)
    log="tests/out/$name.tap"
    bats --tap "$t" > "$log" 2>&1
    rc=$?
    p=$(grep -c '^ok ' "$log")
    f=$(grep -c '^not ok ' "$log")
    # a bats run that failed without a failing case (crashed, a setup_file
    # that failed, a plan not met) counts as one failure
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "FAIL $name: bats exited $rc"; tail -n 20 "$log"; fi
    pass=$((pass + p)); fail=$((fail + f))
    [ "$f" -gt 0 ] && failed="$failed $name" && grep -A8 '^not ok' "$log"
    echo "cmd $name: $p passed, $f failed"
done

# the library's layers, file cycles and symbol prefix (lib/README.md)
if sh tests/layers.sh "$B/lib" > tests/out/layers.log 2>&1; then
    pass=$((pass + 1)); echo "layers: ok"
else
    fail=$((fail + 1)); failed="$failed layers"; echo "layers: FAILED"; cat tests/out/layers.log
fi

if [ "${SPO_SKIP_FUZZ:-0}" != 1 ] && command -v clang >/dev/null 2>&1; then
    for r in $(sh tests/fuzz/run.sh --list 2>/dev/null); do
        if sh tests/fuzz/run.sh "${SPO_FUZZ_SECONDS:-20}" "$r" > "tests/out/fuzz_$r.log" 2>&1; then
            pass=$((pass + 1)); echo "fuzz $r: ok"
        else
            fail=$((fail + 1)); failed="$failed fuzz_$r"; echo "fuzz $r: FAILED"; tail -n 30 "tests/out/fuzz_$r.log"
        fi
    done
fi

[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
