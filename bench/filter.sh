#!/usr/bin/env bash
# Usage: bench/filter.sh [SECONDS_PER_CASE]
# Builds bench/bench_filter.c at -O2 against the filter sources and runs it: records/s of
# esm_filter_match (1 and 5 patterns) next to cJSON parsing the same payloads, same run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${BENCH_OUT:-$root/build-bench}
mkdir -p "$out"
cc=${CC:-cc}
$cc -O2 -g -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -I"$root" \
    $(pkg-config --cflags libcjson) "$root/bench/bench_filter.c" "$root"/filter/*.c \
    $(pkg-config --libs libcjson) -lm -o "$out/bench_filter"
"$out/bench_filter" "${1:-1.5}"
