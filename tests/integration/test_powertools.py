"""esmd driving functions written with Powertools for AWS Lambda (Python) 3.37, the library
most Lambda stream consumers use: BatchProcessor + process_partial_response and the Parser
models, served by a real Lambda Invoke API host (serverless-offline, tests/integration/
lambda_host.sh; the handlers are deploy/functions/sls/powertools_handler.py). Asserted per
source: Powertools parses every event esmd sends (a parse error would fail the record and show
up as a wrong outcome), its batchItemFailures drive esmd's partial batch handling, and the
records failing on purpose end where AWS puts them. Kafka has no partial batch response, so a
failing Kafka record needs a raised exception, which serverless-offline's Python runner cannot
report (its runner dies and the call times out): the Kafka test covers parsing and tombstones."""

import json
import os
import subprocess

import pytest

from helpers import aws
from helpers import kafka as kafka_mod
from helpers.esmd import aws_block
from helpers.procs import REPO, free_port, wait_until

SCRIPT = os.path.join(REPO, "tests", "integration", "lambda_host.sh")
NO_BACKOFF = {"RetryBackoff": {"BaseSeconds": 0, "MaxSeconds": 0}}


@pytest.fixture(scope="module")
def powertools(tmp_path_factory):
    """(endpoint, seen-log path) of a Lambda host running the Powertools handlers."""
    seen = str(tmp_path_factory.mktemp("powertools") / "seen.jsonl")
    env = dict(os.environ, POWERTOOLS_SEEN_LOG=seen)
    env.setdefault("LAMBDA_HOST_DIR", os.path.join(REPO, ".peers", "lambda-host"))
    subprocess.run([SCRIPT, "stop"], timeout=60, env=env, stdin=subprocess.DEVNULL)  # its env is ours
    r = subprocess.run([SCRIPT, "start", str(free_port())], capture_output=True, text=True,
                       timeout=900, env=env, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"lambda_host.sh start failed:\n{r.stderr}{r.stdout}"
    endpoint = [ln.split("=", 1)[1] for ln in r.stdout.splitlines() if ln.startswith("LAMBDA_ENDPOINT=")][0]
    yield endpoint, seen
    subprocess.run([SCRIPT, "stop"], timeout=60, env=env, stdin=subprocess.DEVNULL)


def function(endpoint, source):
    return {"fn": {"url": f"{endpoint}/2015-03-31/functions/esm-test-dev-powertools-{source}/invocations",
                   "protocol": "lambda", "timeout_seconds": 6}}


def seen(path, source):
    if not os.path.exists(path):
        return []
    return [r for r in (json.loads(x) for x in open(path).read().splitlines() if x.strip())
            if r["source"] == source]


def outcomes(path, source):
    return [(r["payload"], r["outcome"]) for r in seen(path, source)]


def failure_records(path, n):
    def read():
        lines = open(path).read().splitlines() if os.path.exists(path) else []
        return [json.loads(x) for x in lines] if len(lines) >= n else None

    return wait_until(read, 60, f"{n} failure records in {path}")


@pytest.mark.peers("sqs")
def test_sqs_batch_processor_partial_failures_reach_the_dlq(peers, sqs, esmd, powertools):
    endpoint, log = powertools
    q = aws.create_queue_with_dlq(sqs, max_receive_count=2, visibility_timeout=12)
    bodies = [f"ok-{i}" for i in range(8)] + ["POISON-a", "POISON-b"]
    aws.send_messages(sqs, q, bodies=bodies)
    esmd({"aws": aws_block(peers), "functions": function(endpoint, "sqs"),
          "event_source_mappings": [{"FunctionName": "fn", "EventSourceArn": q.arn, "BatchSize": 10,
                                     "MaximumBatchingWindowInSeconds": 1,
                                     "FunctionResponseTypes": ["ReportBatchItemFailures"],
                                     "EsmdOptions": NO_BACKOFF}]})
    dead = aws.drain(sqs, q.dlq, expect=2, timeout=60)
    assert sorted(m["Body"] for m in dead) == ["POISON-a", "POISON-b"]
    got = outcomes(log, "sqs")
    assert sorted(p for p, o in got if o == "ok") == sorted(bodies[:8]), "each good message handled once"
    assert sorted(p for p, o in got if o == "failed") == ["POISON-a", "POISON-a", "POISON-b", "POISON-b"]
    wait_until(lambda: aws.queue_counts(sqs, q) == (0, 0, 0), 20, "the source queue empty")


@pytest.mark.peers("kinesis")
def test_kinesis_batch_processor_resumes_at_the_failed_records(peers, kinesis, esmd, workdir, powertools):
    endpoint, log = powertools
    st = aws.create_stream(kinesis, shards=1)
    datas = ["a", "b", "c", "POISON-d", "e", "POISON-f"]
    seqs = [s for _, s, _ in aws.put_records(kinesis, st, records=[("k", d) for d in datas])]
    out = os.path.join(str(workdir), "failures.jsonl")
    esmd({"aws": aws_block(peers), "functions": function(endpoint, "kinesis"),
          "event_source_mappings": [{"FunctionName": "fn", "EventSourceArn": st.arn,
                                     "StartingPosition": "TRIM_HORIZON", "BatchSize": 6,
                                     "FunctionResponseTypes": ["ReportBatchItemFailures"],
                                     "MaximumRetryAttempts": 1,
                                     "DestinationConfig": {"OnFailure": {"Destination": "file://" + out}},
                                     "EsmdOptions": NO_BACKOFF}]})
    frs = failure_records(out, 2)
    # Powertools reports each failed record's sequence number: the retry starts at the lowest
    # (d), and once attempts run out d and f are discarded one failure record each.
    assert [(f["KinesisBatchInfo"]["startSequenceNumber"], f["KinesisBatchInfo"]["batchSize"]) for f in frs] == \
        [(seqs[3], 1), (seqs[5], 1)]
    assert outcomes(log, "kinesis") == [
        ("a", "ok"), ("b", "ok"), ("c", "ok"), ("POISON-d", "failed"), ("e", "ok"), ("POISON-f", "failed"),
        ("POISON-d", "failed"), ("e", "ok"), ("POISON-f", "failed")]
    assert [r["sequence"] for r in seen(log, "kinesis")[:6]] == seqs, "Powertools parsed the sequence numbers"


@pytest.mark.peers("kafka")
def test_kafka_parser_models_read_every_record_and_tombstones(peers, kafka, esmd, powertools):
    endpoint, log = powertools
    topic = kafka.create_topic(partitions=1)
    records = [{"value": f"ok-{i}", "key": f"k{i}"} for i in range(4)] + [{"value": None, "key": "gone"}] + \
        [{"value": f"ok-{i}", "key": f"k{i}"} for i in (5, 6)]
    kafka.produce(topic, records)
    group = kafka_mod.unique("pt")
    esmd({"functions": function(endpoint, "kafka"),
          "event_source_mappings": [{
              "FunctionName": "fn", "Topics": [topic], "StartingPosition": "TRIM_HORIZON", "BatchSize": 7,
              "MaximumBatchingWindowInSeconds": 1,
              "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [kafka.bootstrap]}},
              "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": group}}]})
    wait_until(lambda: kafka.committed_offsets(group, topic) == {0: 7}, 60, "all 7 records committed")
    rows = seen(log, "kafka")
    ok = [(r["payload"], r["offset"], r["key"]) for r in rows if r["outcome"] == "ok"]
    assert ok == [(f"ok-{i}", i, f"k{i}") for i in (0, 1, 2, 3, 5, 6)], rows
    # AWS leaves `value` out of a record whose value is null; the data class reads it as such
    assert [(r["offset"], r["key"]) for r in rows if r["outcome"] == "tombstone"] == [(4, "gone")], rows
