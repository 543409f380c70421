"""The Kafka source against Apache Kafka (scripts/peers.sh kafka) and esmd-funchost.

Starting positions, the event shape, offsets committed only after the final outcome (visible to
standard Kafka tools), restart resumes exactly, two esmd instances sharing a group (and a
killed one's partitions moving without loss), a poison record with bisect and a kafka://
destination, and the broker going down and coming back (a private broker of the test's own).
"""

import base64
import json
import os
import time

import pytest

from helpers import http
from helpers import kafka as kafka_mod
from helpers.kafka import PrivateKafka
from helpers.procs import free_port, wait_until

PEERS = ("kafka",)

FAST = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}


def config(kafka, topic, url, group=None, **mapping):
    m = {
        "FunctionName": "fn",
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [kafka.bootstrap]}},
        "Topics": [topic],
        "StartingPosition": "TRIM_HORIZON",
        "BatchSize": 100,
        "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": group or kafka_mod.unique("g")},
        "EsmdOptions": {"KafkaProperties": dict(FAST)},
    }
    m.update(mapping)
    return {"functions": {"fn": {"url": url, "protocol": "lambda", "timeout_seconds": 10}},
            "event_source_mappings": [m]}


def group_of(cfg):
    return cfg["event_source_mappings"][0]["SelfManagedKafkaEventSourceConfig"]["ConsumerGroupId"]


def mapping_of(e):
    (m,) = e.status()["EventSourceMappings"]
    return m


def kafka_source(e):
    """The Kafka mapping's SourceState from /status."""
    st = e.status()
    for m in st["EventSourceMappings"]:
        if m.get("Source") == "kafka":
            return m["SourceState"]
    raise AssertionError(f"no kafka mapping in /status: {st}")


def wait_assigned(e, n=None, timeout=30.0):
    def ok():
        s = kafka_source(e)
        got = s["AssignedPartitions"]
        return s if (got == n if n is not None else got > 0) else None

    return wait_until(ok, timeout, f"esmd {e.name}: {n if n is not None else 'some'} partitions assigned")


def wait_committed(kafka, group, topic, timeout=30.0):
    ends = kafka.end_offsets(topic)
    wait_until(lambda: kafka.committed_offsets(group, topic) == ends, timeout,
               f"group {group} committed {ends}")
    return ends


def values(funchost, fn="echo"):
    return funchost.payloads(fn)


class Capture:
    """A plain-HTTP function (protocol "http") that keeps every request body and answers {}."""

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        bodies = self.bodies = []

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                bodies.append(self.rfile.read(n))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *a):
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}/fn"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def capture():
    c = Capture()
    yield c
    c.close()


def test_event_bytes(kafka, capture, esmd):
    """The exact event: envelope, base64 key/value, no key when null, signed header bytes,
    duplicate header names kept, timestamps, one partition per event."""
    topic = kafka.create_topic(partitions=1)
    kafka.produce(topic, [{"value": b"\xff\x00tail", "key": None,
                           "headers": [("trace", b"t-1"), ("note", "c\u00e9".encode()), ("trace", b"")]},
                          {"value": "plain", "key": "k"}])
    ts = [r["timestamp"] for r in kafka.consume(topic, 2)]
    cfg = config(kafka, topic, capture.url)
    cfg["functions"]["fn"]["protocol"] = "http"
    esmd(cfg)
    wait_until(lambda: capture.bodies, 30, "an invocation")
    expect = (
        '{"eventSource":"SelfManagedKafka","bootstrapServers":"%s","records":{"%s-0":['
        '{"topic":"%s","partition":0,"offset":0,"timestamp":%d,"timestampType":"CREATE_TIME",'
        '"value":"/wB0YWls","headers":[{"trace":[116,45,49]},{"note":[99,-61,-87]},{"trace":[]}]},'
        '{"topic":"%s","partition":0,"offset":1,"timestamp":%d,"timestampType":"CREATE_TIME",'
        '"key":"aw==","value":"cGxhaW4=","headers":[]}]}}'
    ) % (kafka.bootstrap, topic, topic, ts[0], topic, ts[1])
    assert capture.bodies[0].decode() == expect


def test_trim_horizon_delivers_all_in_order_and_commits(kafka, funchost, esmd):
    topic = kafka.create_topic(partitions=2)
    kafka.produce(topic, [{"value": f"v-{i}", "key": f"k-{i}", "partition": i % 2} for i in range(40)])
    cfg = config(kafka, topic, funchost.url_lambda("echo"), BatchSize=7)
    e = esmd(cfg)
    wait_until(lambda: len(values(funchost)) >= 40, 30, "40 records delivered")
    ends = wait_committed(kafka, group_of(cfg), topic)
    assert ends == {0: 20, 1: 20}
    got = values(funchost)
    assert sorted(got) == sorted(f"v-{i}" for i in range(40))
    invs = funchost.invocations("echo")
    assert all(1 <= len(inv["ids"]) <= 7 for inv in invs)
    for inv in invs:  # one partition per event
        assert len({i.rsplit(":", 1)[0] for i in inv["ids"]}) == 1
    for p in (0, 1):  # per-partition order, no duplicates
        seq = [int(i.rsplit(":", 1)[1]) for inv in invs for i in inv["ids"] if i.startswith(f"{topic}-{p}:")]
        assert seq == list(range(20))
    st = wait_until(lambda: (lambda s: s if s["SumOffsetLag"] == 0 else None)(kafka_source(e)), 15,
                    "status lag 0")
    assert st["ConsumerGroupId"] == group_of(cfg)
    assert {p["Partition"] for p in st["Partitions"]} == {0, 1}
    assert all(p["OffsetLag"] == 0 and p["CommittedOffset"] == 20 for p in st["Partitions"])
    # The invocation histograms count every invocation and record of this source.
    assert e.metric("esmd_invoke_batch_records_sum", source="kafka") == 40
    assert e.metric("esmd_invoke_duration_seconds_count", source="kafka") == len(invs)


def test_latest_skips_existing_records(kafka, funchost, esmd):
    topic = kafka.create_topic(partitions=2)
    kafka.produce(topic, n=6)
    cfg = config(kafka, topic, funchost.url_lambda("echo"), StartingPosition="LATEST")
    e = esmd(cfg)
    wait_assigned(e, 2)
    # LATEST is resolved when fetching starts: wait until both partitions have fetched.
    wait_until(lambda: all(p["HighWatermark"] is not None for p in kafka_source(e)["Partitions"]), 30,
               "fetching started on both partitions")
    kafka.produce(topic, [{"value": f"new-{i}", "key": f"n{i}", "partition": i % 2} for i in range(4)])
    wait_until(lambda: len(values(funchost)) >= 4, 30, "4 new records delivered")
    wait_committed(kafka, group_of(cfg), topic)
    assert sorted(values(funchost)) == [f"new-{i}" for i in range(4)]


def test_at_timestamp_starts_at_the_time(kafka, funchost, esmd):
    ck = kafka_mod._ck()
    topic = kafka.create_topic(partitions=1)
    now_ms = int(time.time() * 1000)
    p = ck.Producer({"bootstrap.servers": kafka.bootstrap})
    for i in range(3):
        p.produce(topic, value=f"old-{i}", timestamp=now_ms - 3600_000)
    for i in range(3):
        p.produce(topic, value=f"new-{i}", timestamp=now_ms - 60_000)
    assert p.flush(30) == 0
    cfg = config(kafka, topic, funchost.url_lambda("echo"), StartingPosition="AT_TIMESTAMP",
                 StartingPositionTimestamp=(now_ms - 1800_000) / 1000)
    esmd(cfg)
    wait_until(lambda: len(values(funchost)) >= 3, 30, "3 records delivered")
    wait_committed(kafka, group_of(cfg), topic)
    assert values(funchost) == ["new-0", "new-1", "new-2"]


def test_committed_offset_wins_over_starting_position(kafka, funchost, esmd):
    topic = kafka.create_topic(partitions=1)
    group = kafka_mod.unique("g")
    kafka.produce(topic, n=5)
    kafka.consume(topic, 3, group=group)  # commits 3 (a consumer that stops after 3 records)
    assert kafka.committed_offsets(group, topic)[0] in (3, 4, 5)
    committed = kafka.committed_offsets(group, topic)[0]
    cfg = config(kafka, topic, funchost.url_lambda("echo"), group=group)
    esmd(cfg)
    wait_committed(kafka, group, topic)
    assert values(funchost) == [f"rec-{i}" for i in range(committed, 5)]


def test_restart_resumes_exactly(kafka, funchost, esmd):
    topic = kafka.create_topic(partitions=3)
    kafka.produce(topic, [{"value": f"a-{i}", "key": f"k{i}"} for i in range(30)])
    cfg = config(kafka, topic, funchost.url_lambda("echo"))
    e = esmd(cfg)
    wait_until(lambda: len(values(funchost)) >= 30, 30, "30 records delivered")
    wait_committed(kafka, group_of(cfg), topic)
    assert e.stop() == 0
    kafka.produce(topic, [{"value": f"b-{i}", "key": f"k{i}"} for i in range(15)])
    e.start()
    wait_until(lambda: len(values(funchost)) >= 45, 30, "45 records delivered")
    wait_committed(kafka, group_of(cfg), topic)
    got = values(funchost)
    assert sorted(got) == sorted([f"a-{i}" for i in range(30)] + [f"b-{i}" for i in range(15)])


def test_two_instances_share_partitions_and_fail_over(kafka, funchost, esmd):
    topic = kafka.create_topic(partitions=4)
    group = kafka_mod.unique("g")
    cfg = config(kafka, topic, funchost.url_lambda("echo"), group=group)
    a = esmd(cfg, name="a")
    wait_assigned(a, 4)
    b = esmd(cfg, name="b")
    wait_until(lambda: kafka_source(a)["AssignedPartitions"] + kafka_source(b)["AssignedPartitions"] == 4
               and kafka_source(b)["AssignedPartitions"] > 0 and kafka_source(a)["AssignedPartitions"] > 0,
               45, "partitions shared by a and b")
    assert kafka.group_state(group) == ("STABLE", 2)
    first = [f"x-{i}" for i in range(200)]
    kafka.produce(topic, [{"value": v, "key": v} for v in first])
    wait_until(lambda: set(first) <= set(values(funchost)), 30, "first 200 delivered")
    wait_committed(kafka, group, topic)
    a.kill9()
    second = [f"y-{i}" for i in range(200)]
    kafka.produce(topic, [{"value": v, "key": v} for v in second])
    wait_assigned(b, 4, timeout=60)
    wait_until(lambda: set(second) <= set(values(funchost)), 60, "second 200 delivered after failover")
    wait_committed(kafka, group, topic, timeout=30)
    got = values(funchost)
    assert set(got) == set(first) | set(second)
    # At least once: every record once, duplicates only from what was in flight at the kill.
    assert len(got) - len(set(got)) <= 100


def test_poison_record_bisect_and_kafka_destination(kafka, funchost, esmd):
    topic = kafka.create_topic(partitions=1)
    failures = kafka.create_topic(partitions=1)
    recs = [{"value": f"ok-{i}", "key": f"k{i}"} for i in range(10)]
    recs[6] = {"value": "POISON-6", "key": "poison-key", "headers": [("h", b"\x80\x7f")]}
    kafka.produce(topic, recs)
    cfg = config(kafka, topic, funchost.url_lambda("poison"),
                 BisectBatchOnFunctionError=True, MaximumRetryAttempts=1,
                 DestinationConfig={"OnFailure": {"Destination": f"kafka://{failures}"}})
    cfg["event_source_mappings"][0]["EsmdOptions"]["RetryBackoff"] = {"BaseSeconds": 0, "MaxSeconds": 1}
    e = esmd(cfg)
    wait_committed(kafka, group_of(cfg), topic, timeout=60)
    ok = [r["value"] for r in recs if r["value"].startswith("ok-")]
    succeeded = [p for inv in funchost.invocations("poison") if inv["result"] == "ok"
                 for p in inv["payloads"]]
    assert sorted(succeeded) == sorted(ok)  # each good record succeeded exactly once
    msgs = kafka.consume(failures, 1, timeout=30)
    m = msgs[0]
    assert m["key"] == b"poison-key"
    rec = json.loads(m["value"])
    assert rec["requestContext"]["condition"] == "RetriesExhausted"
    assert rec["KafkaBatchInfo"]["batchSize"] == 1
    assert rec["KafkaBatchInfo"]["recordInfo"]["offset"] == "6"
    ev = rec["payload"]
    assert ev["eventSource"] == "SelfManagedKafka"
    assert ev["bootstrapServers"] == kafka.bootstrap
    (only,) = ev["records"][f"{topic}-0"]
    assert only["offset"] == 6 and only["partition"] == 0 and only["topic"] == topic
    assert base64.b64decode(only["value"]) == b"POISON-6"
    assert base64.b64decode(only["key"]) == b"poison-key"
    assert only["headers"] == [{"h": [-128, 127]}]
    st = kafka_source(e)
    assert st["Partitions"][0]["CommittedOffset"] == 10
    # Exactly one failure record.
    assert kafka.end_offsets(failures) == {0: 1}


@pytest.fixture
def private_kafka(workdir):
    k = PrivateKafka(workdir)
    yield kafka_mod.Kafka(k.bootstrap), k
    k.stop()


def test_broker_down_and_back(private_kafka, funchost, esmd):
    kafka, broker = private_kafka
    topic = kafka.create_topic(partitions=2)
    kafka.produce(topic, n=10)
    cfg = config(kafka, topic, funchost.url_lambda("echo"))
    e = esmd(cfg)
    wait_until(lambda: len(values(funchost)) >= 10, 30, "10 records delivered")
    wait_committed(kafka, group_of(cfg), topic)
    broker.stop()
    wait_until(lambda: kafka_source(e)["LastError"] is not None, 30, "the outage is visible in /status")
    wait_until(lambda: mapping_of(e)["LastProcessingResult"] == "PROBLEM: Connection error", 30,
               "the outage in AWS's words")
    assert e.alive()
    broker.start()
    kafka.produce(topic, [{"value": f"after-{i}", "key": f"a{i}"} for i in range(10)])
    wait_until(lambda: len(values(funchost)) >= 20, 60, "records after the outage delivered")
    wait_committed(kafka, group_of(cfg), topic, timeout=60)
    got = values(funchost)
    assert sorted(got) == sorted([f"rec-{i}" for i in range(10)] + [f"after-{i}" for i in range(10)])
    assert kafka_source(e)["LastError"] is None  # the problem clears once records flow again
    assert mapping_of(e)["LastProcessingResult"] == "OK"


def test_unreachable_cluster_is_a_problem_in_aws_words(funchost, esmd):
    """Nothing listens at the bootstrap address: State says it never reached its cluster,
    LastProcessingResult and /readyz say why, the first error line of the log says it too."""
    port = free_port()
    cfg = config(kafka_mod.Kafka(f"127.0.0.1:{port}"), "t", funchost.url_lambda("echo"))
    e = esmd(cfg)
    want = "PROBLEM: Connection error"
    wait_until(lambda: mapping_of(e)["LastProcessingResult"] == want, 30, want)
    assert mapping_of(e)["State"] != "Enabled" and mapping_of(e)["Ready"] is False
    code, _, body = http.get(e.admin_url + "/readyz")
    assert code == 503 and want in body.decode(), body
    errors = [line for line in e.log().splitlines() if "Z error [" in line]
    assert errors and want in errors[0], errors[:3]


def test_stalled_fetching_is_woken_without_loss_or_repeats(kafka, funchost, esmd):
    """librdkafka 2.0 stops fetching while its queue is at queued.max.messages.kbytes and looks
    again only ~1 s later; esmd wakes it once the queue ran dry (a seek to the next offset). The
    wakeups happen, and they neither skip nor repeat a record."""
    topic = kafka.create_topic(partitions=2)
    n = 3000
    # Record batches of 16 KB on the broker, so one fetch (64 KB) returns a few of them.
    kafka.produce(topic, [{"value": f"v-{i}-" + "x" * 400, "key": "k", "partition": i % 2} for i in range(n)],
                  batch_bytes=16384)
    cfg = config(kafka, topic, funchost.url_lambda("echo"), BatchSize=100)
    cfg["event_source_mappings"][0]["EsmdOptions"]["KafkaProperties"].update(
        {"queued.max.messages.kbytes": "32", "max.partition.fetch.bytes": "65536"})
    e = esmd(cfg)
    wait_committed(kafka, group_of(cfg), topic, timeout=60)
    assert e.metric("esmd_kafka_fetch_wakeups_total", source="kafka") > 0
    invs = funchost.invocations("echo")
    for p in (0, 1):  # per-partition order, nothing skipped, nothing twice
        seq = [int(i.rsplit(":", 1)[1]) for inv in invs for i in inv["ids"] if i.startswith(f"{topic}-{p}:")]
        assert seq == list(range(n // 2))


def test_blocked_partition_is_paused_and_others_flow(kafka, funchost, esmd):
    """A poison record with unlimited retries blocks its partition only: the partition is paused
    (no unbounded buffering), the mapping reports the stuck lane, the other partition flows."""
    topic = kafka.create_topic(partitions=2)
    kafka.produce(topic, [{"value": "POISON-0", "key": "p", "partition": 0}] +
                  [{"value": f"p0-{i}", "key": "p", "partition": 0} for i in range(30)] +
                  [{"value": f"p1-{i}", "key": "q", "partition": 1} for i in range(30)])
    cfg = config(kafka, topic, funchost.url_lambda("poison"), BatchSize=5)
    m = cfg["event_source_mappings"][0]
    m["EsmdOptions"]["RetryBackoff"] = {"BaseSeconds": 0, "MaxSeconds": 1}
    m["EsmdOptions"]["StuckLaneSeconds"] = 1
    e = esmd(cfg)

    def part(n):
        return next(p for p in kafka_source(e)["Partitions"] if p["Partition"] == n)

    wait_until(lambda: kafka.committed_offsets(group_of(cfg), topic)[1] == 30, 30, "partition 1 committed")
    p0 = wait_until(lambda: (lambda p: p if p["Paused"] and p["Lane"]["BlockedSince"] else None)(part(0)),
                    30, "partition 0 paused and blocked")
    assert p0["CommittedOffset"] == 0 and p0["OffsetLag"] == 31
    waiting = p0["Waiting"]
    assert 5 <= waiting <= 30
    mapping = wait_until(lambda: next(m for m in e.status()["EventSourceMappings"] if m["Stuck"]), 15,
                         "the mapping reports a stuck lane")
    assert mapping["BlockedSince"] is not None
    metrics = e.metrics()
    assert any(line.startswith("esmd_offset_lag{") and 'lane="0"' in line and line.endswith(" 31")
               for line in metrics.splitlines()), metrics
    # More records: partition 1 gets them, partition 0 (paused) does not read further.
    kafka.produce(topic, [{"value": f"late-{i}", "key": "p", "partition": i % 2} for i in range(40)])
    wait_until(lambda: kafka.committed_offsets(group_of(cfg), topic)[1] == 50, 30, "partition 1 committed 50")
    assert part(0)["Waiting"] == waiting
    assert kafka.committed_offsets(group_of(cfg), topic)[0] < 0
    assert "POISON-0" not in [p for inv in funchost.invocations("poison") if inv["result"] == "ok"
                              for p in inv["payloads"]]


def test_rebalance_and_graceful_leave_without_duplicates(kafka, funchost, esmd):
    """Rebalance (docs/design.md "Kafka semantics"): a member joining or leaving while batches are
    in flight. The revoked partitions' running invocations finish and are committed before
    release, so the new owner starts exactly after them: no record is delivered twice and none is lost."""
    topic = kafka.create_topic(partitions=2)
    group = kafka_mod.unique("g")
    funchost.control("slow", "slow", ms=400)
    cfg = config(kafka, topic, funchost.url_lambda("slow"), group=group, BatchSize=4)
    if os.environ.get("ESMD_KAFKA_DEBUG"):
        cfg["log_level"] = "debug"
        cfg["event_source_mappings"][0]["EsmdOptions"]["KafkaProperties"]["debug"] = "cgrp,fetch,consumer"
    first = [f"x-{i}" for i in range(40)]
    kafka.produce(topic, [{"value": v, "key": v, "partition": i % 2} for i, v in enumerate(first)])
    a = esmd(cfg, name="a")
    funchost.wait_invocations(1, "slow", timeout=30)
    b = esmd(cfg, name="b")  # joins while a has batches in flight
    wait_until(lambda: set(first) <= set(values(funchost, "slow")), 60, "first 40 delivered")
    wait_until(lambda: kafka_source(a)["AssignedPartitions"] == 1 and kafka_source(b)["AssignedPartitions"] == 1,
               30, "one partition each")
    second = [f"y-{i}" for i in range(40)]
    n_before = len(funchost.invocations("slow"))
    kafka.produce(topic, [{"value": v, "key": v, "partition": i % 2} for i, v in enumerate(second)])
    funchost.wait_invocations(n_before + 2, "slow", timeout=30)
    assert a.stop() == 0  # leaves gracefully while its partition has batches in flight
    wait_assigned(b, 2, timeout=30)
    wait_until(lambda: set(second) <= set(values(funchost, "slow")), 60, "second 40 delivered")
    wait_committed(kafka, group, topic)
    got = values(funchost, "slow")
    dups = sorted({v for v in got if got.count(v) > 1})
    assert not dups, f"delivered twice: {dups}"
    assert sorted(got) == sorted(first + second)


def test_filtered_records_are_committed(kafka, funchost, esmd):
    topic = kafka.create_topic(partitions=1)
    recs = [{"value": json.dumps({"kind": "keep" if i % 3 == 0 else "drop", "i": i}), "key": f"k{i}"}
            for i in range(12)]
    recs += [{"value": json.dumps({"kind": "drop", "i": i}), "key": "t"} for i in range(12, 15)]  # trailing
    kafka.produce(topic, recs)
    cfg = config(kafka, topic, funchost.url_lambda("echo"),
                 FilterCriteria={"Filters": [{"Pattern": json.dumps({"value": {"kind": ["keep"]}})}]})
    e = esmd(cfg)
    ends = wait_committed(kafka, group_of(cfg), topic)  # trailing filtered records included
    assert ends == {0: 15}
    assert [json.loads(v)["i"] for v in values(funchost)] == [0, 3, 6, 9]
    counters = next(m for m in e.status()["EventSourceMappings"] if m["Source"] == "kafka")["Counters"]
    assert counters["filtered_out"] == 11 and counters["polled"] == 15


def test_partial_batch_response_and_explicit_kafka_destination(kafka, funchost, esmd):
    """RBIF with Kafka identifiers {"partition":"topic-N","offset":O}: the records before the
    failed one are committed, processing resumes at it; after the retries it goes to a
    kafka://host:port/topic destination with its original key."""
    topic = kafka.create_topic(partitions=1)
    failures = kafka.create_topic(partitions=1)
    recs = [{"value": f"ok-{i}", "key": f"k{i}"} for i in range(8)]
    recs[3] = {"value": "POISON-3", "key": "bad-key"}
    kafka.produce(topic, recs)
    cfg = config(kafka, topic, funchost.url_lambda("partial"),
                 FunctionResponseTypes=["ReportBatchItemFailures"], MaximumRetryAttempts=1,
                 DestinationConfig={"OnFailure": {"Destination": f"kafka://{kafka.bootstrap}/{failures}"}})
    cfg["event_source_mappings"][0]["EsmdOptions"]["RetryBackoff"] = {"BaseSeconds": 0, "MaxSeconds": 1}
    esmd(cfg)
    wait_committed(kafka, group_of(cfg), topic, timeout=60)
    invs = funchost.invocations("partial")
    assert invs[0]["result"] == "partial"
    assert [i.rsplit(":", 1)[1] for i in invs[1]["ids"]][0] == "3"  # resumed at the failed record
    (m,) = kafka.consume(failures, 1, timeout=30)
    assert m["key"] == b"bad-key"
    rec = json.loads(m["value"])
    assert rec["KafkaBatchInfo"]["recordInfo"]["offset"] == "3"
    assert rec["responseContext"]["functionError"] is None  # a partial failure, not an error
    assert kafka.end_offsets(failures) == {0: 1}
    delivered_ok = {p for inv in invs for p in inv["payloads"]} - {"POISON-3"}
    assert delivered_ok == {r["value"] for r in recs} - {"POISON-3"}


def partition_state(e, n=0):
    return next(p for p in kafka_source(e)["Partitions"] if p["Partition"] == n)


def recreate_topic(kafka, topic, n_new):
    """Deletes the topic, waits until it is gone, re-creates it with one partition and produces
    n_new records to the new log; returns their values."""
    kafka.delete_topic(topic)
    wait_until(lambda: topic not in kafka_mod.admin(kafka.bootstrap).list_topics(timeout=5).topics, 30,
               "the topic gone")
    kafka.create_topic(name=topic, partitions=1)
    new = [f"new-{i}" for i in range(n_new)]
    kafka.produce(topic, [{"value": v, "key": "k"} for v in new])
    return new


def test_topic_recreated_while_stopped_reads_the_new_log(kafka, funchost, esmd):
    """The stored position (200) is above the re-created log's end: a log reset, logged,
    counted and shown, and every record of the new log reaches the function."""
    topic = kafka.create_topic(partitions=1)
    kafka.produce(topic, [{"value": f"old-{i}", "key": "k"} for i in range(200)])
    cfg = config(kafka, topic, funchost.url_lambda("echo"), BatchSize=50)
    e = esmd(cfg)
    wait_until(lambda: len(values(funchost)) >= 200, 60, "the old log delivered")
    wait_committed(kafka, group_of(cfg), topic)
    assert e.metric("esmd_kafka_log_resets_total", source="kafka") == 0
    assert e.stop() == 0
    new = recreate_topic(kafka, topic, 50)
    e.start()
    wait_until(lambda: set(new) <= set(values(funchost)), 60, "all 50 records of the new log delivered")
    assert values(funchost)[200:] == new  # in order, none twice
    wait_until(lambda: kafka.committed_offsets(group_of(cfg), topic) == {0: 50}, 30, "offset 50 committed")
    assert e.metric("esmd_kafka_log_resets_total", source="kafka") == 1
    st = partition_state(e)
    assert st["LogResets"] == 1 and "200" in st["LastLogReset"]["Reason"], st
    assert "log reset" in e.log() and "stored position 200" in e.log()


def test_topic_recreated_under_running_esmd_reads_the_new_log(kafka, funchost, esmd):
    """The same while esmd runs: the partition comes back with a shorter log; nothing of it is
    taken for done."""
    topic = kafka.create_topic(partitions=1)
    props = dict(FAST, **{"topic.metadata.refresh.interval.ms": "1000"})
    cfg = config(kafka, topic, funchost.url_lambda("echo"), BatchSize=50,
                 EsmdOptions={"KafkaProperties": props})
    e = esmd(cfg)
    wait_assigned(e, 1)
    kafka.produce(topic, [{"value": f"old-{i}", "key": "k"} for i in range(200)])
    wait_until(lambda: len(values(funchost)) >= 200, 60, "the old log delivered")
    wait_committed(kafka, group_of(cfg), topic)
    new = recreate_topic(kafka, topic, 50)
    wait_until(lambda: set(new) <= set(values(funchost)), 90, "all 50 records of the new log delivered")
    assert values(funchost)[200:] == new
    wait_until(lambda: e.metric("esmd_kafka_log_resets_total", source="kafka") == 1, 20, "the log reset counted")
    assert "log reset" in e.log()
    assert e.alive()


def test_topic_recreated_past_the_old_position_reads_the_new_log(kafka, funchost, esmd):
    """The re-created log (50 records) has outgrown the old position (20): only the group's
    lost offset tells. esmd marked its checkpoint as confirmed when the group committed it, so
    the missing offset is a log reset and all 50 new records arrive, none skipped."""
    topic = kafka.create_topic(partitions=1)
    kafka.produce(topic, [{"value": f"old-{i}", "key": "k"} for i in range(20)])
    cfg = config(kafka, topic, funchost.url_lambda("echo"), BatchSize=10)
    e = esmd(cfg)
    wait_until(lambda: len(values(funchost)) >= 20, 60, "the old log delivered")
    wait_committed(kafka, group_of(cfg), topic)
    assert e.stop() == 0
    new = recreate_topic(kafka, topic, 50)
    e.start()
    wait_until(lambda: set(new) <= set(values(funchost)), 60, "all 50 records of the new log delivered")
    assert values(funchost)[20:] == new  # in order, none twice
    assert e.metric("esmd_kafka_log_resets_total", source="kafka") == 1
    assert "no longer has the committed offset" in e.log()


def test_missing_topic_is_a_problem_in_aws_words(kafka, funchost, esmd):
    """A topic that does not exist: PROBLEM: Topic not found, in /status and /readyz."""
    cfg = config(kafka, kafka_mod.unique("missing"), funchost.url_lambda("echo"))
    e = esmd(cfg)
    want = "PROBLEM: Topic not found"
    wait_until(lambda: mapping_of(e)["LastProcessingResult"] == want, 30, want)
    code, _, body = http.get(e.admin_url + "/readyz")
    assert code == 503 and want in body.decode(), body

