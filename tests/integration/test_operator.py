"""Operator commands on lane positions (docs/operations.md "Moving a position"), as an operator
uses them: GET /positions lists what the store holds, POST /positions/move moves a Kinesis shard
or a Kafka partition of a disabled mapping, and the mapping reads from there once enabled again.
Every assertion is on what the function received (each record, in order) and on the state the
listing and the peers show; every wait is a condition with a deadline."""

import json
import time
import urllib.parse

import pytest

from helpers import aws
from helpers import http
from helpers import kafka as kafka_mod
from helpers.esmd import aws_block
from helpers.procs import wait_until

KIN = "a0000000-0000-4000-8000-00000000000a"
KAF = "b0000000-0000-4000-8000-00000000000b"
SQS = "c0000000-0000-4000-8000-00000000000c"
FAST = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}


def function(url):
    return {"fn": {"url": url, "protocol": "lambda", "timeout_seconds": 10}}


def positions(e, mapping=None):
    q = f"?mapping={mapping}" if mapping else ""
    code, _, body = http.get(e.admin_url + "/positions" + q)
    assert code == 200, body
    return {m["UUID"]: m for m in json.loads(body)["EventSourceMappings"]}


def move(e, mapping, lane, to, **arg):
    q = urllib.parse.urlencode(dict(mapping=mapping, lane=lane, to=to, **arg))
    code, _, body = http.request("POST", e.admin_url + "/positions/move?" + q)
    return code, json.loads(body)


def set_enabled(e, cfg, enabled, state):
    """Enabled in the running config (its state_dir and admin_listen kept), then SIGHUP."""
    for m in e.config["event_source_mappings"]:
        m["Enabled"] = enabled
    e.reload(e.config)
    wait_until(lambda: all(m["State"] == state for m in e.status()["EventSourceMappings"]), 30,
               f"every mapping {state}")


def next_second():
    """Waits until the wall clock is in a later whole second than when called."""
    now = int(time.time())
    wait_until(lambda: int(time.time()) > now, 3, "the next second", interval=0.01)


def next_millisecond():
    now = int(time.time() * 1000)
    wait_until(lambda: int(time.time() * 1000) > now, 1, "the next millisecond", interval=0.001)


def ids(funchost):
    return [i for inv in funchost.invocations() for i in inv["ids"]]


def wait_ids(funchost, n, what):
    wait_until(lambda: len(ids(funchost)) >= n, 30, what)
    return ids(funchost)


# ---------------------------------------------------------------- Kinesis


def kinesis_config(peers, url, arn, **mapping):
    m = {"UUID": KIN, "FunctionName": "fn", "EventSourceArn": arn, "StartingPosition": "TRIM_HORIZON",
         "BatchSize": 100}
    m.update(mapping)
    return {"aws": aws_block(peers), "functions": function(url), "event_source_mappings": [m]}


def wait_position(e, lane, seq):
    wait_until(lambda: {l["Lane"]: l["Position"] for l in positions(e)[KIN]["Lanes"]}.get(lane) == seq, 20,
               f"position of {lane} at {seq}")


@pytest.mark.peers("kinesis")
def test_kinesis_move_back_latest_and_trim_horizon(peers, kinesis, funchost, esmd):
    st = aws.create_stream(kinesis, shards=1)
    shard = st.shard_ids[0]
    a = [seq for _, seq, _ in aws.put_records(kinesis, st, n=10, partition_key="k")]
    cfg = kinesis_config(peers, funchost.url_lambda("echo"), st.arn)
    e = esmd(cfg)
    assert wait_ids(funchost, 10, "10 delivered") == a
    wait_position(e, shard, a[-1])
    listed = positions(e)[KIN]
    assert listed["State"] == "Enabled" and "after it" in listed["PositionMeans"]

    code, body = move(e, KIN, shard, "TRIM_HORIZON")
    assert code == 409 and "Enabled" in body["error"], body  # only while disabled
    set_enabled(e, cfg, False, "Disabled")

    # back to the fourth record: the function gets it and every later one again, in order
    code, body = move(e, KIN, shard, "AT_SEQUENCE_NUMBER", sequence_number=a[3])
    assert code == 200, body
    assert body["Previous"] == a[-1] and body["StartAt"] == f"AT_SEQUENCE_NUMBER:{a[3]}"
    (lane,) = positions(e, KIN)[KIN]["Lanes"]
    assert lane["Position"] is None and lane["StartAt"] == f"AT_SEQUENCE_NUMBER:{a[3]}"
    set_enabled(e, cfg, True, "Enabled")
    assert wait_ids(funchost, 17, "7 again") == a + a[3:]
    wait_position(e, shard, a[-1])
    (lane,) = positions(e)[KIN]["Lanes"]
    assert lane["StartAt"] is None  # the first checkpoint ends the move

    # LATEST: what is in the stream is passed over, what comes after the move is read, however
    # long the mapping stays disabled (here: across a restart of esmd)
    set_enabled(e, cfg, False, "Disabled")
    b = [seq for _, seq, _ in aws.put_records(kinesis, st, n=3, partition_key="k")]
    next_second()  # kinesis-mock's arrival times have whole seconds: b and c must not share one
    assert move(e, KIN, shard, "LATEST")[0] == 200
    next_second()
    c = [seq for _, seq, _ in aws.put_records(kinesis, st, n=4, partition_key="k")]
    e.restart()
    set_enabled(e, cfg, True, "Enabled")
    assert wait_ids(funchost, 21, "the 4 written after the move") == a + a[3:] + c
    wait_position(e, shard, c[-1])

    # TRIM_HORIZON, and a kill -9 before the first checkpoint: the move holds until one is written
    set_enabled(e, cfg, False, "Disabled")
    assert move(e, KIN, shard, "TRIM_HORIZON")[0] == 200
    e.kill9()
    e.start()
    set_enabled(e, cfg, True, "Enabled")
    everything = a + b + c
    wait_until(lambda: ids(funchost)[21:] == everything, 30, "the whole shard again")
    wait_position(e, shard, c[-1])
    assert b[0] not in ids(funchost)[:21]


@pytest.mark.peers("kinesis")
def test_kinesis_parallelization_factor_move_and_refusals(peers, kinesis, funchost, esmd):
    st = aws.create_stream(kinesis, shards=1)
    shard = st.shard_ids[0]
    a = [seq for _, seq, _ in aws.put_records(kinesis, st, records=[(f"k{i % 4}", b"x") for i in range(12)])]
    cfg = kinesis_config(peers, funchost.url_lambda("echo"), st.arn, ParallelizationFactor=2)
    e = esmd(cfg)
    wait_ids(funchost, 12, "12 delivered")
    # the shard's checkpoint is the highest position among its rows (its own and its lanes')
    def checkpointed():
        rows = positions(e)[KIN]["Lanes"]
        done = max((int(l["Position"]) for l in rows if l["Position"]), default=0) == int(a[-1])
        return done and any(l["Lane"].startswith(shard + "/lane-") and l["Position"] for l in rows)

    wait_until(checkpointed, 20, "the shard checkpointed at its end, a lane row with a position")
    set_enabled(e, cfg, False, "Disabled")
    before = positions(e)[KIN]["Lanes"]

    for args, status, words in [
        ((KIN, shard, "SOMEWHERE"), 400, "to must be"),
        ((KIN, shard, "AT_TIMESTAMP"), 400, "needs timestamp="),
        ((KIN, shard, "AT_OFFSET"), 400, "needs offset="),
        ((KIN, "shardId-000000000099", "TRIM_HORIZON"), 404, "no shard"),
        ((KIN, shard + "/lane-1", "TRIM_HORIZON"), 404, "no shard"),
        (("d0000000-0000-4000-8000-00000000000d", shard, "TRIM_HORIZON"), 404, "no mapping"),
    ]:
        code, body = move(e, *args)
        assert (code, words in body["error"]) == (status, True), (args, body)
    code, body = move(e, KIN, shard, "AT_OFFSET", offset="4")
    assert code == 400 and "a Kinesis shard moves to" in body["error"], body
    for seq in ("12ab", "0001", "1" * 200, ""):
        code, body = move(e, KIN, shard, "AT_SEQUENCE_NUMBER", sequence_number=seq)
        assert code == 400 and ("sequence number" in body["error"] or "needs" in body["error"]), (seq, body)
    for ts in ("1969-12-31T23:59:59.999Z", "2024-05-01T-1:00:00Z", "2024-05-01T10:00:00 01:00", "-5"):
        code, body = move(e, KIN, shard, "AT_TIMESTAMP", timestamp=ts)
        assert code == 400 and "ISO 8601" in body["error"], (ts, body)
    code, body = move(e, KIN, shard, "AT_TIMESTAMP", timestamp="yesterday")
    assert code == 400 and "ISO 8601" in body["error"]
    assert positions(e)[KIN]["Lanes"] == before  # a refused move changes nothing

    # AT_TIMESTAMP before the first record (epoch seconds, as the AWS CLI sends it): the whole
    # shard again, through both lanes; no lane row keeps its old position
    code, body = move(e, KIN, shard, "AT_TIMESTAMP", timestamp="1000000000")
    assert code == 200 and body["StartAt"] == "AT_TIMESTAMP:1000000000000", body
    (lane,) = positions(e)[KIN]["Lanes"]
    assert lane["Lane"] == shard and lane["Position"] is None
    set_enabled(e, cfg, True, "Enabled")
    wait_until(lambda: sorted(ids(funchost)[12:]) == sorted(a), 30, "the shard again")
    for key in range(4):  # per key, in order
        mine = [s for s, (k, _) in zip(a, [(f"k{i % 4}", b"x") for i in range(12)]) if k == f"k{key}"]
        again = [s for s in ids(funchost)[12:] if s in mine]
        assert again == mine


def test_sqs_mapping_has_no_positions(peers, sqs, funchost, esmd):
    q = aws.create_queue(sqs)
    cfg = {"aws": aws_block(peers), "functions": function(funchost.url_lambda("echo")),
           "event_source_mappings": [{"UUID": SQS, "FunctionName": "fn", "EventSourceArn": q.arn,
                                      "Enabled": False}]}
    e = esmd(cfg)
    assert positions(e)[SQS]["Lanes"] is None
    code, body = move(e, SQS, "x", "TRIM_HORIZON")
    assert code == 400 and "SQS" in body["error"]
    code, _, _ = http.get(e.admin_url + "/positions?mapping=nobody")
    assert code == 404


# ---------------------------------------------------------------- Kafka


def kafka_config(kafka, topic, url, group):
    return {"functions": function(url), "event_source_mappings": [{
        "UUID": KAF, "FunctionName": "fn",
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [kafka.bootstrap]}},
        "Topics": [topic], "StartingPosition": "TRIM_HORIZON", "BatchSize": 100,
        "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": group},
        "EsmdOptions": {"KafkaProperties": dict(FAST)}}]}


def values(funchost):
    return funchost.payloads("echo")


def committed(kafka, group, topic):
    return kafka.committed_offsets(group, topic)


@pytest.mark.peers("kafka")
def test_kafka_move_to_offset_latest_and_timestamp(kafka, funchost, esmd):
    topic = kafka.create_topic(partitions=1)
    group = kafka_mod.unique("g")
    kafka.produce(topic, [{"value": f"a-{i}"} for i in range(10)])
    cfg = kafka_config(kafka, topic, funchost.url_lambda("echo"), group)
    e = esmd(cfg)
    wait_until(lambda: len(values(funchost)) >= 10, 30, "10 delivered")
    wait_until(lambda: committed(kafka, group, topic) == {0: 10}, 30, "committed 10")
    wait_until(lambda: positions(e)[KAF]["Lanes"] and positions(e)[KAF]["Lanes"][0]["Position"] == "10",
               20, "stored 10")
    assert move(e, KAF, "0", "AT_OFFSET", offset="4")[0] == 409
    set_enabled(e, cfg, False, "Disabled")

    code, body = move(e, KAF, "0", "AT_OFFSET", offset="4")
    assert code == 200, body
    assert (body["Previous"], body["Position"], body["LogStart"], body["LogEnd"]) == ("10", "4", 0, 10)
    assert committed(kafka, group, topic) == {0: 4}  # standard tools see the move
    assert positions(e)[KAF]["Lanes"][0]["Position"] == "4"
    set_enabled(e, cfg, True, "Enabled")
    wait_until(lambda: len(values(funchost)) >= 16, 30, "6 again")
    assert values(funchost) == [f"a-{i}" for i in range(10)] + [f"a-{i}" for i in range(4, 10)]
    wait_until(lambda: committed(kafka, group, topic) == {0: 10}, 30, "committed 10 again")

    # LATEST is the log end at the move: records produced after it are read
    set_enabled(e, cfg, False, "Disabled")
    kafka.produce(topic, [{"value": f"b-{i}"} for i in range(3)])
    code, body = move(e, KAF, "0", "LATEST")
    assert (code, body.get("Position")) == (200, "13"), body
    kafka.produce(topic, [{"value": f"c-{i}"} for i in range(2)])
    set_enabled(e, cfg, True, "Enabled")
    wait_until(lambda: len(values(funchost)) >= 18, 30, "the 2 produced after the move")
    assert values(funchost)[16:] == ["c-0", "c-1"]
    wait_until(lambda: committed(kafka, group, topic) == {0: 15}, 30, "committed 15")

    # AT_TIMESTAMP between two writes (ISO 8601): from the first record at or after it
    set_enabled(e, cfg, False, "Disabled")
    next_millisecond()  # record timestamps are milliseconds: the mark must fall between the writes
    mark = time.time()
    next_millisecond()
    kafka.produce(topic, [{"value": f"d-{i}"} for i in range(2)])
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(mark)) + f".{int(mark * 1000) % 1000:03d}Z"
    code, body = move(e, KAF, "0", "AT_TIMESTAMP", timestamp=iso)
    assert (code, body.get("Position")) == (200, "15"), body
    code, body = move(e, KAF, "0", "AT_TIMESTAMP", timestamp=str(int(time.time()) + 3600))
    assert (code, body.get("Position")) == (200, "17"), body  # none after it yet: the end
    code, body = move(e, KAF, "0", "AT_TIMESTAMP", timestamp=iso)
    assert code == 200
    set_enabled(e, cfg, True, "Enabled")
    wait_until(lambda: len(values(funchost)) >= 20, 30, "the 2 after the mark")
    assert values(funchost)[18:] == ["d-0", "d-1"]
    wait_until(lambda: committed(kafka, group, topic) == {0: 17}, 30, "committed 17")


@pytest.mark.peers("kafka")
def test_kafka_move_refusals(kafka, funchost, esmd):
    topic = kafka.create_topic(partitions=2)
    group = kafka_mod.unique("g")
    kafka.produce(topic, [{"value": f"a-{i}", "partition": i % 2} for i in range(6)])
    cfg = kafka_config(kafka, topic, funchost.url_lambda("echo"), group)
    cfg["event_source_mappings"][0]["Enabled"] = False
    e = esmd(cfg)
    for args, extra, status, words in [
        (("0", "AT_OFFSET"), {"offset": "99"}, 400, "outside the partition's log"),
        (("0", "AT_OFFSET"), {"offset": "-1"}, 400, "offset must be"),
        (("0", "AT_SEQUENCE_NUMBER"), {"sequence_number": "1"}, 400, "AT_OFFSET"),
        (("7", "TRIM_HORIZON"), {}, 404, "no partition 7"),
        (("p0", "TRIM_HORIZON"), {}, 400, "partition number"),
        (("00", "TRIM_HORIZON"), {}, 400, "leading zeros"),
        ((" 1", "TRIM_HORIZON"), {}, 400, "partition number"),
    ]:
        code, body = move(e, KAF, *args, **extra)
        assert (code, words in body["error"]) == (status, True), (args, body)
    assert set(committed(kafka, group, topic).values()) == {-1001}  # a refusal commits nothing

    # another consumer in the group: the broker refuses the commit, the store is left alone
    ck = kafka_mod._ck()
    other = ck.Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": group,
                         "enable.auto.commit": False, **FAST})
    try:
        other.subscribe([topic])
        wait_until(lambda: other.poll(0.2) is not None or other.assignment(), 30, "the other consumer joined")
        assert kafka.group_state(group) == ("STABLE", 1)
        code, body = move(e, KAF, "0", "TRIM_HORIZON")
        assert code == 409 and "another consumer" in body["error"], body
    finally:
        other.close()
    assert positions(e)[KAF]["Lanes"] == []
    assert set(committed(kafka, group, topic).values()) == {-1001}


# ---------------------------------------------------------------- replay


def replay(e, **args):
    q = urllib.parse.urlencode(args)
    code, _, body = http.request("POST", e.admin_url + "/replay/start?" + q)
    return code, json.loads(body)


def replay_done(e, job_id):
    def done():
        code, _, body = http.get(e.admin_url + "/replay")
        assert code == 200, body
        (job,) = [j for j in json.loads(body)["Replays"] if j["Id"] == job_id]
        return job if job["State"] != "Running" else None

    return wait_until(done, 30, f"replay {job_id} finished")


def poisoned_kinesis(peers, kinesis, funchost, destination, poison=(3,)):
    """A stream of six records, poison pills at the given places; the mapping sends each one's
    failure record, the records included, to destination. Returns (cfg, the poison records'
    sequence numbers)."""
    st = aws.create_stream(kinesis, shards=1)
    put = aws.put_records(kinesis, st, records=[("k", b"POISON" if i in poison else f"ok-{i}".encode())
                                                for i in range(6)])
    cfg = kinesis_config(peers, funchost.url_lambda("poison"), st.arn, BatchSize=10,
                         MaximumRetryAttempts=0, BisectBatchOnFunctionError=True,
                         DestinationConfig={"OnFailure": {"Destination": destination}},
                         EsmdOptions={"IncludeRecordsInFailureRecord": True})
    return cfg, [put[i][1] for i in poison]


def poison_invocations(funchost):
    return [inv for inv in funchost.invocations("poison") if "POISON" in inv.get("payloads", [])]


def lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


@pytest.mark.peers("kinesis")
def test_replay_from_a_file_destination(peers, kinesis, funchost, esmd, workdir):
    path = str(workdir / "failures.jsonl")
    cfg, (poison_seq,) = poisoned_kinesis(peers, kinesis, funchost, f"file://{path}")
    e = esmd(cfg)
    wait_until(lambda: len(lines(path)) == 1, 30, "the poison record's failure record in the file")
    tries = len(poison_invocations(funchost))
    # a record of another stream, one without its records, and a line that is no JSON
    (line,) = lines(path)
    other = json.loads(line)
    other["KinesisBatchInfo"]["streamArn"] = aws.kinesis_arn("someone-else")
    bare = json.loads(line)
    del bare["payload"]
    with open(path, "a") as f:
        f.write(json.dumps(other) + "\n" + json.dumps(bare) + "\n" + "{not json\n")

    # still poisoned: the replay reaches the function and reports its failure
    code, job = replay(e, mapping=KIN, **{"from": f"file://{path}"})
    assert code == 202 and job["State"] == "Running", job
    job = replay_done(e, job["Id"])
    assert (job["State"], job["Read"], job["Replayed"], job["Failed"], job["Skipped"]) == \
        ("Done", 4, 0, 1, 3), job
    errors = {x["At"]: x["Error"] for x in job["Errors"]}
    assert "function_error" in errors["line 1"]
    assert "stream" in errors["line 2"] and "payload" in errors["line 3"] and "JSON" in errors["line 4"]
    assert len(poison_invocations(funchost)) == tries + 1

    # fixed: the poison record reaches the function again, with its original event
    funchost.control("poison", "echo")
    code, job = replay(e, mapping=KIN, limit=1, **{"from": f"file://{path}"})
    job = replay_done(e, job["Id"])
    assert (job["State"], job["Read"], job["Replayed"], job["Reason"]) == ("Done", 1, 1, "the limit was reached")
    last = funchost.invocations("poison")[-1]
    assert last["ids"] == [poison_seq] and last["payloads"] == ["POISON"]
    assert len(lines(path)) == 4  # replaying writes no new failure record

    # a throttled function is tried again: the record is replayed, not failed
    funchost.control("poison", "throttle", count=2, retry_after=1)
    code, job = replay(e, mapping=KIN, limit=1, **{"from": f"file://{path}"})
    job = replay_done(e, job["Id"])
    assert (job["Read"], job["Replayed"], job["Failed"]) == (1, 1, 0), job
    assert [i["result"] for i in funchost.invocations("poison")[-3:]] == ["throttle", "throttle", "ok"]

    for args, status in [({"mapping": KIN}, 400), ({"mapping": KIN, "from": "file://relative"}, 400),
                         ({"mapping": KIN, "from": "http://127.0.0.1:1/x"}, 400),
                         ({"mapping": KIN, "from": f"file://{path}.missing"}, 400),
                         ({"mapping": KIN, "from": f"file://{workdir}"}, 400),
                         ({"mapping": KIN, "from": f"file://{path}", "limit": "0"}, 400),
                         ({"mapping": "nobody", "from": f"file://{path}"}, 404)]:
        code, body = replay(e, **args)
        assert code == status and body["error"], (args, body)


@pytest.mark.peers("kinesis", "sqs")
def test_replay_from_an_sqs_destination_deletes_what_it_replayed(peers, kinesis, sqs, funchost, esmd):
    failures = aws.create_queue(sqs)
    cfg, seqs = poisoned_kinesis(peers, kinesis, funchost, failures.arn, poison=(1, 4))
    e = esmd(cfg)
    wait_until(lambda: aws.queue_counts(sqs, failures)[0] == 2, 30, "both failure records in the queue")
    funchost.control("poison", "poison", count=1)  # the first replayed record fails again, then echo
    code, job = replay(e, mapping=KIN, **{"from": failures.arn})
    assert code == 202, job
    job = replay_done(e, job["Id"])
    assert (job["State"], job["Read"], job["Replayed"], job["Failed"]) == ("Done", 2, 1, 1), job
    assert job["Errors"][0]["At"].startswith("message ")
    # the replayed one is deleted; the failed one stays (in flight until its visibility ends)
    wait_until(lambda: aws.queue_counts(sqs, failures) == (0, 1, 0), 15, "one message left, in flight")
    replayed = [inv["ids"] for inv in funchost.invocations("poison")[-2:]]
    assert sorted(i for ids in replayed for i in ids) == sorted(seqs)
    code, _, body = http.request("POST", e.admin_url + f"/replay/cancel?id={job['Id']}")
    assert code == 200 and json.loads(body)["State"] == "Done"  # a finished job stays as it was
    assert http.request("POST", e.admin_url + "/replay/cancel?id=999")[0] == 404
