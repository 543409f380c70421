"""Scenario 4: the peers fail, esmd does not lose anything. Each scenario uses peers of its own
(private_peers.py, and the integration tests' PrivateKafka) so the shared peers stay up.
  - the SQS emulator stopped and restarted mid-flow (twice; it keeps its data on disk);
  - the Kinesis emulator frozen (SIGSTOP: every call hangs) mid-flow, then thawed;
  - the Kafka broker stopped and restarted mid-flow;
  - an on-failure destination down for a while: the outbox fills while the source moves on,
    then drains when the destination is back; every failure record arrives exactly once."""

import json

import pytest

from chaos_lib import (CheckpointWatcher, KafkaFeeder, KinesisFeeder, SqsFeeder, analyse, now_ms,
                       record_result)
from conftest import full_mode
from helpers import aws
from helpers import kafka as kafka_mod
from helpers.esmd import aws_block
from helpers.procs import wait_until
from private_peers import PrivateFauxqs, PrivateKinesis

N = 4000 if full_mode() else 1000
OUTAGES = 2
SLOW_MS = 40


def function(funchost, timeout=3):
    funchost.control("slow", "slow", ms=SLOW_MS)
    return {"fn": {"url": funchost.url_lambda("slow"), "protocol": "lambda", "timeout_seconds": timeout,
                   "max_concurrency": 4}}


def counter(e, name):
    return e.status()["EventSourceMappings"][0]["Counters"][name]


def outage_cycles(e, funchost, feeder, down, up, noticed, outages=OUTAGES):
    """Per outage: more records, wait until they flow, take the peer down, wait until esmd
    notices (noticed() true), bring it back. Returns the outage start times (epoch ms)."""
    starts = []
    for i in range(outages):
        seen = len(funchost.invocations())
        feeder.release()
        feeder.wait_sent(i)  # the peer goes down only between tranches, not under the feeder
        wait_until(lambda: len(funchost.invocations()) > seen, 60, f"outage {i}: records flowing")
        starts.append(now_ms())
        down()
        wait_until(noticed, 60, f"outage {i}: esmd notices the peer is gone")
        up()
        assert e.alive(), e.proc.log_tail()
    return starts


def test_sqs_emulator_restarted_mid_flow(funchost, esmd, workdir):
    fq = PrivateFauxqs(workdir)
    try:
        sqs = aws.client("sqs", fq.endpoint)
        q = aws.create_queue(sqs, visibility_timeout=6)
        e = esmd({"aws": {"region": "us-east-1", "endpoints": {"sqs": fq.endpoint}},
                  "functions": function(funchost),
                  "event_source_mappings": [{"FunctionName": "fn", "EventSourceArn": q.arn, "BatchSize": 10}]})
        feeder = SqsFeeder(sqs, q, N, tranches=OUTAGES + 1)
        feeder.start()

        def errors():
            return counter(e, "source_errors") + counter(e, "delete_failed")

        before = {}

        def down():
            before["errors"] = errors()
            fq.stop()

        def noticed():
            return errors() > before["errors"]

        starts = outage_cycles(e, funchost, feeder, down, fq.start, noticed)
        feeder.join_ok(300)
        wait_until(lambda: set(feeder.expected()) <= set(funchost.payloads()), 120, f"all {N} delivered")
        wait_until(lambda: aws.queue_counts(sqs, q) == (0, 0, 0), 60, "the queue emptied")
        figures = analyse(funchost, feeder.expected(), starts, 10000, max_dupes=OUTAGES * 4 * 10 * 2)
        figures["outages"] = figures.pop("kills")
        record_result("sqs emulator restarted", figures)
    finally:
        fq.stop()


@pytest.mark.peers("kinesis")
def test_kinesis_emulator_frozen_mid_flow(funchost, esmd, workdir):
    pk = PrivateKinesis(workdir)
    try:
        kinesis = aws.client("kinesis", pk.endpoint)
        st = aws.create_stream(kinesis, shards=2)
        e = esmd({"aws": {"region": "us-east-1", "endpoints": {"kinesis": pk.endpoint}},
                  "functions": function(funchost),
                  "event_source_mappings": [{"FunctionName": "fn", "EventSourceArn": st.arn,
                                             "StartingPosition": "TRIM_HORIZON", "BatchSize": 50}]})

        def checkpoints():
            sh = e.status()["EventSourceMappings"][0]["SourceState"]["Shards"]
            return {s["ShardId"]: int(s["Checkpoint"]) for s in sh if s.get("Checkpoint")}

        watcher = CheckpointWatcher(checkpoints)
        watcher.start()
        feeder = KinesisFeeder(kinesis, st, N, tranches=OUTAGES + 1)
        feeder.start()
        try:
            before = {}

            def down():
                before["errors"] = counter(e, "source_errors")
                pk.freeze()

            def frozen_long_enough():
                # esmd's calls to a frozen peer only end by its own timeouts: wait for one.
                return counter(e, "source_errors") > before["errors"]

            starts = outage_cycles(e, funchost, feeder, down, pk.thaw, frozen_long_enough)
            feeder.join_ok(300)
            wait_until(lambda: set(feeder.expected()) <= set(funchost.payloads()), 120, f"all {N} delivered")
            last = {k: int(v) for k, v in feeder.last_seq_by_shard().items()}
            wait_until(lambda: checkpoints() == last, 60, "every shard checkpointed at its last record")
        finally:
            watcher.stop()
        assert not watcher.regressions, watcher.regressions[:5]
        # esmd kept running: nothing was in flight at a crash, so no record may come twice.
        figures = analyse(funchost, feeder.expected(), [], 0, max_dupes=0)
        figures.pop("kills")
        figures["outages"] = len(starts)
        record_result("kinesis emulator frozen", figures)
    finally:
        pk.stop()


@pytest.mark.peers("kafka")
def test_kafka_broker_restarted_mid_flow(funchost, esmd, workdir):
    try:
        from test_kafka import PrivateKafka  # the integration tests' own broker on free ports
    except ImportError as exc:
        pytest.skip(f"PrivateKafka not available from tests/integration/test_kafka.py: {exc}")
    broker = PrivateKafka(workdir)
    try:
        kafka = kafka_mod.Kafka(broker.bootstrap)
        topic = kafka.create_topic(partitions=2)
        group = kafka_mod.unique("chaos")
        e = esmd({"functions": function(funchost, timeout=10),
                  "event_source_mappings": [{
                      "FunctionName": "fn", "Topics": [topic], "StartingPosition": "TRIM_HORIZON",
                      "BatchSize": 10,
                      "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [broker.bootstrap]}},
                      "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": group},
                      "EsmdOptions": {"KafkaProperties": {"session.timeout.ms": "6000",
                                                          "heartbeat.interval.ms": "500"}}}]})
        feeder = KafkaFeeder(kafka, topic, N, tranches=2)
        feeder.start()

        def stopped():
            return broker.proc is None or not broker.proc.alive()

        starts = outage_cycles(e, funchost, feeder, broker.stop, broker.start, stopped, outages=1)
        after_restart = wait_until(lambda: kafka.committed_offsets(group, topic), 60,
                                   "the group's offsets readable after the restart")
        feeder.join_ok(300)
        # Recovered: the group commits again (the coordinator reloads its state first).
        wait_until(lambda: kafka.committed_offsets(group, topic) != after_restart, 120,
                   "a commit after the broker restart")
        recovered = now_ms()
        wait_until(lambda: set(feeder.expected()) <= set(funchost.payloads()), 180, f"all {N} delivered")
        ends = kafka.end_offsets(topic)
        wait_until(lambda: kafka.committed_offsets(group, topic) == ends, 60, "committed at the end offsets")
        # Batches finished but not committed between shortly before the stop and the first
        # commit after the restart may come again (the group's session can expire meanwhile);
        # nothing delivered after the recovery may repeat.
        figures = analyse(funchost, feeder.expected(), [recovered], recovered - starts[0] + 15000,
                          max_dupes=N)
        figures["outages"] = figures.pop("kills")
        record_result("kafka broker restarted", figures)
    finally:
        broker.stop()


@pytest.mark.peers("kinesis")
def test_destination_down_outbox_fills_then_drains(peers, kinesis, funchost, esmd, workdir):
    fq = PrivateFauxqs(workdir)
    try:
        sqs = aws.client("sqs", fq.endpoint)
        failures = aws.create_queue(sqs)
        fq.stop()  # the destination is down from the start
        st = aws.create_stream(kinesis, shards=1)
        data = [f"POISON-{i}" if i % 3 == 0 else f"ok-{i}" for i in range(12)]
        poison = [d for d in data if d.startswith("POISON")]
        seqs = [s for _, s, _ in aws.put_records(kinesis, st, records=[("k", d) for d in data])]
        e = esmd({"aws": {"region": "us-east-1", "endpoints": {"kinesis": peers.kinesis_endpoint,
                                                                "sqs": fq.endpoint}},
                  "functions": {"fn": {"url": funchost.url_lambda("poison"), "protocol": "lambda",
                                       "timeout_seconds": 3}},
                  "event_source_mappings": [{
                      "FunctionName": "fn", "EventSourceArn": st.arn, "StartingPosition": "TRIM_HORIZON",
                      "BatchSize": 1, "MaximumRetryAttempts": 0,
                      "DestinationConfig": {"OnFailure": {"Destination": failures.arn}}}]})

        def outbox():
            return e.status()["Outbox"]

        # The source is not held up by the destination: the shard reaches its end while the
        # failure records wait in the outbox.
        wait_until(lambda: e.status()["EventSourceMappings"][0]["SourceState"]["Shards"][0].get("Checkpoint")
                   == seqs[-1], 60, "the shard checkpointed to its end")
        wait_until(lambda: outbox()["depth"] == len(poison), 30, f"{len(poison)} failure records in the outbox")
        wait_until(lambda: outbox()["failed_attempts"] >= 1, 30, "a failed delivery attempt")
        good = sorted(d for d in data if d.startswith("ok"))
        assert sorted(p for inv in funchost.invocations() if inv["result"] != "error"
                      for p in inv["payloads"]) == good
        # The destination comes back: the outbox drains, each failure record exactly once.
        fq.start()
        wait_until(lambda: outbox()["depth"] == 0, 120, "the outbox drained")
        msgs = aws.drain(sqs, failures, expect=len(poison), timeout=30)
        assert aws.drain(sqs, failures) == [], "a failure record was delivered twice"
        got = sorted(json.loads(m["Body"])["KinesisBatchInfo"]["startSequenceNumber"] for m in msgs)
        assert got == sorted(seqs[i] for i, d in enumerate(data) if d.startswith("POISON"))
        record_result("destination down", {"records": len(data), "failure_records": len(poison), "lost": 0})
    finally:
        fq.stop()
