"""Scenario 6: bad input.
Records: 0 bytes (Kinesis, Kafka: SQS refuses empty bodies), 1 MB, invalid UTF-8, a Kafka
tombstone; each reaches the function byte for byte (base64 in the event) and the source's
position moves past it.
Configs: `esmd --check-config` on broken configs exits 1, names every problem (its field path),
and never crashes."""

import base64
import json
import os
import subprocess

import pytest

from badhost import BadHost
from helpers import aws
from helpers import kafka as kafka_mod
from helpers.esmd import aws_block, esmd_bin
from helpers.procs import wait_until

MB = 1000 * 1000
DATA = [b"", b"\xff\xfe not UTF-8 \xc3\x28 \xed\xa0\x80", b"x" * MB, b"after"]


@pytest.fixture
def capture():
    host = BadHost("ok", 0)
    yield host
    host.close()


def function(url):
    return {"fn": {"url": url, "protocol": "http", "timeout_seconds": 5}}


@pytest.mark.peers("kinesis")
def test_kinesis_records_empty_huge_and_invalid_utf8(peers, kinesis, esmd, capture):
    st = aws.create_stream(kinesis, shards=1)
    seqs = [s for _, s, _ in aws.put_records(kinesis, st, records=[("k", d) for d in DATA])]
    e = esmd({"aws": aws_block(peers), "functions": function(capture.url),
              "event_source_mappings": [{"FunctionName": "fn", "EventSourceArn": st.arn,
                                         "StartingPosition": "TRIM_HORIZON", "BatchSize": 10}]})

    def got():
        return [base64.b64decode(r["kinesis"]["data"]) for ev in list(capture.events)
                for r in ev.get("Records", [])]

    wait_until(lambda: len(got()) >= len(DATA), 30, "every record delivered")
    assert got() == DATA
    wait_until(lambda: e.status()["EventSourceMappings"][0]["SourceState"]["Shards"][0].get("Checkpoint")
               == seqs[-1], 20, "the checkpoint past them")


@pytest.mark.peers("kafka")
def test_kafka_records_empty_huge_invalid_utf8_and_tombstone(peers, kafka, esmd, capture):
    topic = kafka.create_topic(partitions=1, config={"max.message.bytes": str(2 * MB)})
    values = DATA[:3] + [None, DATA[3]]
    import confluent_kafka

    prod = confluent_kafka.Producer({"bootstrap.servers": kafka.bootstrap, "message.max.bytes": 2 * MB})
    for v in values:
        prod.produce(topic, value=v, key=b"\xff key")
    assert prod.flush(30) == 0
    group = kafka_mod.unique("chaos")
    esmd({"functions": function(capture.url),
          "event_source_mappings": [{
              "FunctionName": "fn", "Topics": [topic], "StartingPosition": "TRIM_HORIZON", "BatchSize": 10,
              "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [kafka.bootstrap]}},
              "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": group},
              "EsmdOptions": {"KafkaProperties": {"session.timeout.ms": "6000"}}}]})

    def got():
        return [(base64.b64decode(r["value"]) if "value" in r else None, base64.b64decode(r["key"]))
                for ev in list(capture.events) for recs in (ev.get("records") or {}).values() for r in recs]

    wait_until(lambda: len(got()) >= len(values), 60, "every record delivered")
    assert got() == [(v, b"\xff key") for v in values]
    wait_until(lambda: kafka.committed_offsets(group, topic) == {0: len(values)}, 30, "committed past them")


@pytest.mark.peers("sqs")
def test_sqs_one_megabyte_body(peers, sqs, esmd, capture):
    q = aws.create_queue(sqs)
    body = "y" * MB
    aws.send_messages(sqs, q, bodies=[body])
    esmd({"aws": aws_block(peers), "functions": function(capture.url),
          "event_source_mappings": [{"FunctionName": "fn", "EventSourceArn": q.arn}]})
    wait_until(lambda: capture.events, 30, "the message delivered")
    assert [r["body"] for r in capture.events[0]["Records"]] == [body]
    wait_until(lambda: aws.queue_counts(sqs, q) == (0, 0, 0), 20, "the message deleted")


# ---------------------------------------------------------------- esmd --check-config

FN = {"fn": {"url": "http://127.0.0.1:9/function/fn", "protocol": "http"}}
SQS_ARN = "arn:aws:sqs:us-east-1:000000000000:q"
KIN_ARN = "arn:aws:kinesis:us-east-1:000000000000:stream/s"


def sqs_mapping(**kw):
    return {"functions": FN, "event_source_mappings": [{"FunctionName": "fn", "EventSourceArn": SQS_ARN, **kw}]}


def kin_mapping(**kw):
    m = {"FunctionName": "fn", "EventSourceArn": KIN_ARN, "StartingPosition": "LATEST"}
    m.update(kw)
    return {"functions": FN, "event_source_mappings": [{k: v for k, v in m.items() if v is not None}]}


KAFKA = {"FunctionName": "fn", "Topics": ["t"], "StartingPosition": "LATEST",
         "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:9092"]}}}

# (id, config text or dict, [substrings every one of which the output must name])
BAD_CONFIGS = [
    ("not-json", "{not json", [""]),
    ("empty-file", "", [""]),
    ("top-level-array", "[]", [""]),
    ("deep-nesting", "[" * 100000, [""]),
    ("batch-size-zero", sqs_mapping(BatchSize=0), ["event_source_mappings[0].BatchSize"]),
    ("batch-size-huge", kin_mapping(BatchSize=20000), ["event_source_mappings[0].BatchSize"]),
    ("batch-size-string", sqs_mapping(BatchSize="10"), ["event_source_mappings[0].BatchSize"]),
    ("batch-size-float", sqs_mapping(BatchSize=1e308), ["event_source_mappings[0].BatchSize"]),
    ("unknown-key", sqs_mapping(BatchSiz=10), ["BatchSiz"]),
    ("missing-function", {"functions": FN, "event_source_mappings": [
        {"FunctionName": "nope", "EventSourceArn": SQS_ARN}]}, ["event_source_mappings[0].FunctionName"]),
    ("bad-arn", sqs_mapping(EventSourceArn="arn:aws:nope"), ["event_source_mappings[0].EventSourceArn"]),
    ("no-starting-position", kin_mapping(StartingPosition=None), ["event_source_mappings[0].StartingPosition"]),
    ("retries-negative", kin_mapping(MaximumRetryAttempts=-5), ["event_source_mappings[0].MaximumRetryAttempts"]),
    ("bad-destination", kin_mapping(DestinationConfig={"OnFailure": {"Destination": "ftp://x/y"}}),
     ["event_source_mappings[0].DestinationConfig"]),
    ("bad-filter", sqs_mapping(FilterCriteria={"Filters": [{"Pattern": "{\"body\": 5}"}]}),
     ["event_source_mappings[0].FilterCriteria"]),
    # Found by tests/fuzz/fuzz_config.c: a function entry that is not an object, looked up by a
    # name no function has.
    ("function-not-object", {"functions": {"x": "f"}, "event_source_mappings": [
        {"FunctionName": "f", "EventSourceArn": SQS_ARN}]}, ["functions.x", "event_source_mappings[0].FunctionName"]),
    ("function-no-url", {"functions": {"fn": {"protocol": "http"}}, "event_source_mappings": []},
     ["functions.fn.url"]),
    ("bad-protocol", {"functions": {"fn": {"url": "http://127.0.0.1/", "protocol": "grpc"}},
                      "event_source_mappings": []}, ["functions.fn.protocol"]),
    ("state-dir-number", {"state_dir": 5, "functions": FN, "event_source_mappings": []}, ["state_dir"]),
    ("mappings-not-array", {"functions": FN, "event_source_mappings": {}}, ["event_source_mappings"]),
    ("kafka-no-topics", {"functions": FN, "event_source_mappings": [dict(KAFKA, Topics=[])]},
     ["event_source_mappings[0].Topics"]),
    ("kafka-parallelization", {"functions": FN, "event_source_mappings": [dict(KAFKA, ParallelizationFactor=2)]},
     ["event_source_mappings[0].ParallelizationFactor"]),
    ("several-at-once", {"log_level": "loud", "functions": {"fn": {"url": "ftp://x", "timeout_seconds": 0}},
                         "event_source_mappings": [{"FunctionName": "fn", "EventSourceArn": SQS_ARN,
                                                    "BatchSize": -1}]},
     ["log_level", "functions.fn.url", "functions.fn.timeout_seconds", "event_source_mappings[0].BatchSize"]),
    ("nul-in-string", '{"state_dir":"/tmp/a\\u0000b","functions":{},"event_source_mappings":[]}', ["\\u0000", "line 1"]),
    ("invalid-utf8-key", b'{"functions":{"\xff\xfe":{"url":"http://127.0.0.1/"}},"event_source_mappings":[]}', [""]),
]


@pytest.mark.parametrize("name,config,named", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_check_config_names_every_problem_and_never_crashes(tmp_path, name, config, named):
    path = os.path.join(str(tmp_path), f"{name}.json")
    data = config if isinstance(config, bytes) else (
        config if isinstance(config, str) else json.dumps(config)).encode()
    with open(path, "wb") as f:
        f.write(data)
    r = subprocess.run([esmd_bin(), "--check-config", path], capture_output=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    out = (r.stdout + r.stderr).decode("utf-8", "replace")
    assert r.returncode == 1, f"exit {r.returncode} (negative = killed by a signal):\n{out}"
    assert out.strip(), "no problem named"
    for want in named:
        assert want in out, f"{want!r} not named in:\n{out}"
