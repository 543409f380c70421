#!/usr/bin/env bash
# Prints the path of promtool (Prometheus's own linter), building it from the Go module proxy
# the first time (about 8 minutes on 2 cores; later runs reuse the binary and need no network).
# The cache lives outside the checkout, in ~/.cache/esmd/go, because CI tests a fresh clone
# every run; PROMTOOL_DIR moves it.
set -euo pipefail
version=v0.316.0
dir=${PROMTOOL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/esmd/go}
bin=$dir/bin/promtool-$version
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9 # one build at a time: scripts/test.sh starts one early, the test waits for it
if [ ! -x "$bin" ]; then
  command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
  # GOTOOLCHAIN=auto: a Go older than the module's go line fetches that toolchain (a module too)
  # modules already downloaded are served from the cache first, so a rebuild needs no network
  GOPROXY="file://$dir/path/pkg/mod/cache/download,$(go env GOPROXY)" \
  GOPATH=$dir/path GOBIN=$dir/bin GOCACHE=$dir/cache GOFLAGS=-modcacherw GOTOOLCHAIN=auto \
    go install "github.com/prometheus/prometheus/cmd/promtool@$version" >&2
  mv "$dir/bin/promtool" "$bin"
fi
echo "$bin"
