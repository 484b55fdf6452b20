#!/bin/sh
# run.sh — build and run the libFuzzer targets, one per tests/fuzz/fuzz_NAME.c.
#
#   sh tests/fuzz/run.sh --list           the names, one per line
#   sh tests/fuzz/run.sh SECONDS [NAME..] fuzz each (all when none named)
#
# Each target is linked as build/fuzz/NAME with clang -g -O1
# -fsanitize=fuzzer,address,undefined against every lib/*/*.c and lib/*/*/*.c
# (compiled CPU-only, as `make CUDA=0`, into build/fuzz/libspo-fuzz.a, only
# stale objects rebuilt) and the Makefile's pkg-config libraries. It runs
# for SECONDS on build/fuzz/corpus/NAME (new inputs) plus the committed
# seeds in tests/fuzz/corpus/NAME, with tests/fuzz/NAME.dict if present.
# Crash inputs go to build/fuzz/artifacts/NAME/.
# Exit status: 0 no crash, 1 a target crashed, 2 usage or build error.
# Environment: FUZZ_CC (clang), FUZZ_JOBS (2 parallel compiles).
cd "$(dirname "$0")/../.." || exit 2
FZ=tests/fuzz
OUT=build/fuzz
CC=${FUZZ_CC:-clang}
JOBS=${FUZZ_JOBS:-2}
PKGS="hdf5-serial libarchive libpng libcjson openblas"

names() {
    for f in $FZ/fuzz_*.c; do
        [ -f "$f" ] || continue
        b=${f##*/}
        b=${b%.c}
        echo "${b#fuzz_}"
    done
}

usage() {
    echo "usage: sh tests/fuzz/run.sh --list | SECONDS [NAME...]" >&2
    exit 2
}

[ "$1" = --list ] && { names; exit 0; }
case "$1" in '' | *[!0-9]*) usage ;; esac
secs=$1
shift
[ $# -eq 0 ] && set -- $(names)
[ $# -eq 0 ] && { echo "run.sh: no $FZ/fuzz_*.c" >&2; exit 2; }

command -v "$CC" >/dev/null 2>&1 || { echo "run.sh: $CC not found (install clang)" >&2; exit 2; }
pkgc=$(pkg-config --cflags $PKGS) && pkgl=$(pkg-config --libs $PKGS) ||
    { echo "run.sh: pkg-config: missing packages ($PKGS); see scripts/deps.sh" >&2; exit 2; }
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CFLAGS="-g -O1 -std=c11 -D_GNU_SOURCE -pthread -Wall -Wno-unused-parameter $SAN -Ilib -Itools $pkgc"
LIBS="$pkgl -lm"
OBJ=$OUT/obj
mkdir -p "$OBJ" || exit 2

# flags changed: rebuild everything
if [ "$(cat "$OBJ/flags" 2>/dev/null)" != "$CC $CFLAGS" ]; then
    rm -rf "$OBJ" && mkdir -p "$OBJ" && echo "$CC $CFLAGS" > "$OBJ/flags"
fi

# stale OBJ SRC: true when OBJ is missing or older than SRC or a header it used
stale() {
    [ -f "$1" ] && [ -f "${1%.o}.d" ] || return 0
    for dep in $(tr ' \\' '\n\n' < "${1%.o}.d" | grep -v ':$'); do
        [ -e "$dep" ] || return 0
        [ "$dep" -nt "$1" ] && return 0
    done
    return 1
}

compile() { # SRC OBJ
    w=""
    case "$1" in "$OBJ"/*) w=-w ;; esac # generated code: not ours to warn about
    mkdir -p "$(dirname "$2")" &&
        $CC $CFLAGS $w -fsanitize=fuzzer-no-link -MMD -MP -c "$1" -o "$2" 2> "$2.log" ||
        { cat "$2.log" >&2; rm -f "$2"; return 1; }
    [ -s "$2.log" ] && cat "$2.log" >&2
    return 0
}

build_lib() {
    # schemas/*.json are compiled into the library as the Makefile does
    if [ -f scripts/embed-schemas.sh ]; then
        mkdir -p "$OBJ/gen"
        set -- schemas/*.json
        [ -e "$1" ] || set --
        sh scripts/embed-schemas.sh "$@" > "$OBJ/gen/schemas.c.new" || return 1
        if cmp -s "$OBJ/gen/schemas.c.new" "$OBJ/gen/schemas.c"; then rm -f "$OBJ/gen/schemas.c.new"
        else mv "$OBJ/gen/schemas.c.new" "$OBJ/gen/schemas.c"; fi
    fi
    objs=""
    pids=""
    n=0
    fail=0
    for src in lib/*/*.c lib/*/*/*.c "$OBJ/gen/schemas.c"; do
        [ -f "$src" ] || continue
        case "$src" in "$OBJ"/*) o=${src%.c}.o ;; *) o=$OBJ/${src%.c}.o ;; esac
        objs="$objs $o"
        stale "$o" || continue
        echo "CC $src"
        compile "$src" "$o" &
        pids="$pids $!"
        n=$((n + 1))
        if [ $n -ge "$JOBS" ]; then
            for p in $pids; do wait "$p" || fail=1; done
            pids=""
            n=0
        fi
    done
    for p in $pids; do wait "$p" || fail=1; done
    [ $fail -eq 0 ] || return 1
    rm -f "$OUT/libspo-fuzz.a"
    ar rcs "$OUT/libspo-fuzz.a" $objs
}

build_lib || { echo "run.sh: library build failed" >&2; exit 2; }

status=0
for name in "$@"; do
    name=${name#fuzz_}
    src=$FZ/fuzz_$name.c
    [ -f "$src" ] || { echo "run.sh: no $src" >&2; status=2; continue; }
    echo "LINK $OUT/$name"
    $CC $CFLAGS -fsanitize=fuzzer "$src" "$OUT/libspo-fuzz.a" $LIBS -o "$OUT/$name" ||
        { echo "run.sh: building $name failed" >&2; status=2; continue; }
    mkdir -p "$OUT/corpus/$name" "$OUT/artifacts/$name"
    seeds=""
    [ -d "$FZ/corpus/$name" ] && seeds=$FZ/corpus/$name
    dict=""
    [ -f "$FZ/$name.dict" ] && dict="-dict=$FZ/$name.dict"
    echo "FUZZ $name for ${secs}s"
    "$OUT/$name" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$OUT/artifacts/$name/" $dict "$OUT/corpus/$name" $seeds
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "run.sh: $name FAILED (exit $rc); inputs in $OUT/artifacts/$name/:" >&2
        ls "$OUT/artifacts/$name" >&2
        [ $status -eq 0 ] && status=1
    else
        echo "run.sh: $name ok"
    fi
done
exit $status
