# helpers.bash — the common top of every tests/cmd/*.bats (`load helpers`).
#
# Paths (exported, so setup_file and every test see them):
#   ROOT   the source tree          BIN   the tools (SPO_BIN, else ROOT/bin)
#   HELP   the test helpers (SPO_HELPERS, else ROOT/build/rel/tests/helpers)
#   FIX    tests/fixtures
# setup: each test runs in its own temporary folder ($BATS_TEST_TMPDIR); a
# file that wants another defines its own setup after `load helpers`.
#
# expect_fail STATUS CMD...: CMD exits STATUS with exactly one stderr line,
# prefixed by the tool's name ("NAME:", NAME = $TOOL or CMD's basename), and
# leaves no temporary (*.tmp.*) and none of the paths in $OUTPUTS behind;
# with NO_STDOUT=1 it must also print nothing on stdout. $status, $output
# (stdout) and $stderr stay set for further checks.
#
# attr FILE NAME: a root attribute of an HDF5 file, as h5dump prints it.
# data FILE DATASET [h5dump options]: the numbers of a dataset, one a line.

bats_require_minimum_version 1.5.0

ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
BIN="${SPO_BIN:-$ROOT/bin}"
HELP="${SPO_HELPERS:-$ROOT/build/rel/tests/helpers}"
FIX="$ROOT/tests/fixtures"
export ROOT BIN HELP FIX

setup() { cd "$BATS_TEST_TMPDIR"; }

expect_fail() {
    local want=$1 o
    shift
    run --separate-stderr "$@"
    echo "status=$status stderr=$stderr"
    [ "$status" -eq "$want" ]
    [ -n "$stderr" ]
    [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
    [[ "$stderr" == "${TOOL:-$(basename "$1")}":* ]]
    [ "${NO_STDOUT:-0}" != 1 ] || [ -z "$output" ]
    for o in ${OUTPUTS:-}; do
        [ ! -e "$o" ] || { echo "$o left behind"; return 1; }
    done
    if ls -a | grep -q '\.tmp\.'; then
        echo "temporary left behind"
        return 1
    fi
}

attr() { h5dump -a "$2" "$1" | sed -n 's/^ *(0): *//p' | tr -d '"'; }

data() {
    local f=$1 d=$2
    shift 2
    h5dump -m '%.9g' -y -w 0 -d "$d" "$@" "$f" | sed -n '/DATA {/,/^ *}/p' | sed '1d;$d' | tr -s ', ' '\n\n' | sed '/^$/d'
}

# tiny_sdxl DIR: a whole tiny SDXL model directory in DIR, of links: the
# tiny SDXL UNet, text encoders and tokenizers (tests/fixtures/tiny-sdxl)
# with a VAE of SDXL's config (tiny-sdxl/vae: tiny-sd's weights, scaling factor 0.13025)
# and tiny-sd's DDIM scheduler.
tiny_sdxl() {
    local d
    mkdir -p "$1"
    for d in unet text_encoder text_encoder_2 tokenizer tokenizer_2 model_index.json; do
        ln -sfn "$FIX/tiny-sdxl/$d" "$1/$d"
    done
    ln -sfn "$FIX/tiny-sdxl/vae" "$1/vae"
    ln -sfn "$FIX/tiny-sd/scheduler" "$1/scheduler"
}
