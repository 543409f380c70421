#!/usr/bin/env bash
# esmd benchmarks (issue 10). Every figure is printed next to a reference measured in the same
# run (the emulator's ceiling, kcat, bare SQLite, cJSON), never as a pass/fail timing.
#
# usage: scripts/bench.sh [--quick] [CASE...]      (no CASE = all; bench/bench.py lists them)
#   --quick   smaller runs (a smoke check of the scripts, figures are noisier)
# env:
#   BENCH_OUT        output folder (default build-bench/): binaries, run/ logs, results.jsonl
#   ESMD_BIN         use this esmd instead of building one
#   BENCH_SNAPSHOT=1 build esmd from the last commit (git archive HEAD), not the working tree
#                    (done automatically when the working tree does not build)
#   BENCH_SQS_PORT   the private fauxqs started for the SQS cases (default 4766)
# Needs the Debian packages of scripts/install-deps.sh; installs the test peers with
# scripts/peers.sh install when they are missing. Results: bench/RESULTS.md explains them.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${BENCH_OUT:-$ROOT/build-bench}
export BENCH_OUT=$OUT
mkdir -p "$OUT"
log() { printf 'bench: %s\n' "$*" >&2; }

CFLAGS_BENCH="-O2 -g -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror"
CC=${CC:-cc}

build_esmd() { # src_dir build_dir
  cmake -S "$1" -B "$2" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
    cmake --build "$2" --target esmd >"$2.log" 2>&1
}

if [ -z "${ESMD_BIN:-}" ]; then
  if [ "${BENCH_SNAPSHOT:-0}" != 1 ] && build_esmd "$ROOT" "$OUT/cmake"; then
    ln -sf "$OUT/cmake/esmd" "$OUT/esmd"
    export BENCH_ESMD_COMMIT="$(git -C "$ROOT" rev-parse --short HEAD)+worktree"
    log "esmd built from the working tree"
  else
    [ "${BENCH_SNAPSHOT:-0}" = 1 ] || log "working tree does not build ($OUT/cmake.log); using HEAD"
    rm -rf "$OUT/snap/src"
    mkdir -p "$OUT/snap/src"
    git -C "$ROOT" archive HEAD | tar -x -C "$OUT/snap/src"
    build_esmd "$OUT/snap/src" "$OUT/snap/build" || {
      tail -n 30 "$OUT/snap/build.log" >&2
      exit 1
    }
    ln -sf "$OUT/snap/build/esmd" "$OUT/esmd"
    export BENCH_ESMD_COMMIT="$(git -C "$ROOT" rev-parse --short HEAD)"
    log "esmd built from HEAD $(git -C "$ROOT" rev-parse --short HEAD)"
  fi
else
  ln -sf "$(realpath "$ESMD_BIN")" "$OUT/esmd"
  export BENCH_ESMD_COMMIT="${BENCH_ESMD_COMMIT:-ESMD_BIN=$ESMD_BIN}"
fi

# The bench's own programs (small, built directly).
# shellcheck disable=SC2086
{
  $CC $CFLAGS_BENCH -o "$OUT/noop_fn" "$ROOT/bench/noop_fn.c"
  $CC $CFLAGS_BENCH $(pkg-config --cflags libcjson) -o "$OUT/sqs_tool" "$ROOT/bench/sqs_tool.c" "$ROOT/bench/bench_aws_client.c" \
    $(pkg-config --libs libcurl libcjson) -lpthread
  $CC $CFLAGS_BENCH -I"$ROOT" $(pkg-config --cflags libcjson sqlite3) -o "$OUT/bench_checkpoint" \
    "$ROOT/bench/bench_checkpoint.c" "$ROOT"/checkpoint/*.c "$ROOT"/common/*.c \
    $(pkg-config --libs libcjson sqlite3) -lev -lm -lpthread
  $CC $CFLAGS_BENCH -I"$ROOT" $(pkg-config --cflags libcjson) -o "$OUT/bench_sigv4" "$ROOT/bench/bench_sigv4.c" "$ROOT/http/esm_sigv4.c" "$ROOT"/common/*.c $(pkg-config --libs libcurl libcjson) -lcrypto -lm -lpthread
  $CC $CFLAGS_BENCH $(pkg-config --cflags libcjson) -o "$OUT/kinesis_tool" "$ROOT/bench/kinesis_tool.c" "$ROOT/bench/bench_aws_client.c" \
    $(pkg-config --libs libcurl libcjson) -lpthread
}

# Peers: the SQS and Kinesis cases start their own fauxqs / kinesis-local (npm peers); the Kafka
# cases use the shared broker of scripts/peers.sh (start it first: scripts/peers.sh start kafka)
# and confluent-kafka + kcat (installed by scripts/peers.sh install).
[ -x "$ROOT/.peers/npm/node_modules/node22/bin/node" ] || "$ROOT/scripts/peers.sh" install sqs kinesis
command -v kcat >/dev/null && python3 -c 'import confluent_kafka' 2>/dev/null || "$ROOT/scripts/peers.sh" install kafka

log "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), esmd $(git -C "$ROOT" rev-parse --short HEAD)"
exec python3 "$ROOT/bench/bench.py" "$@"
