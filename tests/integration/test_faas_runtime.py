"""esmd in front of a self-hosted FaaS runtime on the `http` protocol: Knative Functions'
Python runtime (func-python from PyPI: the ASGI server `func` builds into a Knative function's
image), serving deploy/functions/knative/func.py, fed by an SQS queue on fauxqs. Success,
partial batch failures, a function error (500) and a timeout each end as AWS would have them
end: delivered messages deleted, failing ones retried until the queue's redrive policy moves
them to its DLQ."""
import json
import os
import subprocess
import sys

import pytest

from helpers import aws, http
from helpers.esmd import aws_block
from helpers.procs import REPO, Proc, free_port, wait_until

PEERS = ("sqs",)
FUNC_DIR = os.path.join(REPO, "deploy", "functions", "knative")
SLOW_SECONDS = 3


@pytest.fixture(scope="module")
def knative_func(tmp_path_factory):
    """(url, seen-log path) of func-python serving func.py on a free loopback port."""
    target = os.path.join(REPO, ".peers", "knative-func", "python")
    if not os.path.isdir(os.path.join(target, "func_python")):
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "--root-user-action=ignore", "--target", target, "func-python"],
                       check=True, timeout=600, stdin=subprocess.DEVNULL)
    d = tmp_path_factory.mktemp("knative")
    seen = str(d / "seen.jsonl")
    port = free_port()
    env = dict(os.environ, PYTHONPATH=f"{target}:{FUNC_DIR}", LISTEN_ADDRESS=f"127.0.0.1:{port}",
               FUNC_SEEN_LOG=seen, FUNC_SLOW_SECONDS=str(SLOW_SECONDS))
    p = Proc([sys.executable, "-c", "import func; from func_python.http import serve; serve(func.new)"],
             d / "func.log", env=env, cwd=FUNC_DIR)
    url = f"http://127.0.0.1:{port}/"

    def ready():
        try:
            return http.get(url + "health/readiness")[0] == 200
        except OSError:
            return False

    wait_until(ready, 60, "func-python answering its readiness probe")
    yield url, seen
    p.stop()


def calls(seen):
    """Bodies of each call the function saw, in order."""
    if not os.path.exists(seen):
        return []
    with open(seen) as f:
        return [json.loads(line)["bodies"] for line in f if line.strip()]


def times_seen(seen, body):
    return sum(b.count(body) for b in calls(seen))


def run(peers, sqs, esmd, url, bodies, timeout=10):
    q = aws.create_queue_with_dlq(sqs, max_receive_count=2, visibility_timeout=30)
    aws.send_messages(sqs, q, bodies=bodies)
    e = esmd({"aws": aws_block(peers),
              "functions": {"fn": {"url": url, "protocol": "http", "timeout_seconds": timeout}},
              "event_source_mappings": [{
                  "FunctionName": "fn", "EventSourceArn": q.arn, "BatchSize": 10,
                  "FunctionResponseTypes": ["ReportBatchItemFailures"],
                  "EsmdOptions": {"RetryBackoff": {"BaseSeconds": 1, "MaxSeconds": 1}}}]})
    return e, q


def dlq_bodies(sqs, q, n):
    return sorted(m["Body"] for m in aws.drain(sqs, q.dlq, expect=n, timeout=30))


def test_success_and_partial_failures(peers, sqs, esmd, knative_func):
    url, seen = knative_func
    ok = [f"ok-p-{i}" for i in range(5)]
    e, q = run(peers, sqs, esmd, url, ok + ["fail-p-1"])
    assert dlq_bodies(sqs, q, 1) == ["fail-p-1"]  # retried, then moved by the redrive policy
    assert times_seen(seen, "fail-p-1") == 2
    for body in ok:
        assert times_seen(seen, body) == 1, f"{body} delivered {times_seen(seen, body)} times"
    wait_until(lambda: aws.queue_counts(sqs, q) == (0, 0, 0), 15, "the source queue empty")


def test_function_error_retries_the_batch(peers, sqs, esmd, knative_func):
    url, seen = knative_func
    e, q = run(peers, sqs, esmd, url, ["crash-e-1"])
    assert dlq_bodies(sqs, q, 1) == ["crash-e-1"]
    assert times_seen(seen, "crash-e-1") == 2
    (m,) = e.status()["EventSourceMappings"]
    assert m["LastProcessingResult"] == "PROBLEM: Function call failed"


def test_timeout_retries_the_batch(peers, sqs, esmd, knative_func):
    url, seen = knative_func
    e, q = run(peers, sqs, esmd, url, ["slow-t-1"], timeout=1)  # the function sleeps 3 s
    assert dlq_bodies(sqs, q, 1) == ["slow-t-1"]
    assert times_seen(seen, "slow-t-1") == 2
    assert "timeout after 1000 ms" in e.log()  # not a late success: the message was not deleted
