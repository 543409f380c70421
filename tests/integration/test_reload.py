"""Configuration reload (SIGHUP and POST /reload) against fauxqs: an unchanged mapping keeps
running untouched, a changed one restarts with its new config, removed ones stop, new ones
start, an invalid config is refused with every problem named and the old one keeps running,
settings that need a restart are ignored with a log line."""

import copy
import json

import pytest

from helpers import aws, http
from helpers.esmd import aws_block
from helpers.procs import wait_until

PEERS = ("sqs",)


def base_config(peers, funchost, queues, per_queue=None):
    maps = []
    for i, q in enumerate(queues):
        m = {"FunctionName": "fn", "EventSourceArn": q.arn, "BatchSize": 10}
        m.update((per_queue or {}).get(i, {}))
        maps.append(m)
    return {
        "aws": aws_block(peers),
        "functions": {"fn": {"url": funchost.url_lambda("echo"), "protocol": "lambda",
                             "timeout_seconds": 2, "max_concurrency": 4}},
        "event_source_mappings": maps,
    }


def pinned(e, cfg):
    """The same state_dir and admin_listen as the running daemon (the test helper would pick
    new ones otherwise)."""
    cfg = copy.deepcopy(cfg)
    cfg["state_dir"] = e.config["state_dir"]
    cfg["admin_listen"] = e.config["admin_listen"]
    return cfg


def by_arn(e):
    return {m["EventSourceArn"]: m for m in e.status()["EventSourceMappings"]}


def ready(e):
    return http.get(e.admin_url + "/readyz")[0] == 200


def generation(e):
    return e.status()["Generation"]


def payloads_of(funchost, prefix):
    return [p for p in funchost.payloads() if p.startswith(prefix)]


def test_sighup_keeps_unchanged_and_restarts_changed(peers, sqs, funchost, esmd):
    qa = aws.create_queue(sqs, visibility_timeout=10)
    qb = aws.create_queue(sqs, visibility_timeout=10)
    cfg = base_config(peers, funchost, [qa, qb], {1: {"MaximumBatchingWindowInSeconds": 1}})
    e = esmd(cfg)
    wait_until(lambda: ready(e), 15, "ready")
    aws.send_messages(sqs, qa, bodies=[f"a1-{i}" for i in range(5)])
    wait_until(lambda: len(payloads_of(funchost, "a1-")) == 5, 15, "a1 delivered")
    st = by_arn(e)
    uuid_a, uuid_b = st[qa.arn]["UUID"], st[qb.arn]["UUID"]
    polled_a = st[qa.arn]["Counters"]["polled"]
    assert polled_a == 5

    # B: BatchSize 10 -> 2; A unchanged.
    new = copy.deepcopy(cfg)
    new["event_source_mappings"][1]["BatchSize"] = 2
    e.reload(pinned(e, new))
    wait_until(lambda: generation(e) == 2, 10, "generation 2")
    wait_until(lambda: ready(e), 15, "ready after the reload")
    log = e.log()
    assert f"mapping {uuid_b} (fn) changed" in log
    assert f"mapping {uuid_a} (fn) changed" not in log
    assert log.count(f"starting mapping {uuid_a}") == 1, "A was not restarted"
    assert log.count(f"starting mapping {uuid_b}") == 2, "B was restarted"

    # A's counters go on from where they were (same mapping object, no reset).
    aws.send_messages(sqs, qa, bodies=[f"a2-{i}" for i in range(3)])
    wait_until(lambda: by_arn(e)[qa.arn]["Counters"]["polled"] == polled_a + 3, 15,
               "A counts on")
    # B's new BatchSize applies: 6 messages sent together, never more than 2 per invocation.
    aws.send_messages(sqs, qb, bodies=[f"b-{i}" for i in range(6)])
    wait_until(lambda: len(payloads_of(funchost, "b-")) == 6, 20, "B delivered")
    sizes = [len(inv["payloads"]) for inv in funchost.invocations()
             if inv["payloads"] and inv["payloads"][0].startswith("b-")]
    assert max(sizes) <= 2, sizes
    assert by_arn(e)[qb.arn]["BatchSize"] == 2
    # B's counters were carried over the restart.
    assert by_arn(e)[qb.arn]["Counters"]["polled"] == 6


def test_invalid_reload_keeps_the_running_config(peers, sqs, funchost, esmd):
    q = aws.create_queue(sqs, visibility_timeout=10)
    cfg = base_config(peers, funchost, [q])
    e = esmd(cfg)
    wait_until(lambda: ready(e), 15, "ready")
    bad = copy.deepcopy(cfg)
    bad["event_source_mappings"][0]["BatchSize"] = 0
    bad["event_source_mappings"][0]["FunctionName"] = "missing"
    e.reload(pinned(e, bad))
    wait_until(lambda: "keeping configuration generation 1" in e.log(), 10, "reload refused")
    log = e.log()
    assert "reload rejected: config" in log
    assert "event_source_mappings[0].BatchSize" in log
    assert "event_source_mappings[0].FunctionName" in log
    assert generation(e) == 1
    # Still running the old config.
    aws.send_messages(sqs, q, bodies=["still-here"])
    wait_until(lambda: "still-here" in funchost.payloads(), 15, "old config still delivers")
    samples_text = e.metrics()
    assert 'esmd_config_reloads_total{result="rejected"} 1' in samples_text

    # The same through POST /reload: 400 with every problem.
    code, _, body = http.request("POST", e.admin_url + "/reload", body=b"")
    assert code == 400
    rep = json.loads(body)
    assert rep["applied"] is False and rep["generation"] == 1
    assert any(p.startswith("event_source_mappings[0].BatchSize") for p in rep["problems"])
    assert any(p.startswith("event_source_mappings[0].FunctionName") for p in rep["problems"])
    assert e.alive()


def test_post_reload_adds_removes_and_ignores_restart_only_settings(peers, sqs, funchost, esmd,
                                                                       workdir):
    qa = aws.create_queue(sqs, visibility_timeout=10)
    qb = aws.create_queue(sqs, visibility_timeout=10)
    qc = aws.create_queue(sqs, visibility_timeout=10)
    cfg = base_config(peers, funchost, [qa, qb])
    e = esmd(cfg)
    wait_until(lambda: ready(e), 15, "ready")
    st = by_arn(e)
    uuid_a, uuid_b = st[qa.arn]["UUID"], st[qb.arn]["UUID"]

    new = pinned(e, base_config(peers, funchost, [qa, qc]))  # B removed, C added
    new["state_dir"] = str(workdir / "elsewhere")
    e.write_config(new)
    code, _, body = http.request("POST", e.admin_url + "/reload", body=b"")
    assert code == 200, body
    rep = json.loads(body)
    assert rep["applied"] is True and rep["generation"] == 2
    assert rep["kept"] == [uuid_a]
    assert rep["removed"] == [uuid_b]
    assert rep["restarted"] == []
    assert len(rep["added"]) == 1
    assert any(i.startswith("state_dir: changed from") and "needs a restart, ignored" in i
               for i in rep["ignored"])
    wait_until(lambda: set(by_arn(e)) == {qa.arn, qc.arn}, 15, "B gone, C present")
    wait_until(lambda: ready(e), 15, "ready with C")
    assert f"mapping {uuid_b} (fn) removed" in e.log()
    aws.send_messages(sqs, qc, bodies=["to-c"])
    aws.send_messages(sqs, qb, bodies=["to-b"])
    wait_until(lambda: "to-c" in funchost.payloads(), 15, "C delivers")
    assert "to-b" not in funchost.payloads()
    # The state store stayed where it was.
    assert not (workdir / "elsewhere").exists() or not any((workdir / "elsewhere").iterdir())


def reload_report(e, cfg):
    e.write_config(pinned(e, cfg))
    code, _, body = http.request("POST", e.admin_url + "/reload", body=b"")
    assert code == 200, body
    return json.loads(body)


@pytest.mark.peers("kinesis")
def test_renamed_function_keeps_state_only_with_an_explicit_uuid(peers, kinesis, funchost, esmd):
    """FunctionName is part of a derived UUID: renaming it drops the mapping's checkpoints (the
    reload says so, and the shard is read again); with an explicit UUID the mapping restarts at
    its checkpoint: nothing replayed, nothing skipped."""
    st = aws.create_stream(kinesis, shards=1)
    a = [seq for _, seq, _ in aws.put_records(kinesis, st, n=5, partition_key="k")]
    fn = {"url": funchost.url_lambda("echo"), "protocol": "lambda", "timeout_seconds": 5}
    cfg = {"aws": aws_block(peers), "functions": {"fn": fn, "fn2": fn},
           "event_source_mappings": [{"FunctionName": "fn", "EventSourceArn": st.arn,
                                      "StartingPosition": "TRIM_HORIZON"}]}
    e = esmd(cfg)

    def ids():
        return [i for inv in funchost.invocations() for i in inv["ids"]]

    wait_until(lambda: ids() == a, 20, "the 5 records once")
    wait_until(lambda: by_arn(e)[st.arn]["SourceState"]["Shards"][0]["Checkpoint"] == a[-1], 15,
               "checkpointed")
    old_uuid = by_arn(e)[st.arn]["UUID"]
    renamed = copy.deepcopy(cfg)
    renamed["event_source_mappings"][0]["FunctionName"] = "fn2"
    rep = reload_report(e, renamed)
    assert rep["removed"] == [old_uuid] and len(rep["added"]) == 1
    (warning,) = rep["warnings"]
    assert old_uuid in warning and rep["added"][0] in warning and "explicit \"UUID\"" in warning
    assert "is replaced by" in e.log()
    wait_until(lambda: ids() == a + a, 20, "the new UUID reads the shard again (state dropped)")

    kept = copy.deepcopy(renamed)
    kept["event_source_mappings"][0]["UUID"] = "00000000-0000-4000-8000-0000000000aa"
    reload_report(e, kept)  # a new UUID again: from TRIM_HORIZON once more
    wait_until(lambda: len(ids()) == 15, 20, "read under the explicit UUID")
    wait_until(lambda: by_arn(e)[st.arn]["SourceState"]["Shards"][0]["Checkpoint"] == a[-1], 15,
               "checkpointed under the explicit UUID")
    kept["event_source_mappings"][0]["FunctionName"] = "fn"
    rep = reload_report(e, kept)
    assert rep["restarted"] == ["00000000-0000-4000-8000-0000000000aa"] and rep["warnings"] == []
    b = [seq for _, seq, _ in aws.put_records(kinesis, st, n=2, partition_key="k")]
    wait_until(lambda: len(ids()) == 17, 20, "the 2 new records")
    assert ids()[15:] == b  # nothing of the shard replayed after the rename
