"""The test peers work, through the harness helpers the other integration tests use.

Run: python3 -m pytest -q tests/integration/test_peers_smoke.py
(starts fauxqs, kinesis-local and Kafka with scripts/peers.sh if they are not running).
"""

import json
import os

import pytest

from helpers import aws, http
from helpers.funchost import funchost_bin
from helpers.procs import WaitTimeout, free_port, port_open, wait_until

PEERS = ("sqs", "kinesis", "kafka")


# ---------------------------------------------------------------- harness


def test_wait_until_names_what_it_waited_for():
    with pytest.raises(WaitTimeout, match=r"timed out after 0.2 s waiting for the impossible"):
        wait_until(lambda: False, 0.2, "the impossible")
    assert wait_until(lambda: 42, 1, "a value") == 42


def test_free_port_is_free():
    p = free_port()
    assert 1024 < p < 65536
    assert not port_open(p)


def test_peers_endpoints(peers):
    assert peers.sqs_endpoint == "http://127.0.0.1:4566"
    assert peers.kinesis_endpoint == "http://127.0.0.1:4568"
    assert peers.kafka_bootstrap == "127.0.0.1:9092"
    assert http.ok(peers.sqs_endpoint + "/health")
    assert http.ok(peers.kinesis_endpoint + "/healthcheck")


# ---------------------------------------------------------------- SQS (fauxqs)


def test_sqs_send_receive_delete(sqs):
    q = aws.create_queue(sqs)
    assert q.arn == aws.sqs_arn(q.name)
    ids = aws.send_messages(sqs, q, n=25)
    assert len(set(ids)) == 25
    got = aws.drain(sqs, q, expect=25)
    assert sorted(m["Body"] for m in got) == sorted(f"msg-{i}" for i in range(25))
    assert {m["MessageId"] for m in got} == set(ids)
    # all deleted: nothing visible, nothing in flight, and a receive comes back empty
    assert aws.queue_counts(sqs, q) == (0, 0, 0)
    assert aws.receive(sqs, q, wait=0) == []


def test_sqs_message_attributes_and_receive_count(sqs):
    q = aws.create_queue(sqs)
    aws.send_messages(sqs, q, bodies=["a"], attributes={"k": {"DataType": "String", "StringValue": "v"}})
    first = aws.receive(sqs, q, wait=1, visibility_timeout=0)
    assert len(first) == 1
    assert first[0]["MessageAttributes"]["k"]["StringValue"] == "v"
    assert first[0]["Attributes"]["ApproximateReceiveCount"] == "1"
    # visibility 0: visible again at once, and the receive count goes up
    second = wait_until(lambda: aws.receive(sqs, q, wait=1), 10, "redelivery after visibility 0")
    assert second[0]["MessageId"] == first[0]["MessageId"]
    assert second[0]["Attributes"]["ApproximateReceiveCount"] == "2"
    aws.delete(sqs, q, second)


def test_sqs_fifo_order_within_group(sqs):
    q = aws.create_queue(sqs, fifo=True)
    assert q.name.endswith(".fifo")
    bodies = [f"a{i}" for i in range(6)]
    aws.send_messages(sqs, q, bodies=bodies, group_id="A")
    got = aws.drain(sqs, q, expect=6)
    assert [m["Body"] for m in got] == bodies
    assert {m["Attributes"]["MessageGroupId"] for m in got} == {"A"}
    seqs = [int(m["Attributes"]["SequenceNumber"]) for m in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == 6


def test_sqs_fifo_group_blocks_until_deleted(sqs):
    q = aws.create_queue(sqs, fifo=True)
    aws.send_messages(sqs, q, bodies=["a1", "a2", "b1"], group_id=lambda i: "A" if i < 2 else "B")
    first = aws.receive(sqs, q, max_messages=1, wait=1, visibility_timeout=30)
    assert [m["Body"] for m in first] in (["a1"], ["b1"])
    if first[0]["Body"] == "b1":
        first = aws.receive(sqs, q, max_messages=1, wait=1, visibility_timeout=30)
        assert [m["Body"] for m in first] == ["a1"]
    # while a1 is in flight, group A is locked: a2 is not handed out
    assert "a2" not in [m["Body"] for m in aws.receive(sqs, q, wait=0, visibility_timeout=30)]
    aws.delete(sqs, q, first)
    nxt = wait_until(lambda: aws.receive(sqs, q, wait=1), 10, "a2 after a1 was deleted")
    assert [m["Body"] for m in nxt] == ["a2"]


def test_sqs_redrive_to_dlq(sqs):
    q = aws.create_queue_with_dlq(sqs, max_receive_count=2)
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=q.url, AttributeNames=["RedrivePolicy"])
                        ["Attributes"]["RedrivePolicy"])
    assert policy["deadLetterTargetArn"] == q.dlq.arn and int(policy["maxReceiveCount"]) == 2
    aws.send_messages(sqs, q, bodies=["poison"])
    counts = []
    for _ in range(2):
        m = wait_until(lambda: aws.receive(sqs, q, wait=1, visibility_timeout=0), 10, "receive from source")
        counts.append(m[0]["Attributes"]["ApproximateReceiveCount"])
    assert counts == ["1", "2"]
    # the third receive moves it to the DLQ instead of returning it
    assert aws.receive(sqs, q, wait=1) == []
    moved = aws.drain(sqs, q.dlq, expect=1)
    assert moved[0]["Body"] == "poison"
    assert aws.queue_counts(sqs, q)[:2] == (0, 0)


# ---------------------------------------------------------------- Kinesis (kinesis-local)


def test_kinesis_put_get_two_shards(kinesis):
    s = aws.create_stream(kinesis, shards=2)
    assert len(s.shard_ids) == 2
    assert s.arn == aws.kinesis_arn(s.name)
    put = aws.put_records(kinesis, s, n=40)
    by_shard = {sid: [] for sid in s.shard_ids}
    for shard_id, seq, data in put:
        by_shard[shard_id].append((seq, data))
    assert all(by_shard.values()), f"40 partition keys should hit both shards: {by_shard.keys()}"
    for shard_id in s.shard_ids:
        recs = aws.read_shard(kinesis, s, shard_id, expect=len(by_shard[shard_id]))
        # same records, in put order, with increasing sequence numbers
        assert [(r["SequenceNumber"], r["Data"]) for r in recs] == by_shard[shard_id]
        seqs = [int(r["SequenceNumber"]) for r in recs]
        assert seqs == sorted(seqs)
        assert all(r["PartitionKey"].startswith("pk-") for r in recs)
    # AFTER_SEQUENCE_NUMBER resumes after a checkpoint
    shard0 = s.shard_ids[0]
    seq_first = by_shard[shard0][0][0]
    rest = aws.read_shard(kinesis, s, shard0, iterator_type="AFTER_SEQUENCE_NUMBER",
                          sequence_number=seq_first, expect=len(by_shard[shard0]) - 1)
    assert [r["SequenceNumber"] for r in rest] == [seq for seq, _ in by_shard[shard0][1:]]
    # a caught-up read of the whole stream finds exactly the 40 records
    everything = aws.read_stream(kinesis, s)
    assert sorted(r["Data"] for recs in everything.values() for r in recs) == sorted(d for _, _, d in put)


# ---------------------------------------------------------------- Kafka (Apache Kafka, KRaft)


def test_kafka_produce_consume_group_offsets(kafka):
    topic = kafka.create_topic(partitions=3)
    assert kafka.partitions_of(topic) == [0, 1, 2]
    records = [{"key": f"k{i}", "value": f"v{i}", "headers": {"h": f"x{i}"}, "partition": i % 3}
               for i in range(30)]
    where = kafka.produce(topic, records)
    assert [p for p, _ in where] == [i % 3 for i in range(30)]
    assert kafka.end_offsets(topic) == {0: 10, 1: 10, 2: 10}

    group = aws.unique("g")
    got = kafka.consume(topic, 30, group=group)
    assert sorted(m["value"] for m in got) == sorted(r["value"].encode() for r in records)
    for m in got:
        i = int(m["value"][1:])
        assert m["key"] == f"k{i}".encode() and m["partition"] == i % 3
        assert m["headers"] == [("h", f"x{i}".encode())]
    for p in range(3):  # order within a partition
        offs = [m["offset"] for m in got if m["partition"] == p]
        assert offs == list(range(10))

    # the group's commits are visible to other clients; lag is 0, then grows with new records
    assert kafka.committed_offsets(group, topic) == {0: 10, 1: 10, 2: 10}
    assert kafka.lag(group, topic) == {0: 0, 1: 0, 2: 0}
    kafka.produce(topic, [{"value": f"new{i}", "partition": 1} for i in range(5)])
    assert kafka.lag(group, topic) == {0: 0, 1: 5, 2: 0}
    # the group resumes from its committed offsets: exactly the new records
    again = kafka.consume(topic, 5, group=group)
    assert [m["value"] for m in again] == [f"new{i}".encode() for i in range(5)]
    assert kafka.lag(group, topic) == {0: 0, 1: 0, 2: 0}
    assert kafka.group_state(group) == ("EMPTY", 0)


def test_kafka_auto_creates_topics_with_4_partitions(kafka):
    topic = aws.unique("auto")
    kafka.produce(topic, n=8)  # key k-<i> spreads them
    wait_until(lambda: kafka.partitions_of(topic) == [0, 1, 2, 3], 10, f"auto-created {topic}")
    assert sum(kafka.end_offsets(topic).values()) == 8
    assert len(kafka.consume(topic, 8)) == 8  # assignment, no group


# ---------------------------------------------------------------- funchost fixture


@pytest.mark.skipif(not os.path.exists(funchost_bin()), reason=f"{funchost_bin()} not built")
def test_funchost_fixture(funchost):
    event = {"Records": [{"messageId": "m1", "body": "hello", "eventSource": "aws:sqs"}]}
    code, _, _ = http.post_json(funchost.url_lambda("echo"), event)
    assert code == 200
    code, _, _ = http.post_json(funchost.url_http("echo"), event)
    assert code // 100 == 2
    inv = funchost.wait_invocations(2, fn="echo")
    assert [i["proto"] for i in inv] == ["lambda", "http"]
    assert inv[0]["ids"] == ["m1"]
