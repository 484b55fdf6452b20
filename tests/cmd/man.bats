#!/usr/bin/env bats
# Every tool prints Usage: for --help (exit 0, stdout) and every long option
# it accepts appears in its man page; every schema is documented in spo-files(5).

load helpers

setup_file() {
    export MAN="$ROOT/man"
}

tools() { ls "$BIN"/spo-* "$ROOT"/pipelines/spo-*; }

@test "every tool prints Usage: on --help and exits 0" {
    n=0
    for t in $(tools); do
        run --separate-stderr "$t" --help
        [ "$status" -eq 0 ] || { echo "$t: status $status"; false; }
        [[ "$output" == Usage:* ]] || { echo "$t: no Usage"; false; }
        [ -z "$stderr" ]
        n=$((n + 1))
    done
    [ "$n" -ge 1 ]
}

@test "every tool has a man page listing each long option" {
    for t in $(tools); do
        name=$(basename "$t")
        page="$MAN/$name.1"
        [ -f "$page" ] || { echo "no man page for $name"; false; }
        opts=$("$t" --help | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)
        [ -n "$opts" ]
        for o in $opts; do
            grep -qF -- "$(printf '%s' "$o" | sed 's/-/\\-/g')" "$page" || { echo "$name: $o missing from $page"; false; }
        done
    done
}

@test "every tool prints --version with the build" {
    for t in "$BIN"/spo-*; do
        run "$t" --version
        [ "$status" -eq 0 ]
        [[ "$output" == *"HDF5:"* ]]
        [[ "$output" == *"CUDA"* ]]
    done
}

@test "spo-files(5) documents every dataset and attribute of every schema" {
    for s in $("$BIN/spo-inspect" --list-schemas | cut -f1); do
        grep -qF "$(echo "${s%/*}" | tr a-z A-Z)/${s#*/}" "$MAN/spo-files.5" || { echo "schema $s missing"; false; }
        for d in $("$BIN/spo-inspect" --describe "$s" | awk '/^datasets:/{f=1;next} /^attributes:/{f=2;next} f{print $1}'); do
            grep -qF -- ".B $(printf '%s' "$d" | sed 's/-/\\-/g')" "$MAN/spo-files.5" || { echo "$s: $d missing"; false; }
        done
    done
}

@test "man pages render without warnings" {
    for p in "$MAN"/*.[157]; do
        run bash -c "MANWIDTH=80 man --warnings -l '$p' 2>&1 >/dev/null"
        [ -z "$output" ] || { echo "$p: $output"; false; }
    done
}

@test "a short option letter means the same long option in every tool" {
    declare -A long_of where
    for t in $(tools); do
        name=$(basename "$t")
        while read -r s l; do
            if [ -n "${long_of[$s]:-}" ] && [ "${long_of[$s]}" != "$l" ]; then
                echo "$s is ${long_of[$s]} in ${where[$s]} but $l in $name"
                false
            fi
            long_of[$s]=$l
            where[$s]=$name
        done < <("$t" --help | sed -nE 's/^ +(-[A-Za-z]), (--[a-z][a-z0-9-]*).*/\1 \2/p')
    done
    [ "${#long_of[@]}" -ge 5 ]
}
