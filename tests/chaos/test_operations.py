"""Scenario 7: the operations that lose records elsewhere, done to a running esmd.
  - a Kafka topic deleted and re-created under esmd: every record of the new log reaches the
    function, esmd says so (log line, counter), nothing of the new log is skipped;
  - a destination that refuses one failure record for good: that record is parked (listed by
    GET /outbox/parked, counted), the failure records behind it are delivered, a redrive
    delivers it once the destination accepts it, and no failure record arrives twice;
  - the state_dir fills up while a lane of a ParallelizationFactor 2 shard discards a poison
    record and the other lane keeps committing: once space is back the failure record is
    delivered exactly once and the checkpoint passes everything, also across a restart."""

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers import aws
from helpers import http
from helpers import kafka as kafka_mod
from helpers.esmd import aws_block
from helpers.procs import wait_until
from test_storage import fill, tmpfs  # noqa: F401 - tmpfs is a fixture

NO_BACKOFF = {"RetryBackoff": {"BaseSeconds": 0, "MaxSeconds": 0}}


def metric_sum(e, prefix):
    """The sum of every /metrics sample whose name starts with prefix (0 when none)."""
    total = 0.0
    for line in e.metrics().splitlines():
        if line.startswith(prefix) and not line.startswith("#"):
            total += float(line.rpartition(" ")[2])
    return total


@pytest.mark.peers("kafka")
def test_kafka_topic_recreated_under_esmd_loses_nothing(peers, kafka, funchost, esmd):
    topic = kafka.create_topic(partitions=1)
    group = kafka_mod.unique("ops")
    e = esmd({"functions": {"fn": {"url": funchost.url_lambda("echo"), "protocol": "lambda",
                                   "timeout_seconds": 5}},
              "event_source_mappings": [{
                  "FunctionName": "fn", "Topics": [topic], "StartingPosition": "TRIM_HORIZON",
                  "BatchSize": 50, "MaximumBatchingWindowInSeconds": 1,
                  "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [kafka.bootstrap]}},
                  "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": group},
                  "EsmdOptions": {"KafkaProperties": {"session.timeout.ms": "6000",
                                                      "heartbeat.interval.ms": "500",
                                                      "topic.metadata.refresh.interval.ms": "1000"}}}]})
    kafka.produce(topic, [{"value": f"old-{i}", "key": "k"} for i in range(200)])
    wait_until(lambda: {f"old-{i}" for i in range(200)} <= set(funchost.payloads()), 60, "the old log delivered")
    wait_until(lambda: kafka.committed_offsets(group, topic) == {0: 200}, 30, "offset 200 committed")
    kafka.delete_topic(topic)
    wait_until(lambda: topic not in kafka_mod.admin(kafka.bootstrap).list_topics(timeout=5).topics, 30,
               "the topic gone")
    kafka.create_topic(name=topic, partitions=1)
    new = {f"new-{i}" for i in range(50)}
    kafka.produce(topic, [{"value": v, "key": "k"} for v in sorted(new)])
    wait_until(lambda: new <= set(funchost.payloads()), 90, "all 50 records of the new log delivered")
    wait_until(lambda: metric_sum(e, "esmd_kafka_log_reset") >= 1, 20, "the log reset counted")
    assert "re-created" in e.log() or "reset" in e.log().lower(), e.proc.log_tail()
    assert e.alive()


class RefusingDestination:
    """An http(s) on-failure destination that answers 400 to every failure record containing one
    of `refuse` (a permanent refusal), 200 to the others, and records what it accepted."""

    def __init__(self, refuse):
        self.refuse = set(refuse)
        self.accepted = []
        dest = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                refused = any(r in body for r in dest.refuse)
                if not refused:
                    dest.accepted.append(json.loads(body))
                out = b'{"message":"record refused"}' if refused else b"{}"
                self.send_response(400 if refused else 200)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/failures"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def start_seqs(self):
        return [fr["KinesisBatchInfo"]["startSequenceNumber"] for fr in self.accepted]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def parked(e):
    code, _, body = http.get(e.admin_url + "/outbox/parked")
    assert code == 200, body
    doc = json.loads(body)
    return doc if isinstance(doc, list) else doc.get("parked", doc.get("rows", []))


@pytest.mark.peers("kinesis")
def test_destination_refusing_one_failure_record_blocks_nothing(peers, kinesis, funchost, esmd):
    st = aws.create_stream(kinesis, shards=1)
    data = ["ok-0", "POISON-1", "ok-2", "POISON-3", "ok-4", "POISON-5", "ok-6"]
    seqs = [s for _, s, _ in aws.put_records(kinesis, st, records=[("k", d) for d in data])]
    poison = [seqs[i] for i, d in enumerate(data) if d.startswith("POISON")]
    dest = RefusingDestination(refuse=[poison[0]])
    try:
        e = esmd({"aws": aws_block(peers),
                  "functions": {"fn": {"url": funchost.url_lambda("poison"), "protocol": "lambda",
                                       "timeout_seconds": 5}},
                  "event_source_mappings": [{
                      "FunctionName": "fn", "EventSourceArn": st.arn, "StartingPosition": "TRIM_HORIZON",
                      "BatchSize": 1, "MaximumRetryAttempts": 0,
                      "DestinationConfig": {"OnFailure": {"Destination": dest.url}},
                      "EsmdOptions": NO_BACKOFF}]})
        wait_until(lambda: sorted(dest.start_seqs()) == sorted(poison[1:]), 60,
                   "the failure records behind the refused one delivered")
        rows = wait_until(lambda: parked(e) or None, 30, "the refused failure record parked")
        assert len(rows) == 1, rows
        assert metric_sum(e, "esmd_outbox_parked") >= 1, e.metrics()
        dest.refuse.clear()
        code, _, body = http.request("POST", e.admin_url + "/outbox/parked/redrive")
        assert code // 100 == 2, body
        wait_until(lambda: sorted(dest.start_seqs()) == sorted(poison), 60, "the redriven record delivered")
        wait_until(lambda: not parked(e), 20, "nothing parked after the redrive")
        e.restart()
        aws.put_records(kinesis, st, records=[("k", "later")])
        wait_until(lambda: "later" in funchost.payloads(), 30, "a later record delivered")
        assert sorted(dest.start_seqs()) == sorted(poison), "a failure record delivered twice"
    finally:
        dest.close()


def failure_records(path):
    if not os.path.exists(path):
        return []
    return [json.loads(x) for x in open(path).read().splitlines() if x.strip()]


@pytest.mark.peers("kinesis")
def test_disk_full_during_a_discard_with_parallelization_2(peers, kinesis, funchost, esmd, tmpfs, workdir):  # noqa: F811
    st = aws.create_stream(kinesis, shards=1)
    out = os.path.join(str(workdir), "failures.jsonl")  # outside the tmpfs: only the state fills
    e = esmd({"state_dir": tmpfs, "aws": aws_block(peers),
              "functions": {"fn": {"url": funchost.url_lambda("poison"), "protocol": "lambda",
                                   "timeout_seconds": 5}},
              "event_source_mappings": [{
                  "FunctionName": "fn", "EventSourceArn": st.arn, "StartingPosition": "TRIM_HORIZON",
                  "BatchSize": 1, "ParallelizationFactor": 2, "MaximumRetryAttempts": 0,
                  "DestinationConfig": {"OnFailure": {"Destination": "file://" + out}},
                  "EsmdOptions": NO_BACKOFF}]})

    def counters():
        return e.status()["EventSourceMappings"][0]["Counters"]

    def checkpoint():
        return e.status()["EventSourceMappings"][0]["SourceState"]["Shards"][0].get("Checkpoint")

    first = [s for _, s, _ in aws.put_records(kinesis, st, records=[("warm", "warm-0")])]
    wait_until(lambda: checkpoint() == first[-1], 30, "the first checkpoint written")
    filler = fill(tmpfs)  # the poison record's discard and the good records' steps find it full
    (_, pill, _), = aws.put_records(kinesis, st, records=[("pill", "POISON-0")])
    good = [f"good-{i}" for i in range(40)]
    seqs = [s for _, s, _ in aws.put_records(kinesis, st, records=[(f"key-{i}", g) for i, g in enumerate(good)])]
    wait_until(lambda: "POISON-0" in funchost.payloads(), 30, "the poison record invoked")
    wait_until(lambda: counters()["checkpoint_write_failures"] > 0, 30, "a failed write while the disk is full")
    assert checkpoint() == first[-1], "the checkpoint moved while the disk is full"
    os.unlink(filler)
    last = max(seqs + [pill], key=int)
    wait_until(lambda: set(good) <= set(funchost.payloads()), 60, "every good record delivered")
    wait_until(lambda: checkpoint() == last, 60, "the checkpoint past every record once space is back")
    wait_until(lambda: failure_records(out) or None, 30, "the poison record's failure record")
    assert e.stop() == 0
    e.start()
    aws.put_records(kinesis, st, records=[("later", "later")])
    wait_until(lambda: "later" in funchost.payloads(), 30, "a later record delivered after the restart")
    frs = failure_records(out)
    assert [fr["KinesisBatchInfo"]["startSequenceNumber"] for fr in frs] == [pill], frs
