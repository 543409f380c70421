"""The esmd demo: an SQS queue feeds a function through esmd; one poison pill is isolated
by a partial batch response, retried, and handed to an on-failure queue with its message."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENDPOINT = os.environ.get("SQS_ENDPOINT", "http://127.0.0.1:4566")
FUNC_PORT, ADMIN_PORT = 19000, 19400


def say(msg):
    print(f"\033[1m==> {msg}\033[0m", flush=True)


def wait_until(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.2)
    sys.exit(f"demo: timed out after {timeout} s waiting for {what}")


def http_get(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read().decode()
    except Exception:  # noqa: BLE001 - not up yet
        return 0, ""


def main():
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    sqs = boto3.client("sqs", endpoint_url=ENDPOINT, region_name="us-east-1")
    work = tempfile.mkdtemp(prefix="esmd-demo-")
    suffix = str(int(time.time()))
    queue, failures = f"orders-{suffix}", f"orders-failures-{suffix}"
    qurl = sqs.create_queue(QueueName=queue, Attributes={"VisibilityTimeout": "4"})["QueueUrl"]
    furl = sqs.create_queue(QueueName=failures)["QueueUrl"]
    say(f"queue {queue} (visibility timeout 4 s) and on-failure queue {failures} created")

    procs = []
    log_path = os.path.join(work, "invocations.jsonl")
    funchost = subprocess.Popen(
        [os.path.join(ROOT, "build/esmd-funchost"), "--listen", f"127.0.0.1:{FUNC_PORT}",
         "--log", log_path, "--marker", "POISON"], start_new_session=True)
    procs.append(funchost)
    wait_until(lambda: http_get(f"http://127.0.0.1:{FUNC_PORT}/healthz")[0] == 200, 10,
               "the function host")
    say(f"function host on 127.0.0.1:{FUNC_PORT}: function 'partial' reports records "
        "containing POISON as failed (ReportBatchItemFailures)")

    config = {
        "state_dir": os.path.join(work, "state"),
        "admin_listen": f"127.0.0.1:{ADMIN_PORT}",
        "aws": {"region": "us-east-1", "endpoints": {"sqs": ENDPOINT, "sns": ENDPOINT}},
        "functions": {"orders": {
            "url": f"http://127.0.0.1:{FUNC_PORT}/2015-03-31/functions/partial/invocations",
            "protocol": "lambda", "timeout_seconds": 3, "max_concurrency": 4}},
        "event_source_mappings": [{
            "FunctionName": "orders",
            "EventSourceArn": f"arn:aws:sqs:us-east-1:000000000000:{queue}",
            "BatchSize": 10,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "MaximumRetryAttempts": 2,
            "DestinationConfig": {"OnFailure": {
                "Destination": f"arn:aws:sqs:us-east-1:000000000000:{failures}"}}}],
    }
    cfg_path = os.path.join(work, "esmd.json")
    with open(cfg_path, "w") as f:
        json.dump(config, f, indent=2)
    print(json.dumps(config["event_source_mappings"][0], indent=2))
    esmd_log = open(os.path.join(work, "esmd.log"), "w")
    esmd = subprocess.Popen([os.path.join(ROOT, "build/esmd"), "--config", cfg_path],
                            stderr=esmd_log, start_new_session=True)
    procs.append(esmd)
    try:
        wait_until(lambda: http_get(f"http://127.0.0.1:{ADMIN_PORT}/readyz")[0] == 200, 15,
                   "esmd to reach the queue")
        say("esmd is polling")

        n = 50
        entries = [{"Id": str(i), "MessageBody": json.dumps({"orderId": i, "item": "POISON"
                    if i == 17 else "widget"})} for i in range(n)]
        for i in range(0, n, 10):
            sqs.send_message_batch(QueueUrl=qurl, Entries=entries[i:i + 10])
        say(f"sent {n} orders; order 17 is a poison pill")

        def invocations():
            with open(log_path) as f:
                return [json.loads(line) for line in f if line.strip()]

        def delivered_ok():
            ok = set()
            for inv in invocations():
                for payload in inv.get("payloads", []):
                    if "POISON" not in payload:
                        ok.add(json.loads(payload)["orderId"])
            return len(ok) == n - 1 and ok
        wait_until(delivered_ok, 30, "the 49 good orders")
        say(f"all {n - 1} good orders processed in {len(invocations())} invocations")

        def failure_record():
            r = sqs.receive_message(QueueUrl=furl, WaitTimeSeconds=1, MaxNumberOfMessages=1)
            return r.get("Messages")
        msgs = wait_until(failure_record, 60, "the poison pill's failure record")
        poison_calls = sum(1 for inv in invocations()
                           if any("POISON" in p for p in inv.get("payloads", [])))
        say(f"the poison pill was tried {poison_calls} times (MaximumRetryAttempts 2), "
            f"then its failure record arrived in {failures}:")
        print(json.dumps(json.loads(msgs[0]["Body"]), indent=2))
        left = sqs.get_queue_attributes(QueueUrl=qurl, AttributeNames=["All"])["Attributes"]
        say(f"source queue now: {left['ApproximateNumberOfMessages']} visible, "
            f"{left['ApproximateNumberOfMessagesNotVisible']} in flight")
        status = json.loads(http_get(f"http://127.0.0.1:{ADMIN_PORT}/status")[1])
        say("esmd /status counters:")
        print(json.dumps(status["EventSourceMappings"][0]["Counters"], indent=2))
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(timeout=35)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
        esmd_log.close()
    say(f"esmd exited with {esmd.returncode}; logs and state in {work}")
    return 0 if esmd.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
