#!/usr/bin/env bash
# Builds esmd into build/ (or build-asan/ with --sanitize). Prints the build folder.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build; opts=()
if [ "${1:-}" = "--sanitize" ]; then dir=build-asan; opts=(-DESMD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug); fi
cmake -S . -B "$dir" -G Ninja "${opts[@]}" >/dev/null
cmake --build "$dir" >&2
echo "$dir"
