#!/usr/bin/env bash
# A real Lambda Invoke API host for the invoker's integration test: serverless 3.39.0 +
# serverless-offline 13.10.1 (npm), serving deploy/functions/sls (echo, fail, partial, slow in
# Node.js; powertools-sqs/-kinesis/-kafka in Python with aws-lambda-powertools from PyPI, which
# append what they handled to $POWERTOOLS_SEEN_LOG when it is set).
# AWS's Lambda RIE is not used: its Go module is not installable from the Go module proxy.
#
#   tests/integration/lambda_host.sh install          npm install into .peers/lambda-host (idempotent)
#   tests/integration/lambda_host.sh start [PORT]     install, start in its own process group,
#                                                     wait until an invoke answers 200 (60 s deadline),
#                                                     print LAMBDA_ENDPOINT=http://127.0.0.1:PORT
#   tests/integration/lambda_host.sh stop             SIGTERM the process group by its PID
#   tests/integration/lambda_host.sh status
# Function URL: $LAMBDA_ENDPOINT/2015-03-31/functions/esm-test-dev-<fn>/invocations
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${LAMBDA_HOST_DIR:-$root/.peers/lambda-host}
pidfile=$dir/host.pid
portfile=$dir/host.port

install() {
  mkdir -p "$dir/service" "$dir/home"
  cp "$root"/deploy/functions/sls/serverless.yml "$root"/deploy/functions/sls/handler.js \
     "$root"/deploy/functions/sls/powertools_handler.py "$dir/service/"
  if [ ! -f "$dir/python/aws_lambda_powertools/__init__.py" ]; then
    python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore --target "$dir/python" \
      aws-lambda-powertools==3.37.0 pydantic==2.13.4 >&2
  fi
  if [ ! -f "$dir/node_modules/serverless-offline/package.json" ] ||
     [ ! -f "$dir/node_modules/serverless/package.json" ]; then
    [ -f "$dir/package.json" ] || echo '{"name":"esmd-lambda-host","private":true}' > "$dir/package.json"
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error \
       serverless@3.39.0 serverless-offline@13.10.1 >&2)
  fi
}

running() {
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

start() {
  local port=${1:-3002}
  if running; then echo "LAMBDA_ENDPOINT=http://127.0.0.1:$(cat "$portfile")"; return; fi
  install
  cd "$dir/service"
  # Not through npx: a killed npx leaves node holding the port. setsid gives it its own group.
  LAMBDA_PORT=$port PYTHONPATH=$dir/python HOME=$dir/home SLS_TELEMETRY_DISABLED=1 SLS_NOTIFICATIONS_MODE=off \
    SLS_DEPRECATION_DISABLE='*' setsid node "$dir/node_modules/serverless/bin/serverless.js" \
    offline start > "$dir/host.log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  echo "$port" > "$portfile"
  local url=http://127.0.0.1:$port/2015-03-31/functions/esm-test-dev-echo/invocations
  local deadline=$((SECONDS + 60))
  until [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d '{}' "$url" 2>/dev/null)" = 200 ]; do
    if ! running; then echo "lambda host exited:" >&2; tail -20 "$dir/host.log" >&2; exit 1; fi
    if [ $SECONDS -ge $deadline ]; then echo "lambda host not ready after 60 s" >&2; stop; exit 1; fi
    sleep 0.2
  done
  echo "LAMBDA_ENDPOINT=http://127.0.0.1:$port"
}

stop() {
  if [ -f "$pidfile" ]; then
    local pid; pid=$(cat "$pidfile")
    kill -TERM -- "-$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$pidfile" "$portfile"
  fi
}

case "${1:-}" in
  install) install ;;
  start) start "${2:-3002}" ;;
  stop) stop ;;
  status) if running; then echo "lambda: running (pid $(cat "$pidfile"), port $(cat "$portfile"))"; else echo "lambda: stopped"; fi ;;
  *) echo "usage: $0 install|start [PORT]|stop|status" >&2; exit 2 ;;
esac
