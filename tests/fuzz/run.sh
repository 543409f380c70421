#!/usr/bin/env bash
# Usage: tests/fuzz/run.sh TARGET [SECONDS]
# Builds every tests/fuzz/fuzz_TARGET*.c with libFuzzer + ASan + UBSan against the sources of
# the TARGET module folder (and common/), then runs each for SECONDS (default 60). Seeds come
# from tests/fuzz/seeds_TARGET.sh when it exists. Exits non-zero when a run finds a crash or a
# broken invariant; the reproducer is left in $FUZZ_OUT/TARGET/artifacts/.
# The seed is fixed (FUZZ_SEED, default 1) so a CI run is repeatable; FUZZ_SEED=0 picks a random
# one for longer exploratory runs.
# Needs clang and libclang-rt-14-dev (Debian: apt-get install clang libclang-rt-14-dev).
# A target whose module folder needs I/O libraries it does not exercise names its sources in a
# comment line "// FUZZ_SOURCES: invoker/esm_rbif.c filter/*.c" (paths relative to the repo, globs
# allowed; common/ is always added) and extra link flags in "// FUZZ_LIBS: -lcurl -lev".
set -euo pipefail
target=${1:?usage: run.sh TARGET [SECONDS]}
secs=${2:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${FUZZ_OUT:-$root/build-fuzz}/$target
cc=${FUZZ_CC:-clang}
mkdir -p "$out/corpus" "$out/seeds" "$out/artifacts"

shopt -s nullglob
targets=("$root"/tests/fuzz/fuzz_"$target"*.c)
[ ${#targets[@]} -gt 0 ] || { echo "no tests/fuzz/fuzz_$target*.c" >&2; exit 2; }
srcs=("$root/$target"/*.c "$root"/common/*.c)
libs=$(pkg-config --libs libcjson 2>/dev/null || echo -lcjson)
cflags=(-g -O1 -std=gnu11 -D_GNU_SOURCE -I"$root" $(pkg-config --cflags libcjson 2>/dev/null)
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
        -fno-omit-frame-pointer)

# Inputs that once crashed a target stay in its seeds for good.
cp "$root"/tests/fuzz/regressions/"$target"_* "$out/seeds/" 2>/dev/null || true
if [ -x "$root/tests/fuzz/seeds_$target.sh" ] || [ -f "$root/tests/fuzz/seeds_$target.sh" ]; then
  echo "seeds: $(bash "$root/tests/fuzz/seeds_$target.sh" "$out/seeds")" >&2
fi

status=0
for t in "${targets[@]}"; do
  name=$(basename "$t" .c)
  bin="$out/$name"
  tsrcs=("${srcs[@]}")
  spec=$(sed -n 's|^// FUZZ_SOURCES:||p' "$t" | head -1)
  if [ -n "$spec" ]; then
    tsrcs=("$root"/common/*.c)
    for g in $spec; do tsrcs+=("$root"/$g); done
  fi
  tlibs=$(sed -n 's|^// FUZZ_LIBS:||p' "$t" | head -1)
  "$cc" "${cflags[@]}" "$t" "${tsrcs[@]}" $libs $tlibs -lm -o "$bin"
  mkdir -p "$out/corpus/$name"
  echo "running $name for ${secs}s" >&2
  if ! UBSAN_OPTIONS=print_stacktrace=1 "$bin" -max_total_time="$secs" -seed="${FUZZ_SEED:-1}" -max_len=8192 \
      -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
      -artifact_prefix="$out/artifacts/$name-" "$out/corpus/$name" "$out/seeds" \
      > "$out/$name.log" 2>&1; then
    echo "FAIL: $name (log: $out/$name.log)" >&2
    tail -40 "$out/$name.log" >&2
    status=1
  else
    grep -E '^stat::number_of_executed_units|^stat::new_units_added' "$out/$name.log" >&2 || true
    echo "ok: $name" >&2
  fi
done
exit $status
