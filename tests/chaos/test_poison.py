"""Scenario 2: poison pills under bisect + retries + an on-failure destination, on the ordered
sources (Kinesis, Kafka). Positions: one in the middle, several adjacent, first, last, first and
last. Asserted:
  - the exact sequence of invocations docs/design.md implies (model below: halves of ceil(n/2) first,
    splitting uses no attempts, a batch of one poison record runs 1 + MaximumRetryAttempts times);
  - each poison record is in exactly one failure record (RetryAttemptsExhausted, invoke count
    1 + MaximumRetryAttempts), no good record is in any;
  - every other record reaches the function in exactly one successful invocation;
  - the source moves on: a record sent afterwards is delivered and the position passes it."""

import json
import os

import pytest

from helpers import aws
from helpers import kafka as kafka_mod
from helpers.esmd import aws_block
from helpers.procs import wait_until

N = 10
RETRIES = 2
CASES = {"one": [5], "adjacent": [4, 5, 6], "first": [0], "last": [N - 1], "first-and-last": [0, N - 1]}


def model(n, poison, retries):
    """The invocations the bisect rules of docs/design.md imply, as (lo, hi) ranges, in order."""
    calls = []

    def run(lo, hi):
        calls.append((lo, hi))
        if not any(lo <= p < hi for p in poison):
            return
        if hi - lo > 1:
            mid = lo + (hi - lo + 1) // 2
            run(lo, mid)
            run(mid, hi)
        else:
            calls.extend([(lo, hi)] * retries)

    run(0, n)
    return calls


def datas(poison):
    return [f"POISON-{i}" if i in poison else f"ok-{i}" for i in range(N)]


def failure_lines(path, count):
    def read():
        if not os.path.exists(path):
            return None
        lines = [json.loads(x) for x in open(path).read().splitlines() if x.strip()]
        return lines if len(lines) >= count else None

    return wait_until(read, 30, f"{count} failure records in {path}")


def check_invocations(funchost, data, poison):
    invs = [inv for inv in funchost.invocations() if not {"later"} & set(inv["payloads"])]
    got = [inv["payloads"] for inv in invs]
    want = [data[lo:hi] for lo, hi in model(N, poison, RETRIES)]
    assert got == want, f"invocations\n got  {got}\n want {want}"
    ok = [p for inv in invs if inv["result"] != "error" for p in inv["payloads"]]
    assert sorted(ok) == sorted(d for d in data if not d.startswith("POISON")), ok


@pytest.mark.peers("kinesis")
@pytest.mark.parametrize("case", list(CASES))
def test_kinesis_poison_pills(peers, kinesis, funchost, esmd, workdir, case):
    poison = CASES[case]
    st = aws.create_stream(kinesis, shards=1)
    data = datas(poison)
    seqs = [s for _, s, _ in aws.put_records(kinesis, st, records=[("k", d) for d in data])]
    out = os.path.join(str(workdir), "failures.jsonl")
    e = esmd({"aws": aws_block(peers),
              "functions": {"fn": {"url": funchost.url_lambda("poison"), "protocol": "lambda",
                                   "timeout_seconds": 5}},
              "event_source_mappings": [{
                  "FunctionName": "fn", "EventSourceArn": st.arn, "StartingPosition": "TRIM_HORIZON",
                  "BatchSize": N, "BisectBatchOnFunctionError": True, "MaximumRetryAttempts": RETRIES,
                  "DestinationConfig": {"OnFailure": {"Destination": "file://" + out}},
                  "EsmdOptions": {"RetryBackoff": {"BaseSeconds": 0, "MaxSeconds": 0}}}]})
    frs = failure_lines(out, len(poison))
    later = aws.put_records(kinesis, st, records=[("k", "later")])[0][1]
    wait_until(lambda: "later" in funchost.payloads(), 20, "a later record delivered")

    def checkpoint():
        return e.status()["EventSourceMappings"][0]["SourceState"]["Shards"][0].get("Checkpoint")

    wait_until(lambda: checkpoint() == later, 20, "the checkpoint past the later record")
    check_invocations(funchost, data, poison)
    frs = failure_lines(out, len(poison))
    assert len(frs) == len(poison), frs
    covered = []
    for fr in frs:
        info = fr["KinesisBatchInfo"]
        assert fr["requestContext"]["condition"] == "RetryAttemptsExhausted"
        assert fr["requestContext"]["approximateInvokeCount"] == RETRIES + 1
        lo, hi = seqs.index(info["startSequenceNumber"]), seqs.index(info["endSequenceNumber"])
        assert info["batchSize"] == hi - lo + 1
        covered.extend(range(lo, hi + 1))
    assert sorted(covered) == sorted(poison), "each poison record in exactly one failure record"


@pytest.mark.peers("kafka")
@pytest.mark.parametrize("case", list(CASES))
def test_kafka_poison_pills(peers, kafka, funchost, esmd, workdir, case):
    poison = CASES[case]
    topic = kafka.create_topic(partitions=1)
    data = datas(poison)
    kafka.produce(topic, [{"value": d, "key": "k"} for d in data])
    out = os.path.join(str(workdir), "failures.jsonl")
    group = kafka_mod.unique("chaos")
    esmd({"functions": {"fn": {"url": funchost.url_lambda("poison"), "protocol": "lambda",
                               "timeout_seconds": 5}},
          "event_source_mappings": [{
              "FunctionName": "fn", "Topics": [topic], "StartingPosition": "TRIM_HORIZON",
              "BatchSize": N, "MaximumBatchingWindowInSeconds": 1,
              "BisectBatchOnFunctionError": True, "MaximumRetryAttempts": RETRIES,
              "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [kafka.bootstrap]}},
              "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": group},
              "DestinationConfig": {"OnFailure": {"Destination": "file://" + out}},
              "EsmdOptions": {"RetryBackoff": {"BaseSeconds": 0, "MaxSeconds": 0},
                              "KafkaProperties": {"session.timeout.ms": "6000",
                                                  "heartbeat.interval.ms": "500"}}}]})
    frs = failure_lines(out, len(poison))
    kafka.produce(topic, [{"value": "later", "key": "k"}])
    wait_until(lambda: "later" in funchost.payloads(), 30, "a later record delivered")
    wait_until(lambda: kafka.committed_offsets(group, topic) == {0: N + 1}, 30,
               "the committed offset past the later record")
    check_invocations(funchost, data, poison)
    frs = failure_lines(out, len(poison))
    assert len(frs) == len(poison), frs
    covered = []
    for fr in frs:
        assert fr["requestContext"]["condition"] == "RetryAttemptsExhausted"
        assert fr["requestContext"]["approximateInvokeCount"] == RETRIES + 1
        (info,) = fr["KafkaBatchInfo"]["recordsInfo"].values()
        lo, hi = int(info["firstRecordOffset"]), int(info["lastRecordOffset"])
        assert fr["KafkaBatchInfo"]["batchSize"] == hi - lo + 1
        covered.extend(range(lo, hi + 1))
    assert sorted(covered) == sorted(poison), "each poison record in exactly one failure record"
