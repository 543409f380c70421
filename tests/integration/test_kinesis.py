"""The Kinesis source end to end against kinesis-local (kinesis-mock) and esmd-funchost.

Each test asserts from the function host's invocation log (ids = sequence numbers, payloads =
decoded data), from captured events, from esmd's /status and from the stream itself; every
wait is a condition with a deadline."""

import base64
import hashlib
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers import aws
from helpers.capture import Capture
from helpers.esmd import aws_block
from helpers.http import request as http_request
from helpers.procs import wait_until

PEERS = ("kinesis",)


def config(peers, url, arn, timeout=5, concurrency=10, **mapping):
    m = {"FunctionName": "fn", "EventSourceArn": arn, "StartingPosition": "TRIM_HORIZON"}
    m.update(mapping)
    return {
        "aws": aws_block(peers),
        "functions": {"fn": {"url": url, "protocol": "lambda" if "/2015-03-31/" in url else "http",
                             "timeout_seconds": timeout, "max_concurrency": concurrency}},
        "event_source_mappings": [m],
    }


def source_state(e):
    return e.status()["EventSourceMappings"][0]["SourceState"]


def shards_status(e):
    return {s["ShardId"]: s for s in source_state(e)["Shards"]}


def wait_reading(e, n_shards, timeout=15):
    """Until n_shards shards have an iterator (state Reading)."""
    return wait_until(lambda: (lambda sh: sh if sum(s["State"] == "Reading" for s in sh.values()) >= n_shards
                               else None)(shards_status(e)), timeout, f"{n_shards} shards reading")


def wait_checkpoint(e, shard_id, seq, timeout=15):
    wait_until(lambda: shards_status(e).get(shard_id, {}).get("Checkpoint") == seq, timeout,
               f"checkpoint of {shard_id} at {seq}")


@pytest.fixture
def capture():
    c = Capture()
    yield c
    c.close()


def seq_order(records):
    return [int(r["kinesis"]["sequenceNumber"]) for r in records]


# ---------------------------------------------------------------- event shape


def test_event_is_aws_kinesis_record_byte_for_byte(peers, kinesis, esmd, capture):
    st = aws.create_stream(kinesis, shards=1)
    datas = [b'{"temp": 21.5}', b"\x00\x01\xfe\xff binary", "h\u00e9llo \u2713".encode(), b"", b"x" * 5000]
    put = aws.put_records(kinesis, st, records=[(f"sensor-{i}", d) for i, d in enumerate(datas)])
    stored = aws.read_shard(kinesis, st, st.shard_ids[0])
    esmd(config(peers, capture.url, st.arn, BatchSize=10))
    wait_until(lambda: len(capture.records()) >= len(datas), 20, "every record delivered")
    got = capture.records()
    assert len(got) == len(datas)
    for rec, (shard, seq, data), src in zip(got, put, stored):
        assert list(rec) == ["kinesis", "eventSource", "eventVersion", "eventID", "eventName",
                             "invokeIdentityArn", "awsRegion", "eventSourceARN"]
        assert list(rec["kinesis"]) == ["kinesisSchemaVersion", "partitionKey", "sequenceNumber", "data",
                                        "approximateArrivalTimestamp"]
        k = rec["kinesis"]
        assert k["kinesisSchemaVersion"] == "1.0"
        assert k["partitionKey"] == src["PartitionKey"]
        assert k["sequenceNumber"] == seq == src["SequenceNumber"]
        assert base64.b64decode(k["data"]) == data
        assert k["data"] == base64.b64encode(data).decode()
        assert abs(k["approximateArrivalTimestamp"] - src["ApproximateArrivalTimestamp"].timestamp()) < 0.0015
        assert rec["eventSource"] == "aws:kinesis"
        assert rec["eventVersion"] == "1.0"
        assert rec["eventID"] == f"{shard}:{seq}"
        assert rec["eventName"] == "aws:kinesis:record"
        assert rec["invokeIdentityArn"] == f"arn:aws:iam::{aws.ACCOUNT}:role/esmd"
        assert rec["awsRegion"] == aws.REGION
        assert rec["eventSourceARN"] == st.arn


# ---------------------------------------------------------------- starting positions


def test_trim_horizon_reads_everything_in_order(peers, kinesis, funchost, esmd):
    st = aws.create_stream(kinesis, shards=1)
    put = aws.put_records(kinesis, st, n=25, partition_key="k")
    e = esmd(config(peers, funchost.url_lambda("echo"), st.arn, BatchSize=10))
    wait_until(lambda: len(funchost.payloads()) >= 25, 20, "25 records delivered")
    invs = funchost.invocations()
    assert [i for inv in invs for i in inv["ids"]] == [seq for _, seq, _ in put]
    assert max(len(inv["ids"]) for inv in invs) <= 10
    wait_checkpoint(e, st.shard_ids[0], put[-1][1])
    assert e.metric("esmd_invoke_batch_records_sum", source="kinesis") == 25
    assert e.metric("esmd_invoke_duration_seconds_count", source="kinesis") == len(invs)


def test_latest_skips_old_records(peers, kinesis, funchost, esmd):
    st = aws.create_stream(kinesis, shards=2)
    aws.put_records(kinesis, st, records=[(f"k{i}", f"old-{i}") for i in range(6)])
    e = esmd(config(peers, funchost.url_lambda("echo"), st.arn, StartingPosition="LATEST"))
    wait_reading(e, 2)
    aws.put_records(kinesis, st, records=[(f"k{i}", f"new-{i}") for i in range(6)])
    wait_until(lambda: len(funchost.payloads()) >= 6, 20, "6 new records delivered")
    assert sorted(funchost.payloads()) == sorted(f"new-{i}" for i in range(6))


def test_at_timestamp_starts_at_the_time(peers, kinesis, funchost, esmd):
    st = aws.create_stream(kinesis, shards=1)
    aws.put_records(kinesis, st, records=[("k", f"old-{i}") for i in range(4)])
    old = aws.read_shard(kinesis, st, st.shard_ids[0], expect=4)
    # a start time strictly between the old records' arrival and the new ones'
    t0 = old[-1]["ApproximateArrivalTimestamp"].timestamp() + 0.002
    wait_until(lambda: time.time() > t0 + 0.01, 2, "the clock passed the start time")
    aws.put_records(kinesis, st, records=[("k", f"new-{i}") for i in range(4)])
    esmd(config(peers, funchost.url_lambda("echo"), st.arn, StartingPosition="AT_TIMESTAMP",
                StartingPositionTimestamp=t0))
    wait_until(lambda: len(funchost.payloads()) >= 4, 20, "4 new records delivered")
    assert funchost.payloads() == [f"new-{i}" for i in range(4)]


# ---------------------------------------------------------------- checkpoints


def test_restart_resumes_after_checkpoint_without_loss_or_replay(peers, kinesis, funchost, esmd):
    st = aws.create_stream(kinesis, shards=2)
    first = aws.put_records(kinesis, st, records=[(f"k{i % 5}", f"a-{i}") for i in range(20)])
    cfg = config(peers, funchost.url_lambda("echo"), st.arn, BatchSize=4)
    e = esmd(cfg)
    wait_until(lambda: len(funchost.payloads()) >= 20, 20, "first 20 delivered")
    last = {}
    for shard, seq, _ in first:
        last[shard] = seq
    for shard, seq in last.items():
        wait_checkpoint(e, shard, seq)
    assert e.stop() == 0
    second = aws.put_records(kinesis, st, records=[(f"k{i % 5}", f"b-{i}") for i in range(10)])
    e.restart()
    wait_until(lambda: len(funchost.payloads()) >= 30, 20, "10 more delivered after restart")
    ids = [i for inv in funchost.invocations() for i in inv["ids"]]
    assert sorted(ids) == sorted(seq for _, seq, _ in first + second)  # each exactly once
    assert len(ids) == len(set(ids)) == 30


def test_disable_and_enable_resumes(peers, kinesis, funchost, esmd):
    st = aws.create_stream(kinesis, shards=1)
    a = aws.put_records(kinesis, st, n=5, partition_key="k")
    cfg = config(peers, funchost.url_lambda("echo"), st.arn)
    e = esmd(cfg)
    wait_until(lambda: len(funchost.payloads()) >= 5, 20, "5 delivered")
    wait_checkpoint(e, st.shard_ids[0], a[-1][1])
    cfg["event_source_mappings"][0]["Enabled"] = False
    e.restart(cfg)
    b = aws.put_records(kinesis, st, n=5, partition_key="k")
    cfg["event_source_mappings"][0]["Enabled"] = True
    e.restart(cfg)
    wait_until(lambda: len(funchost.payloads()) >= 10, 20, "5 more after enabling")
    ids = [i for inv in funchost.invocations() for i in inv["ids"]]
    assert ids == [seq for _, seq, _ in a + b]


def test_recreated_stream_checkpoint_is_reported_not_used(peers, kinesis, funchost, esmd):
    st = aws.create_stream(kinesis, shards=1)
    a = aws.put_records(kinesis, st, n=3, partition_key="k")
    e = esmd(config(peers, funchost.url_lambda("echo"), st.arn))
    wait_until(lambda: len(funchost.payloads()) >= 3, 20, "3 delivered")
    wait_checkpoint(e, st.shard_ids[0], a[-1][1])
    assert e.stop() == 0
    kinesis.delete_stream(StreamName=st.name)
    wait_until(lambda: st.name not in kinesis.list_streams()["StreamNames"], 20, "stream deleted")
    st2 = aws.create_stream(kinesis, shards=1, name=st.name)
    aws.put_records(kinesis, st2, n=3, partition_key="k")
    e.restart()
    sh = wait_until(lambda: (lambda s: s if s and s["State"] == "CheckpointMismatch" else None)(
        shards_status(e).get(st2.shard_ids[0])), 15, "checkpoint mismatch reported")
    assert a[-1][1] in sh["LastError"]
    assert "re-created" in sh["LastError"]
    assert "does not fit" in e.log()
    assert len(funchost.payloads()) == 3  # nothing of the new stream was read with the old checkpoint


# ---------------------------------------------------------------- shards and lanes


def test_shards_in_parallel_with_strict_order_per_shard(peers, kinesis, funchost, esmd):
    st = aws.create_stream(kinesis, shards=4)
    put = aws.put_records(kinesis, st, records=[(f"key-{i % 16}", f"r-{i}") for i in range(120)])
    shard_of = {seq: shard for shard, seq, _ in put}
    esmd(config(peers, funchost.url_lambda("slow"), st.arn, BatchSize=5))
    funchost.control("slow", "slow", ms=100)
    wait_until(lambda: len(funchost.payloads()) >= 120, 60, "120 records delivered")
    invs = funchost.invocations()
    per_shard = {}
    for inv in invs:
        shards = {shard_of[i] for i in inv["ids"]}
        assert len(shards) == 1, "a batch mixes shards"
        per_shard.setdefault(shards.pop(), []).extend(inv["ids"])
    assert len(per_shard) == 4
    for shard, ids in per_shard.items():
        assert ids == [seq for s, seq, _ in put if s == shard], f"{shard} out of order or duplicated"
    assert max(inv["concurrent"] for inv in invs) > 1, "shards were not processed in parallel"


def test_parallelization_factor_keeps_per_key_order(peers, kinesis, funchost, esmd):
    st = aws.create_stream(kinesis, shards=1)
    put = aws.put_records(kinesis, st, records=[(f"key-{i % 10}", f"key-{i % 10}:{i}") for i in range(100)])
    e = esmd(config(peers, funchost.url_lambda("slow"), st.arn, BatchSize=5, ParallelizationFactor=4))
    funchost.control("slow", "slow", ms=100)
    wait_until(lambda: len(funchost.payloads()) >= 100, 60, "100 records delivered")
    payloads = funchost.payloads()
    assert sorted(payloads) == sorted(d.decode() for _, _, d in put)  # each exactly once
    per_key = {}
    for p in payloads:
        k, i = p.split(":")
        per_key.setdefault(k, []).append(int(i))
    for k, idx in per_key.items():
        assert idx == sorted(idx), f"{k} out of order: {idx}"
    invs = funchost.invocations()
    assert max(inv["concurrent"] for inv in invs) > 1, "lanes did not run in parallel"
    lanes = shards_status(e)[st.shard_ids[0]]["Lanes"]
    assert [l["Lane"] for l in lanes] == [f"{st.shard_ids[0]}/lane-{i}" for i in range(4)]
    # the shard checkpoint reaches the last record once every lane is done
    wait_checkpoint(e, st.shard_ids[0], put[-1][1])


def test_split_and_merge_read_parents_first(peers, kinesis, funchost, esmd):
    st = aws.create_stream(kinesis, shards=1)
    parent = st.shard_ids[0]
    a = aws.put_records(kinesis, st, records=[(f"k{i}", f"p-{i}") for i in range(12)])
    e = esmd(config(peers, funchost.url_lambda("slow"), st.arn, BatchSize=2))
    funchost.control("slow", "slow", ms=150)
    # split while the parent still has most of its records to deliver
    wait_until(lambda: len(funchost.payloads()) >= 2, 20, "the parent is being read")
    kinesis.split_shard(StreamName=st.name, ShardToSplit=parent,
                        NewStartingHashKey=str(2 ** 127))
    children = wait_until(lambda: [s["ShardId"] for s in aws.list_shards(kinesis, st.name)
                                   if s.get("ParentShardId") == parent] or None, 20, "split children")
    assert len(children) == 2
    b = aws.put_records(kinesis, st, records=[(f"k{i}", f"c-{i}") for i in range(12)])
    assert {s for s, _, _ in b} <= set(children)
    wait_until(lambda: len(funchost.payloads()) >= 24, 60, "parent and children delivered")
    # merge the two children
    kinesis.merge_shards(StreamName=st.name, ShardToMerge=children[0], AdjacentShardToMerge=children[1])
    merged = wait_until(lambda: [s["ShardId"] for s in aws.list_shards(kinesis, st.name)
                                 if s.get("AdjacentParentShardId")] or None, 20, "merged shard")
    c = aws.put_records(kinesis, st, records=[(f"k{i}", f"m-{i}") for i in range(6)])
    assert {s for s, _, _ in c} == set(merged)
    wait_until(lambda: len(funchost.payloads()) >= 30, 60, "merged shard delivered")
    payloads = funchost.payloads()
    assert sorted(payloads) == sorted([f"p-{i}" for i in range(12)] + [f"c-{i}" for i in range(12)] +
                                      [f"m-{i}" for i in range(6)])
    last_parent = max(i for i, p in enumerate(payloads) if p.startswith("p-"))
    first_child = min(i for i, p in enumerate(payloads) if p.startswith("c-"))
    last_child = max(i for i, p in enumerate(payloads) if p.startswith("c-"))
    first_merged = min(i for i, p in enumerate(payloads) if p.startswith("m-"))
    assert last_parent < first_child, "a child was read before its parent was drained"
    assert last_child < first_merged, "the merged shard was read before both parents were drained"
    sh = shards_status(e)
    assert sh[parent]["State"] == "Finished"
    wait_until(lambda: all(shards_status(e)[c]["State"] == "Finished" for c in children), 15,
               "children recorded as finished")


# ---------------------------------------------------------------- filters


def test_filtered_records_are_skipped_and_checkpointed(peers, kinesis, funchost, esmd):
    st = aws.create_stream(kinesis, shards=1)
    recs = [("k", json.dumps({"kind": "keep" if i % 3 == 0 else "drop", "i": i})) for i in range(12)]
    recs.append(("k", "not json at all"))
    recs.append(("k", json.dumps({"kind": "drop", "i": 99})))  # the last record is filtered out
    put = aws.put_records(kinesis, st, records=recs)
    e = esmd(config(peers, funchost.url_lambda("echo"), st.arn,
                    FilterCriteria={"Filters": [{"Pattern": json.dumps({"data": {"kind": ["keep"]}})}]}))
    wait_until(lambda: len(funchost.payloads()) >= 4, 20, "4 matching records delivered")
    wait_checkpoint(e, st.shard_ids[0], put[-1][1])  # moved past the filtered tail
    assert [json.loads(p)["i"] for p in funchost.payloads()] == [0, 3, 6, 9]
    counters = e.status()["EventSourceMappings"][0]["Counters"]
    assert counters["filtered_out"] == 10
    assert counters["polled"] == 14


# ---------------------------------------------------------------- errors


@pytest.mark.peers("kinesis", "sqs")
def test_poison_record_bisect_retries_and_sqs_destination(peers, kinesis, sqs, funchost, esmd):
    st = aws.create_stream(kinesis, shards=1)
    dlq = aws.create_queue(sqs)
    datas = [f"ok-{i}" if i != 5 else "POISON-5" for i in range(8)]
    put = aws.put_records(kinesis, st, records=[("k", d) for d in datas])
    after = aws.put_records(kinesis, st, records=[("k", "later")])
    cfg = config(peers, funchost.url_lambda("poison"), st.arn, BatchSize=8,
                 BisectBatchOnFunctionError=True, MaximumRetryAttempts=2,
                 DestinationConfig={"OnFailure": {"Destination": dlq.arn}},
                 EsmdOptions={"RetryBackoff": {"BaseSeconds": 0, "MaxSeconds": 0}})
    e = esmd(cfg)
    msgs = aws.drain(sqs, dlq, expect=1, timeout=30)
    wait_until(lambda: "later" in funchost.payloads(), 20, "the record after the poison delivered")
    # [0,8) fails -> [0,4) ok, [4,8) fails -> [4,6) fails -> [4,5) ok, [5,6) x3 (1 + 2 retries),
    # then [6,8) ok; then the next batch.
    invs = funchost.invocations()
    seq = [s for _, s, _ in put]
    batches = [inv["ids"] for inv in invs]
    assert batches[:9] == [seq[0:8], seq[0:4], seq[4:8], seq[4:6], seq[4:5], seq[5:6], seq[5:6], seq[5:6],
                           seq[6:8]]
    assert batches[9:] == [[after[0][1]]]
    assert len(msgs) == 1
    fr = json.loads(msgs[0]["Body"])
    assert fr["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert fr["requestContext"]["approximateInvokeCount"] == 3
    assert fr["responseContext"]["functionError"] == "Unhandled"
    info = fr["KinesisBatchInfo"]
    assert info["shardId"] == st.shard_ids[0]
    assert info["startSequenceNumber"] == info["endSequenceNumber"] == seq[5]
    assert info["batchSize"] == 1
    assert info["streamArn"] == st.arn
    assert set(info) == {"shardId", "startSequenceNumber", "endSequenceNumber",
                         "approximateArrivalOfFirstRecord", "approximateArrivalOfLastRecord",
                         "batchSize", "streamArn"}
    wait_checkpoint(e, st.shard_ids[0], after[0][1])


def test_report_batch_item_failures_resume_at_lowest_failure(peers, kinesis, funchost, esmd, workdir):
    st = aws.create_stream(kinesis, shards=1)
    datas = ["a", "b", "c", "POISON-d", "e", "POISON-f"]
    put = aws.put_records(kinesis, st, records=[("k", d) for d in datas])
    seq = [s for _, s, _ in put]
    out = os.path.join(str(workdir), "failures.jsonl")
    e = esmd(config(peers, funchost.url_lambda("partial"), st.arn, BatchSize=6,
                    FunctionResponseTypes=["ReportBatchItemFailures"], MaximumRetryAttempts=1,
                    DestinationConfig={"OnFailure": {"Destination": "file://" + out}},
                    EsmdOptions={"RetryBackoff": {"BaseSeconds": 0, "MaxSeconds": 0}}))
    wait_checkpoint(e, st.shard_ids[0], seq[-1], timeout=20)
    # 1st: all six, d and f fail -> a..c acknowledged, resume at d; 2nd: d..f, d and f fail again
    # -> attempts exhausted: d and f discarded (one record per contiguous run), e acknowledged.
    assert [inv["ids"] for inv in funchost.invocations()] == [seq, seq[3:]]
    lines = wait_until(lambda: (lambda ls: ls if len(ls) >= 2 else None)(
        open(out).read().splitlines() if os.path.exists(out) else []), 15, "2 failure records")
    frs = [json.loads(line) for line in lines]
    assert [(f["KinesisBatchInfo"]["startSequenceNumber"], f["KinesisBatchInfo"]["batchSize"]) for f in frs] == \
        [(seq[3], 1), (seq[5], 1)]
    assert all(f["requestContext"]["condition"] == "RetryAttemptsExhausted" for f in frs)


def shard_index(pk, n_shards):
    """Which of n evenly split shards a partition key goes to (Kinesis: MD5 of the key)."""
    h = int.from_bytes(hashlib.md5(pk.encode()).digest(), "big")
    return h * n_shards >> 128


def test_blocked_shard_shows_iterator_age_and_blocks_only_itself(peers, kinesis, funchost, esmd):
    st = aws.create_stream(kinesis, shards=2)
    # every record of shard 0 is poison; shard 1's are fine
    recs = [(f"k{i}", ("POISON-" if shard_index(f"k{i}", 2) == 0 else "ok-") + str(i)) for i in range(40)]
    put = aws.put_records(kinesis, st, records=recs)
    bad = [q for s, q, d in put if d.startswith(b"POISON")]
    good = [q for s, q, d in put if not d.startswith(b"POISON")]
    assert {s for s, _, d in put if d.startswith(b"POISON")} == {st.shard_ids[0]}
    assert bad and good
    e = esmd(config(peers, funchost.url_lambda("poison"), st.arn, BatchSize=100,
                    EsmdOptions={"RetryBackoff": {"BaseSeconds": 1, "MaxSeconds": 1}}))
    sh0 = wait_until(lambda: (lambda s: s if s["IteratorAgeMs"] >= 1500 and s["Lanes"][0]["Batch"]["BlockedSince"]
                              else None)(shards_status(e)[st.shard_ids[0]]), 20,
                     "shard 0 blocked with a growing iterator age")
    assert sh0["Checkpoint"] is None
    assert sh0["Unresolved"] == len(bad)
    wait_checkpoint(e, st.shard_ids[1], good[-1])  # the other shard went on
    ok_ids = [i for inv in funchost.invocations() if inv["result"] != "error" for i in inv["ids"]]
    assert ok_ids == good


def test_kill9_replays_at_most_the_batch_in_flight(peers, kinesis, funchost, esmd):
    st = aws.create_stream(kinesis, shards=1)
    put = aws.put_records(kinesis, st, n=20, partition_key="k")
    seqs = [s for _, s, _ in put]
    e = esmd(config(peers, funchost.url_lambda("slow"), st.arn, BatchSize=5))
    funchost.control("slow", "slow", ms=400)
    wait_until(lambda: len(funchost.invocations()) >= 2, 20, "two batches done")
    e.kill9()
    funchost.control("slow", "echo")
    e.restart()
    wait_until(lambda: set(i for inv in funchost.invocations() for i in inv["ids"]) == set(seqs), 30,
               "every record delivered after the crash")
    ids = [i for inv in funchost.invocations() for i in inv["ids"]]
    dups = sorted({i for i in ids if ids.count(i) > 1}, key=seqs.index)
    assert len(dups) <= 5, f"more than one batch replayed: {len(dups)} records"
    if dups:  # the replayed records are one contiguous batch
        first = seqs.index(dups[0])
        assert dups == seqs[first:first + len(dups)]
    # order holds across the crash: first deliveries are in sequence order
    firsts = []
    for i in ids:
        if i not in firsts:
            firsts.append(i)
    assert firsts == seqs


def test_batching_window_gathers_records_across_reads(peers, kinesis, funchost, esmd):
    st = aws.create_stream(kinesis, shards=1)
    aws.put_records(kinesis, st, records=[("k", f"a-{i}") for i in range(5)])
    e = esmd(config(peers, funchost.url_lambda("echo"), st.arn, BatchSize=50,
                    MaximumBatchingWindowInSeconds=4))
    wait_until(lambda: shards_status(e)[st.shard_ids[0]]["Lanes"][0]["Queued"] == 5, 10,
               "the first records wait in the window")
    aws.put_records(kinesis, st, records=[("k", f"b-{i}") for i in range(5)])
    wait_until(lambda: len(funchost.payloads()) >= 10, 20, "10 records delivered")
    invs = funchost.invocations()
    assert len(invs) == 1, [len(i["ids"]) for i in invs]
    assert invs[0]["payloads"] == [f"a-{i}" for i in range(5)] + [f"b-{i}" for i in range(5)]


def test_full_batch_does_not_wait_for_the_window(peers, kinesis, funchost, esmd):
    st = aws.create_stream(kinesis, shards=1)
    aws.put_records(kinesis, st, records=[("k", f"r-{i}") for i in range(10)])
    esmd(config(peers, funchost.url_lambda("echo"), st.arn, BatchSize=10,
                MaximumBatchingWindowInSeconds=300))
    inv = funchost.wait_invocations(1, timeout=20)  # far less than the 300 s window
    assert inv[0]["payloads"] == [f"r-{i}" for i in range(10)]


def test_retry_attempts_survive_a_restart(peers, kinesis, funchost, esmd, workdir):
    st = aws.create_stream(kinesis, shards=1)
    put = aws.put_records(kinesis, st, records=[("k", "POISON-0"), ("k", "after")])
    out = os.path.join(str(workdir), "failures.jsonl")
    cfg = config(peers, funchost.url_lambda("poison"), st.arn, BatchSize=1, MaximumRetryAttempts=3,
                 DestinationConfig={"OnFailure": {"Destination": "file://" + out}},
                 EsmdOptions={"RetryBackoff": {"BaseSeconds": 1, "MaxSeconds": 1}})
    e = esmd(cfg)
    wait_until(lambda: len(funchost.invocations()) >= 2, 20, "two failed attempts")
    assert e.stop() == 0  # an invocation in flight is waited for, so its attempt counts
    n = len(funchost.invocations())
    assert 2 <= n <= 4
    e.restart()
    wait_until(lambda: "after" in funchost.payloads(), 30, "the next record after the discard")
    ids = [inv["ids"] for inv in funchost.invocations()]
    # 1 + MaximumRetryAttempts invocations of the poison record in all, across the restart
    assert ids == [[put[0][1]]] * 4 + [[put[1][1]]]
    fr = json.loads(wait_until(lambda: os.path.exists(out) and open(out).read().splitlines(), 15,
                               "the failure record")[0])
    assert fr["requestContext"]["approximateInvokeCount"] == 4


def test_hanging_function_exhausts_retries_and_the_shard_moves_on(peers, kinesis, funchost, esmd,
                                                                   workdir):
    # esmd's timeout (timeout_seconds + 2 s over the lambda protocol) is a function timeout:
    # it counts, so the batch ends in a failure record instead of blocking the shard for ever.
    st = aws.create_stream(kinesis, shards=1)
    put = aws.put_records(kinesis, st, records=[("k", "hangs"), ("k", "hangs too")])
    seq = [s for _, s, _ in put]
    out = os.path.join(str(workdir), "failures.jsonl")
    e = esmd(config(peers, funchost.url_lambda("hang-kinesis"), st.arn, timeout=1, BatchSize=2,
                    MaximumRetryAttempts=1,
                    DestinationConfig={"OnFailure": {"Destination": "file://" + out}},
                    EsmdOptions={"RetryBackoff": {"BaseSeconds": 0, "MaxSeconds": 0}}))
    wait_checkpoint(e, st.shard_ids[0], seq[-1], timeout=30)
    fr = json.loads(wait_until(lambda: os.path.exists(out) and open(out).read().splitlines(), 15,
                               "the failure record")[0])
    assert fr["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert fr["requestContext"]["approximateInvokeCount"] == 2
    assert fr["responseContext"]["functionError"] == "Unhandled"
    assert fr["KinesisBatchInfo"]["startSequenceNumber"] == seq[0]
    assert fr["KinesisBatchInfo"]["batchSize"] == 2
    m = e.status()["EventSourceMappings"][0]
    assert m["Counters"]["dropped"] == 2 and m["Misconfigured"] is None


def test_forbidden_endpoint_blocks_the_shard_visibly_and_never_discards(peers, kinesis, funchost,
                                                                        esmd, workdir):
    st = aws.create_stream(kinesis, shards=1)
    put = aws.put_records(kinesis, st, records=[("k", "kept")])
    out = os.path.join(str(workdir), "failures.jsonl")
    # (the invocation-error backoff is full jitter up to RetryBackoff.MaxSeconds)
    e = esmd(config(peers, funchost.url_lambda("forbidden-kinesis"), st.arn, BatchSize=1,
                    MaximumRetryAttempts=0,
                    DestinationConfig={"OnFailure": {"Destination": "file://" + out}},
                    EsmdOptions={"RetryBackoff": {"BaseSeconds": 1, "MaxSeconds": 1}}))

    def mapping():
        return e.status()["EventSourceMappings"][0]
    wait_until(lambda: mapping()["Counters"]["misconfigured"] >= 6, 30, "six 403 answers")
    m = mapping()
    assert m["Misconfigured"]["Reason"].startswith("function endpoint answered 403")
    assert m["Counters"]["dropped"] == 0 and m["Counters"]["invocations"] == 0
    assert m["BlockedSince"] is not None
    (shard,) = m["SourceState"]["Shards"]
    assert shard.get("Checkpoint") is None
    assert not os.path.exists(out)
    assert e.metric("esmd_mapping_misconfigured") == 1
    assert e.log().count("function endpoint answered 403") == 1  # rate-limited
    funchost.control("forbidden-kinesis", "echo")
    wait_checkpoint(e, st.shard_ids[0], put[0][1], timeout=30)
    assert mapping()["Misconfigured"] is None


# ---------------------------------------------------------------- API errors (through a proxy)


class FaultProxy:
    """Forwards Kinesis calls to kinesis-local; `fault(target, n)` may return (status, error type)
    to answer the n-th call of that target (1-based) with an error instead; `rewrite(target,
    response)` may change a successful response. Logs every call."""

    def __init__(self, upstream, fault, rewrite=None):
        self.calls = []  # (monotonic time, target, forwarded)
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                target = self.headers.get("X-Amz-Target", "").split(".")[-1]
                with proxy.lock:
                    n = sum(1 for _, t, _ in proxy.calls if t == target) + 1
                    err = fault(target, n)
                    proxy.calls.append((time.monotonic(), target, err is None))
                if err is not None:
                    out = json.dumps({"__type": err[1], "message": "injected by the test"}).encode()
                    self.send_response(err[0])
                    self.send_header("Content-Type", "application/x-amz-json-1.1")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                    return
                hdrs = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                status, rh, out = http_request("POST", upstream + "/", body=body, headers=hdrs)
                if rewrite is not None and status == 200:
                    out = json.dumps(rewrite(target, json.loads(out))).encode()
                self.send_response(status)
                self.send_header("Content-Type", rh.get("Content-Type", "application/x-amz-json-1.1"))
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def count(self, target, forwarded=None):
        with self.lock:
            return sum(1 for _, t, f in self.calls if t == target and (forwarded is None or f == forwarded))

    def times(self, target):
        with self.lock:
            return [ts for ts, t, f in self.calls if t == target]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def proxied(peers, proxy, url, arn, **mapping):
    cfg = config(peers, url, arn, **mapping)
    cfg["aws"]["endpoints"]["kinesis"] = proxy.url
    return cfg


def test_expired_iterator_is_renewed_without_skip_or_replay(peers, kinesis, funchost, esmd):
    st = aws.create_stream(kinesis, shards=1)
    put = aws.put_records(kinesis, st, n=10, partition_key="k")

    def fault(target, n):  # the 3rd and 4th GetRecords: the iterator expired
        return (400, "ExpiredIteratorException") if target == "GetRecords" and n in (3, 4) else None

    proxy = FaultProxy(peers.kinesis_endpoint, fault)
    try:
        esmd(proxied(peers, proxy, funchost.url_lambda("echo"), st.arn, BatchSize=5))
        # the first read takes these 10; the iterator expires after it, before or after the rest
        wait_until(lambda: len(funchost.payloads()) >= 10, 30, "10 records delivered")
        put += aws.put_records(kinesis, st, n=20, partition_key="k")
        wait_until(lambda: len(funchost.payloads()) >= 30, 30, "30 records delivered")
        # the first iterator, then one per expiry; then a read with the renewed iterator
        wait_until(lambda: proxy.count("GetShardIterator") >= 3 and proxy.count("GetRecords") >= 5, 15,
                   "two expiries and a read after them")
        ids = [i for inv in funchost.invocations() for i in inv["ids"]]
        assert ids == [s for _, s, _ in put]  # in order, each once
    finally:
        proxy.close()


def test_throttled_reads_back_off_and_lose_nothing(peers, kinesis, funchost, esmd):
    st = aws.create_stream(kinesis, shards=1)
    put = aws.put_records(kinesis, st, n=40, partition_key="k")

    def fault(target, n):  # every other GetRecords of the first ten is throttled, from the first
        if target == "GetRecords" and n <= 10 and n % 2 == 1:
            return (400, "ProvisionedThroughputExceededException")
        if target == "ListShards" and n == 1:
            return (500, "InternalFailure")
        return None

    proxy = FaultProxy(peers.kinesis_endpoint, fault)
    try:
        e = esmd(proxied(peers, proxy, funchost.url_lambda("echo"), st.arn, BatchSize=2))
        wait_until(lambda: len(funchost.payloads()) >= 40, 60, "40 records delivered")
        ids = [i for inv in funchost.invocations() for i in inv["ids"]]
        assert ids == [s for _, s, _ in put]
        assert proxy.count("GetRecords", forwarded=False) == 5
        assert e.status()["EventSourceMappings"][0]["Counters"]["source_errors"] >= 6
        # never more than 5 GetRecords a second on the shard (200 ms apart; 50 ms of slack for
        # the proxy's own scheduling)
        ts = proxy.times("GetRecords")
        gaps = [b - a for a, b in zip(ts, ts[1:])]
        assert min(gaps) >= 0.15, min(gaps)
    finally:
        proxy.close()


def test_records_too_old_when_read_are_discarded_without_invoking(peers, kinesis, funchost, esmd, workdir):
    st = aws.create_stream(kinesis, shards=1)
    put = aws.put_records(kinesis, st, n=3, partition_key="k")
    old = {s for _, s, _ in put}

    def age(target, resp):  # the first three records arrived an hour ago
        if target == "GetRecords":
            for r in resp.get("Records", []):
                if r["SequenceNumber"] in old:
                    r["ApproximateArrivalTimestamp"] -= 3600
        return resp

    proxy = FaultProxy(peers.kinesis_endpoint, lambda t, n: None, rewrite=age)
    out = os.path.join(str(workdir), "failures.jsonl")
    try:
        e = esmd(proxied(peers, proxy, funchost.url_lambda("echo"), st.arn, BatchSize=10,
                         MaximumRecordAgeInSeconds=60,
                         DestinationConfig={"OnFailure": {"Destination": "file://" + out}}))
        wait_checkpoint(e, st.shard_ids[0], put[-1][1])
        fresh = aws.put_records(kinesis, st, records=[("k", "fresh")])
        wait_until(lambda: funchost.payloads() == ["fresh"], 20, "the fresh record delivered")
        assert [inv["ids"] for inv in funchost.invocations()] == [[fresh[0][1]]]  # old ones never invoked
        fr = json.loads(wait_until(lambda: os.path.exists(out) and open(out).read().splitlines(), 15,
                                   "the failure record")[0])
        assert fr["requestContext"]["condition"] == "RecordAgeExceeded"
        assert fr["requestContext"]["approximateInvokeCount"] == 0
        assert "responseContext" not in fr
        info = fr["KinesisBatchInfo"]
        assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == \
            (put[0][1], put[-1][1], 3)
        assert e.status()["EventSourceMappings"][0]["Counters"]["dropped"] == 3
    finally:
        proxy.close()
