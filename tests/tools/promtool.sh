#!/usr/bin/env bash
# Prints the path of promtool (Prometheus's own linter), building it from the Go module proxy
# into .peers/go the first time (a few minutes; later runs reuse it).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
version=v0.316.0
dir=${PROMTOOL_DIR:-$root/.peers/go}
bin=$dir/bin/promtool-$version
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9 # one build at a time: scripts/test.sh starts one early, the test waits for it
if [ ! -x "$bin" ]; then
  GOPATH=$dir/path GOBIN=$dir/bin GOCACHE=$dir/cache GOFLAGS=-modcacherw \
    go install "github.com/prometheus/prometheus/cmd/promtool@$version" >&2
  mv "$dir/bin/promtool" "$bin"
fi
echo "$bin"
