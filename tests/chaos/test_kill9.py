"""Scenario 1: kill -9 of esmd at random moments while records flow through each source, then
restart. Asserted from the function host's log and the source's own state:
  - every record is delivered at least once;
  - duplicates come only from batches in flight at a kill (each early delivery of a duplicated
    record started shortly before a kill) and are bounded by what can be in flight;
  - checkpoints (Kinesis shard checkpoints, Kafka committed offsets) never move back;
  - at the end the source is drained: the queue is empty, every shard's checkpoint is its last
    record, every partition's committed offset is its end offset.
Default sizes: 2,000 records and 5 kills per source; CHAOS_FULL=1: 10,000 records and 20 kills."""

import pytest

from chaos_lib import (CheckpointWatcher, KafkaFeeder, KinesisFeeder, SqsFeeder, analyse,
                       kill_cycles, record_result)
from conftest import full_mode
from helpers import aws
from helpers import kafka as kafka_mod
from helpers.esmd import aws_block
from helpers.procs import wait_until

N = 10000 if full_mode() else 2000
CYCLES = 20 if full_mode() else 5
# A batch is "in flight at a kill" when its invocation started at most this long before it:
# invoke + acknowledge (delete / checkpoint / commit) take milliseconds on this machine; the
# margin covers a loaded CI box.
IN_FLIGHT_MS = 5000
SLOW_MS = 40


def function(url, timeout=3, concurrency=4):
    return {"fn": {"url": url, "protocol": "lambda", "timeout_seconds": timeout,
                   "max_concurrency": concurrency}}


def slow_echo(funchost):
    """The function takes SLOW_MS per invocation, so a random kill often finds batches in flight."""
    funchost.control("slow", "slow", ms=SLOW_MS)
    return funchost.url_lambda("slow")


def delivered_all(funchost, expected):
    want = set(expected)
    return lambda: want <= set(funchost.payloads())


@pytest.mark.peers("sqs")
def test_sqs_kill9_while_flowing(peers, sqs, funchost, esmd, chaos_rng):
    q = aws.create_queue(sqs, visibility_timeout=6)
    cfg = {"aws": aws_block(peers), "functions": function(slow_echo(funchost)),
           "event_source_mappings": [{"FunctionName": "fn", "EventSourceArn": q.arn, "BatchSize": 10}]}
    e = esmd(cfg)
    feeder = SqsFeeder(sqs, q, N, tranches=CYCLES)
    feeder.start()
    kills = kill_cycles(e, funchost, chaos_rng, CYCLES, on_cycle=feeder.release)
    feeder.join_ok(300)
    wait_until(delivered_all(funchost, feeder.expected()), 180, f"all {N} records delivered")
    # The queue's own state: everything deleted (in-flight messages of the last kill come back
    # after the visibility timeout and are delivered again, then deleted).
    wait_until(lambda: aws.queue_counts(sqs, q) == (0, 0, 0), 60, "the queue emptied")
    figures = analyse(funchost, feeder.expected(), kills, IN_FLIGHT_MS,
                      max_dupes=CYCLES * 4 * 10)
    assert e.alive()
    record_result("sqs kill -9", figures)


@pytest.mark.peers("kinesis")
def test_kinesis_kill9_while_flowing(peers, kinesis, funchost, esmd, chaos_rng):
    shards = 4 if full_mode() else 2
    st = aws.create_stream(kinesis, shards=shards)
    cfg = {"aws": aws_block(peers), "functions": function(slow_echo(funchost), concurrency=8),
           "event_source_mappings": [{"FunctionName": "fn", "EventSourceArn": st.arn, "BatchSize": 100,
                                      "StartingPosition": "TRIM_HORIZON"}]}
    e = esmd(cfg)

    def checkpoints():
        sh = e.status()["EventSourceMappings"][0]["SourceState"]["Shards"]
        return {s["ShardId"]: int(s["Checkpoint"]) for s in sh if s.get("Checkpoint")}

    watcher = CheckpointWatcher(checkpoints)
    watcher.start()
    feeder = KinesisFeeder(kinesis, st, N, tranches=CYCLES)
    feeder.start()
    try:
        kills = kill_cycles(e, funchost, chaos_rng, CYCLES, on_cycle=feeder.release)
        feeder.join_ok(300)
        wait_until(delivered_all(funchost, feeder.expected()), 180, f"all {N} records delivered")
        last = {k: int(v) for k, v in feeder.last_seq_by_shard().items()}
        wait_until(lambda: checkpoints() == last, 60, f"every shard checkpointed at its last record {last}")
    finally:
        watcher.stop()
    assert not watcher.regressions, f"checkpoints moved back: {watcher.regressions[:5]}"
    assert watcher.samples > 10
    figures = analyse(funchost, feeder.expected(), kills, IN_FLIGHT_MS,
                      max_dupes=CYCLES * shards * 100)
    record_result("kinesis kill -9", figures)


@pytest.mark.peers("kafka")
def test_kafka_kill9_while_flowing(peers, kafka, funchost, esmd, chaos_rng):
    parts = 4
    topic = kafka.create_topic(partitions=parts)
    group = kafka_mod.unique("chaos")
    cfg = {"functions": function(slow_echo(funchost), timeout=10, concurrency=8),
           "event_source_mappings": [{
               "FunctionName": "fn", "Topics": [topic], "StartingPosition": "TRIM_HORIZON",
               "BatchSize": 10,  # many small batches: a kill often finds some in flight
               "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [kafka.bootstrap]}},
               "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": group},
               "EsmdOptions": {"KafkaProperties": {"session.timeout.ms": "6000",
                                                   "heartbeat.interval.ms": "500"}}}]}
    e = esmd(cfg)

    def committed():  # the broker's own state: the group's committed offsets
        return {p: o for p, o in kafka.committed_offsets(group, topic).items() if o >= 0}

    watcher = CheckpointWatcher(committed, interval=0.5)
    watcher.start()
    feeder = KafkaFeeder(kafka, topic, N, tranches=CYCLES)
    feeder.start()
    try:
        kills = kill_cycles(e, funchost, chaos_rng, CYCLES, progress_timeout=90,
                            on_cycle=feeder.release)
        feeder.join_ok(300)
        wait_until(delivered_all(funchost, feeder.expected()), 240, f"all {N} records delivered")
        ends = kafka.end_offsets(topic)
        wait_until(lambda: committed() == ends, 60, f"committed offsets at the end offsets {ends}")
    finally:
        watcher.stop()
    assert not watcher.regressions, f"committed offsets moved back: {watcher.regressions[:5]}"
    figures = analyse(funchost, feeder.expected(), kills, IN_FLIGHT_MS,
                      max_dupes=CYCLES * parts * 10)
    record_result("kafka kill -9", figures)
