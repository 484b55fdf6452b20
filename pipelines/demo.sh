#!/bin/sh
# demo.sh — run what spo can do today (see README: the loop tools are not
# written yet, and this demo says so).
set -eu
cd "$(dirname "$0")/.."
BIN=${SPO_BIN:-bin}
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
echo "== spo demo: the loop tools (spo-pool, spo-score, spo-pair, spo-resample, spo-step-update) do not exist yet."
echo "== This shows the file layer every tool stands on."
build/rel/tests/helpers/spo-testfiles "$D" 2>/dev/null || make -s tests >/dev/null && build/rel/tests/helpers/spo-testfiles "$D"
echo "== the built-in schemas"
"$BIN/spo-inspect" --list-schemas | cut -c1-100
echo "== an example pool file, piped as an HDF5 file image"
cat "$D/good/pool.h5" | "$BIN/spo-inspect" -
echo "== validation of broken files (each exits 2 with one line)"
for f in "$D"/bad/*.h5; do "$BIN/spo-inspect" --check "$f" || true; done
if [ -x "$BIN/spo-mkmodel" ] && [ -x "$BIN/spo-encode" ]; then
    echo "== a tiny model and prompt embeddings"
    "$BIN/spo-mkmodel" --preset tiny -o "$D/tiny" -q
    printf 'a red cube on a table\na photo of a cat\n' > "$D/prompts.txt"
    "$BIN/spo-encode" -m "$D/tiny" "$D/prompts.txt" -o - | "$BIN/spo-inspect" -
fi
echo "== demo done"
