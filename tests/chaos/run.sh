#!/usr/bin/env bash
# Runs the chaos scenarios (tests/chaos/test_*.py) against the real peers, which the pytest
# fixtures start when they are not running (scripts/peers.sh), and esmd-funchost.
#   tests/chaos/run.sh [pytest args]    default sizes: about 5 minutes on 2 cores
#   CHAOS_FULL=1 tests/chaos/run.sh     full sizes: 10,000 records and 20 kill -9 per source
#   CHAOS_SEED=N                        repeat the kill moments of an earlier run
#   CHAOS_LOG=FILE                      keep pytest's full output (failures, CHAOS_SEED lines)
# Uses ESMD_BIN / FUNCHOST_BIN (default build/esmd, build/esmd-funchost). Prints the figures
# (records pushed, kills survived, records lost, most duplicates) and, as its last line,
# pytest's summary line. Exit status: pytest's.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export ESMD_BIN=${ESMD_BIN:-$root/build/esmd} FUNCHOST_BIN=${FUNCHOST_BIN:-$root/build/esmd-funchost}
python3 -c 'import pytest, boto3' 2>/dev/null || pip install -q pytest boto3
results=$(mktemp); log=$(mktemp)
trap 'rm -f "$results" "$log"' EXIT
CHAOS_RESULTS=$results python3 -m pytest -q -p no:cacheprovider -o junit_family=xunit2 \
  tests/chaos "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
echo
echo "chaos figures${CHAOS_FULL:+ (full mode)}:"
python3 tests/chaos/report.py "$results"
[ -n "${CHAOS_RESULTS_KEEP:-}" ] && cp "$results" "$CHAOS_RESULTS_KEEP"
[ -n "${CHAOS_LOG:-}" ] && cp "$log" "$CHAOS_LOG"
echo
grep -E '^(=+ )?[0-9]+ (passed|failed)|no tests ran' "$log" | tail -1
exit "$rc"
