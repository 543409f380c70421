#!/usr/bin/env bash
# Runs every test esmd has, on a fresh Debian 12 machine too: installs what is missing, builds
# (normal and AddressSanitizer+UBSan), runs the unit tests in both builds, starts the real
# peers (SQS/SNS emulator, Kinesis emulator, Apache Kafka) and runs the integration tests, then
# the quality gates (clang-format, cppcheck, fuzzing for a bounded time).
# The last line is "N passed, N failed".
#   scripts/test.sh            everything
#   scripts/test.sh --unit     unit tests and gates only (no peers)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
mode=${1:-all}
passed=0; failed=0; failures=()

record() { # record NAME PASSED FAILED
  passed=$((passed + $2)); failed=$((failed + $3))
  [ "$3" -gt 0 ] && failures+=("$1")
  echo "== $1: $2 passed, $3 failed"
}

stage() { # stage NAME COMMAND...: a whole command counts as one test
  echo "== $1"
  if "${@:2}"; then record "$1" 1 0; else record "$1" 0 1; fi
}

run_ctest() { # run_ctest NAME BUILD_DIR
  local out; out=$(ctest --test-dir "$2" -L unit --output-on-failure 2>&1); local rc=$?
  echo "$out" | tail -n 40
  local total fail
  total=$(echo "$out" | sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' | tail -1)
  fail=$(echo "$out" | sed -n 's/.*, \([0-9]*\) tests failed out of.*/\1/p' | tail -1)
  if [ -z "$total" ]; then record "$1" 0 1; return; fi
  [ $rc -ne 0 ] && [ "${fail:-0}" -eq 0 ] && fail=1
  record "$1" $((total - fail)) "$fail"
}

run_counted() { # run_counted NAME COMMAND...: counts from the pytest summary line it prints
  local log; log=$(mktemp)
  "${@:2}" 2>&1 | tee "$log" | tail -n 60
  local line; line=$(grep -E '^(=+ )?[0-9]+ (passed|failed)|no tests ran' "$log" | tail -1)
  local p f e
  p=$(echo "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+'); f=$(echo "$line" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')
  e=$(echo "$line" | grep -oE '[0-9]+ error' | grep -oE '[0-9]+')
  f=$(( ${f:-0} + ${e:-0} ))
  if [ -z "$line" ]; then f=1; fi
  record "$1" "${p:-0}" "$f"
  rm -f "$log"
}

run_pytest() { # run_pytest NAME ARGS...
  run_counted "$1" python3 -m pytest -q -p no:cacheprovider "${@:2}"
}

stage "install dependencies" scripts/install-deps.sh
python3 -c 'import pytest, boto3' 2>/dev/null || pip install -q pytest boto3

if [ "$mode" != "--unit" ]; then # minutes of Go build: beside the C builds and unit tests
  mkdir -p .peers && tests/tools/promtool.sh >/dev/null 2>.peers/promtool-build.log &
fi
stage "build" scripts/build.sh
stage "build (ASan+UBSan)" scripts/build.sh --sanitize
run_ctest "unit tests" build
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_ctest "unit tests (ASan+UBSan)" build-asan

files=$(git ls-files '*.c' '*.h')
stage "clang-format" clang-format --dry-run --Werror $files
stage "cppcheck" cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
  --inline-suppr --suppress=missingIncludeSystem -I . $files
stage "design references resolve in the repo" python3 scripts/check-doc-refs.py
# Fuzz targets are tests/fuzz/fuzz_<module>[_topic].c; each module's targets run for a bounded time.
for target in $(ls tests/fuzz/fuzz_*.c 2>/dev/null | sed 's|.*/fuzz_\([a-z]*\).*|\1|' | sort -u); do
  stage "fuzz $target (${FUZZ_SECONDS:-30} s)" tests/fuzz/run.sh "$target" "${FUZZ_SECONDS:-30}"
done

if [ "$mode" != "--unit" ]; then
  stage "install and start peers" bash -c 'scripts/peers.sh install >/dev/null && scripts/peers.sh start >/dev/null'
  export ESMD_KEEP_PEERS=1 # one start for every suite below; stopped at the end
  ESMD_BIN=$root/build/esmd run_pytest "integration tests" tests/integration
  # The sources again, with esmd built with AddressSanitizer + UBSan (leaks fail the run).
  ESMD_BIN=$root/build-asan/esmd ASAN_OPTIONS=detect_leaks=1 \
    run_pytest "integration tests (ASan+UBSan esmd)" tests/integration/test_sqs.py \
    tests/integration/test_kinesis.py tests/integration/test_kafka.py tests/integration/test_operator.py \
    tests/integration/test_api.py
  ESMD_BIN=$root/build/esmd run_counted "chaos" tests/chaos/run.sh
  ESMD_BIN=$root/build/esmd stage "valgrind demo" tests/chaos/valgrind_demo.sh
  scripts/peers.sh stop >/dev/null 2>&1
fi

[ ${#failures[@]} -gt 0 ] && printf 'failed: %s\n' "${failures[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
