#!/usr/bin/env bash
# Runs the demo's SQS flow (scripts/demo.sh: 50 orders, one poison pill isolated by a partial
# batch response, retried, its failure record sent to an on-failure queue) with esmd under
#   valgrind --leak-check=full --error-exitcode=1
# then stops esmd with SIGTERM. Exits non-zero if valgrind reports an error or a leak, or the
# flow does not complete. Uses ESMD_BIN / FUNCHOST_BIN (default build/esmd, build/esmd-funchost;
# use a build without AddressSanitizer). Starts the SQS peer if it is not running and stops it
# again in that case.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
command -v valgrind >/dev/null || { echo "valgrind not installed (apt-get install valgrind)" >&2; exit 2; }
export ESMD_BIN=${ESMD_BIN:-$root/build/esmd} FUNCHOST_BIN=${FUNCHOST_BIN:-$root/build/esmd-funchost}
started=$(scripts/peers.sh status sqs >/dev/null 2>&1 && echo no || echo yes)
eval "$(scripts/peers.sh start sqs)"
trap '[ "$started" = yes ] && scripts/peers.sh stop sqs >/dev/null 2>&1' EXIT
SQS_ENDPOINT=$SQS_ENDPOINT python3 - <<'PY'
import json, os, signal, sys, tempfile
sys.path[:0] = [os.path.join(os.getcwd(), "tests", "integration")]
from helpers import aws
from helpers.funchost import Funchost
from helpers.procs import Proc, free_port, wait_until
from helpers import http

work = tempfile.mkdtemp(prefix="esmd-valgrind-")
sqs = aws.client("sqs", os.environ["SQS_ENDPOINT"])
q = aws.create_queue(sqs, visibility_timeout=20)
failures = aws.create_queue(sqs, name=q.name + "-failures")
fh = Funchost(work)
admin = f"127.0.0.1:{free_port()}"
cfg = {"state_dir": os.path.join(work, "state"), "admin_listen": admin,
       "aws": {"region": "us-east-1", "endpoints": {"sqs": os.environ["SQS_ENDPOINT"],
                                                     "sns": os.environ["SQS_ENDPOINT"]}},
       "functions": {"orders": {"url": fh.url_lambda("partial"), "protocol": "lambda",
                                "timeout_seconds": 10, "max_concurrency": 4}},
       "event_source_mappings": [{
           "FunctionName": "orders", "EventSourceArn": q.arn, "BatchSize": 10,
           "FunctionResponseTypes": ["ReportBatchItemFailures"], "MaximumRetryAttempts": 2,
           "EsmdOptions": {"RetryBackoff": {"BaseSeconds": 0, "MaxSeconds": 0}},
           "DestinationConfig": {"OnFailure": {"Destination": failures.arn}}}]}
os.makedirs(cfg["state_dir"])
path = os.path.join(work, "esmd.json")
json.dump(cfg, open(path, "w"))
vlog = os.path.join(work, "valgrind.log")
env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
e = Proc(["valgrind", "--leak-check=full", "--error-exitcode=1", "--track-fds=no",
          f"--log-file={vlog}", os.environ["ESMD_BIN"], "--config", path],
         os.path.join(work, "esmd.log"), env=env)
ok = False
try:
    wait_until(lambda: http.ok(f"http://{admin}/readyz"), 120, "esmd under valgrind ready")
    n = 50
    bodies = [json.dumps({"orderId": i, "item": "POISON" if i == 17 else "widget"}) for i in range(n)]
    aws.send_messages(sqs, q, bodies=bodies)
    good = {b for b in bodies if "POISON" not in b}
    wait_until(lambda: good <= set(fh.payloads()), 120, "the 49 good orders")
    msgs = aws.drain(sqs, failures, expect=1, timeout=120)
    assert json.loads(msgs[0]["Body"])["payload"]["Records"][0]["body"] == bodies[17]
    wait_until(lambda: aws.queue_counts(sqs, q) == (0, 0, 0), 60, "the queue emptied")
    print(f"flow done: {len(fh.invocations())} invocations, 1 failure record", flush=True)
    ok = True
finally:
    os.killpg(e.pid, signal.SIGTERM)
    wait_until(lambda: not e.alive(), 120, "esmd to exit under valgrind")
    rc = e.returncode()
    fh.stop()
    log = open(vlog).read()
    summary = [l for l in log.splitlines() if "ERROR SUMMARY" in l or "definitely lost" in l
               or "in use at exit" in l or "All heap blocks" in l
               or "indirectly lost" in l or "possibly lost" in l]
    print("\n".join(summary))
    print(f"valgrind log: {vlog}; esmd exit code {rc}")
    if rc != 0:
        print(open(vlog).read()[-6000:], file=sys.stderr)
    sys.exit(0 if ok and rc == 0 else 1)
PY
