#!/bin/sh
# prompts_bench.sh — reading a tar of one-prompt members, 25,000 and 100,000
# of them (issue 9, class 6): the times must grow about 4x, not 16x.
#   sh tests/bench/prompts_bench.sh [BUILDDIR]    (default build/rel)
cd "$(dirname "$0")/../.." || exit 2
B=${1:-build/rel}
make -s "$B/bench/bench_prompts" || exit 2
"$B/bench/bench_prompts" 25000 100000
