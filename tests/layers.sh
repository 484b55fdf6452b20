#!/bin/sh
# layers.sh — the library's architecture, checked.
#
#   sh tests/layers.sh [OBJDIR]
#
# 1. Layers: lib/<layer>/ may include its own layer and the layers below it,
#    never one above. The order, lowest first (lib/README.md says why):
#        core  io  ckpt  text  ops  nn  spo
#    (lib/ops/cpu/ and lib/ops/cuda/ belong to ops.)
# 2. No cycles between files: with OBJDIR (a build's objects, e.g.
#    build/rel/lib), the graph "object A uses a symbol object B defines" has
#    no cycle (every strongly connected component is one file).
# 3. Every external symbol of the library starts with spo_ (or SPO_).
# Prints one line per violation and exits 1 if there is any.
set -u
cd "$(dirname "$0")/.."
ORDER="core io ckpt text ops nn spo"
rank() { i=0; for l in $ORDER; do [ "$l" = "$1" ] && { echo $i; return; }; i=$((i+1)); done; echo 99; }
bad=0
for f in $(find lib -name '*.[ch]' | sort); do
    from=$(echo "$f" | cut -d/ -f2)
    rf=$(rank "$from")
    [ "$rf" = 99 ] && { echo "layers: $f: not in a layer folder ($ORDER)"; bad=1; continue; }
    for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
        case "$inc" in
        */*) to=${inc%%/*} ;;
        *) [ -f "$(dirname "$f")/$inc" ] && continue
           echo "layers: $f: includes \"$inc\" without its layer folder"; bad=1; continue ;;
        esac
        rt=$(rank "$to")
        if [ "$rt" = 99 ]; then echo "layers: $f: includes \"$inc\": no such layer"; bad=1
        elif [ "$rt" -gt "$rf" ]; then echo "layers: $f ($from) includes $inc ($to, a higher layer)"; bad=1; fi
    done
done
if [ $# -ge 1 ]; then
    OBJ=$1
    objs=$(find "$OBJ" -name '*.o' | sort)
    [ -n "$objs" ] || { echo "layers: no objects under $OBJ"; exit 1; }
    tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
    for o in $objs; do
        nm "$o" | awk -v o="$o" '$2 ~ /^[TDBRC]$/ { print $3, o }' >> "$tmp/defs"
        nm "$o" | awk -v o="$o" '$1 == "U" { print $2, o }' >> "$tmp/uses"
    done
    # edges "user definer", then the transitive closure by repeated joins
    sort -k1,1 "$tmp/defs" > "$tmp/d"; sort -k1,1 "$tmp/uses" > "$tmp/u"
    join "$tmp/u" "$tmp/d" | awk '$2 != $3 { print $2, $3 }' | sort -u > "$tmp/e"
    awk '
        FILENAME == ARGV[1] { adj[$1] = adj[$1] " " $2; nodes[$1]; nodes[$2]; next }
        END {
            for (s in nodes) {            # DFS from s: can s reach itself?
                delete seen; n = 0; stack[++n] = s
                while (n > 0) {
                    v = stack[n--]; k = split(adj[v], nb, " ")
                    for (i = 1; i <= k; i++) {
                        w = nb[i]; if (w == "") continue
                        if (w == s) { print "layers: cycle through " s; bad = 1; break }
                        if (!(w in seen)) { seen[w]; stack[++n] = w }
                    }
                }
            }
            exit bad
        }' "$tmp/e" || bad=1
    # library symbols without the prefix
    awk '{ print $1 }' "$tmp/defs" | grep -v '^\(spo_\|SPO_\|_\|\.\)' | sort -u | sed 's/^/layers: external symbol without spo_: /' > "$tmp/p"
    [ -s "$tmp/p" ] && { cat "$tmp/p"; bad=1; }
fi
[ $bad = 0 ] && echo "layers: ok"
exit $bad
