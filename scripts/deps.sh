#!/bin/sh
# deps.sh — install the Debian packages spo needs, or say exactly how.
# Called by `make test` and `make demo`; safe to run again (does nothing
# when everything is there).
set -u
PKGS="build-essential pkg-config libhdf5-dev hdf5-tools libarchive-dev libopenblas-dev libpng-dev
libcjson-dev parallel jq libcmocka-dev bats clang libclang-rt-14-dev man-db groff-base diffutils
openmpi-bin libopenmpi-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: missing Debian packages:$missing" >&2
if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends $missing >&2 || {
        echo "deps: apt-get install failed" >&2; exit 1; }
else
    echo "deps: run: sudo apt-get install -y$missing" >&2
    exit 1
fi
