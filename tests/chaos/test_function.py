"""Scenario 3: the function misbehaves. A Kinesis shard (ordered, so retries are visible) with
5 records, MaximumRetryAttempts 1 and a file destination; the function misbehaves on its next
2 calls, then works. docs/design.md decides per kind:
  - counted (a function error: the function ran and failed): 2 failures exhaust 1 retry, so the
    batch goes to the destination as one failure record (5 records, invoke count 2) and the
    shard moves on;
  - not counted (a throttle or an invocation error: the function did not run): no attempt is
    used, the 3rd call delivers the batch, nothing goes to the destination.
Kinds: hang past the timeout (a function timeout, counted on both protocols), 429 (both
protocols), 403 (esmd misconfigured: not counted, both protocols), 500 (lambda: not counted;
http: counted), 503 over http (a throttle), connection refused, connection reset, a short body, a non-HTTP answer,
garbage / truncated RBIF responses (counted), a 7 MB response (counted). Plus a 429 storm with
MaximumRetryAttempts 0: no attempt used, and Retry-After honoured between calls."""

import json
import os

import pytest

from badhost import BadHost
from helpers import aws, http
from helpers.esmd import aws_block
from helpers.funchost import funchost_bin
from helpers.procs import Proc, free_port, wait_until

N = 5
BAD = 2
RBIF = ["ReportBatchItemFailures"]


def start(peers, kinesis, esmd, workdir, url, protocol, timeout=1, retries=1, rbif=False,
          backoff=(0, 0)):
    st = aws.create_stream(kinesis, shards=1)
    data = [f"f-{i}" for i in range(N)]
    seqs = [s for _, s, _ in aws.put_records(kinesis, st, records=[("k", d) for d in data])]
    out = os.path.join(str(workdir), "failures.jsonl")
    m = {"FunctionName": "fn", "EventSourceArn": st.arn, "StartingPosition": "TRIM_HORIZON",
         "BatchSize": N, "MaximumRetryAttempts": retries,
         "DestinationConfig": {"OnFailure": {"Destination": "file://" + out}},
         "EsmdOptions": {"RetryBackoff": {"BaseSeconds": backoff[0], "MaxSeconds": backoff[1]}}}
    if rbif:
        m["FunctionResponseTypes"] = RBIF
    e = esmd({"aws": aws_block(peers),
              "functions": {"fn": {"url": url, "protocol": protocol, "timeout_seconds": timeout}},
              "event_source_mappings": [m]})
    return e, st, seqs, data, out


def counters(e):
    return e.status()["EventSourceMappings"][0]["Counters"]


def checkpoint(e):
    return e.status()["EventSourceMappings"][0]["SourceState"]["Shards"][0].get("Checkpoint")


def read_failures(out):
    if not os.path.exists(out):
        return []
    return [json.loads(x) for x in open(out).read().splitlines() if x.strip()]


def expect_counted(e, seqs, out):
    frs = wait_until(lambda: read_failures(out) or None, 60, "a failure record")
    wait_until(lambda: checkpoint(e) == seqs[-1], 20, "the checkpoint past the failed batch")
    assert len(frs) == 1, frs
    fr = frs[0]
    assert fr["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert fr["requestContext"]["approximateInvokeCount"] == BAD
    info = fr["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (seqs[0], seqs[-1], N)
    assert counters(e)["on_failure_queued"] >= 1


def expect_not_counted(e, seqs, out, delivered):
    wait_until(lambda: sorted(delivered()) == [f"f-{i}" for i in range(N)], 60,
               "the batch delivered once the function works")
    wait_until(lambda: checkpoint(e) == seqs[-1], 20, "the checkpoint at the last record")
    assert counters(e)["on_failure_queued"] == 0
    assert read_failures(out) == []


def ok_payloads(funchost):
    return [p for inv in funchost.invocations() if inv["result"] in ("ok", "echo")
            for p in inv["payloads"]]


FUNCHOST_CASES = [
    # (mode, protocol, counted, rbif, timeout)
    ("hang", "http", True, False, 1),
    ("hang", "lambda", True, False, 1),
    ("forbidden", "lambda", False, False, 3),
    ("forbidden", "http", False, False, 3),
    ("throttle", "lambda", False, False, 3),
    ("throttle", "http", False, False, 3),
    ("error500", "lambda", False, False, 3),
    ("error500", "http", True, False, 3),
    ("unavailable", "http", False, False, 3),
    ("garbage", "lambda", True, True, 3),
    ("truncated", "http", True, True, 3),
    ("oversized", "lambda", True, False, 3),
]


@pytest.mark.peers("kinesis")
@pytest.mark.parametrize("mode,protocol,counted,rbif,timeout", FUNCHOST_CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in FUNCHOST_CASES])
def test_function_misbehaves(peers, kinesis, funchost, esmd, workdir, mode, protocol, counted, rbif,
                             timeout):
    funchost.control("fn", mode, count=BAD, retry_after=0)
    url = funchost.url_lambda("fn") if protocol == "lambda" else funchost.url_http("fn")
    e, _, seqs, _, out = start(peers, kinesis, esmd, workdir, url, protocol, timeout=timeout, rbif=rbif)
    if counted:
        expect_counted(e, seqs, out)
        assert ok_payloads(funchost) == []
    else:
        expect_not_counted(e, seqs, out, lambda: ok_payloads(funchost))
    # Calls the host received (a hanging call is logged only when it ends, so count calls).
    status, _, body = http.get(f"{funchost.base}/_stats/fn")
    assert json.loads(body)["calls"] == (BAD if counted else BAD + 1), body
    assert e.alive()


WIRE_CASES = ["reset", "short", "nonsense"]


@pytest.mark.peers("kinesis")
@pytest.mark.parametrize("mode", WIRE_CASES)
def test_function_breaks_the_wire(peers, kinesis, esmd, workdir, mode):
    host = BadHost(mode, BAD)
    try:
        e, _, seqs, _, out = start(peers, kinesis, esmd, workdir, host.url, "http", timeout=3)
        expect_not_counted(e, seqs, out, host.delivered)
        assert [m for _, m, _ in host.calls()] == [mode] * BAD + ["ok"]
        assert e.alive()
    finally:
        host.close()


@pytest.mark.peers("kinesis")
def test_connection_refused_until_the_host_starts(peers, kinesis, esmd, workdir):
    port = free_port()
    url = f"http://127.0.0.1:{port}/function/fn"
    e, _, seqs, _, out = start(peers, kinesis, esmd, workdir, url, "http", timeout=3, retries=0)
    wait_until(lambda: e.log().lower().count("refused") >= 2, 30, "two refused connections logged")
    log = os.path.join(str(workdir), "late.jsonl")
    host = Proc([funchost_bin(), "--listen", f"127.0.0.1:{port}", "--log", log],
                os.path.join(str(workdir), "late.out"))
    try:
        def delivered():
            if not os.path.exists(log):
                return []
            return [p for line in open(log).read().splitlines() if line.endswith("}")
                    for p in json.loads(line)["payloads"]]

        expect_not_counted(e, seqs, out, delivered)
    finally:
        host.stop()


@pytest.mark.peers("kinesis")
def test_throttle_storm_uses_no_attempts_and_backs_off(peers, kinesis, funchost, esmd, workdir):
    storm = 4
    funchost.control("fn", "throttle", count=storm, retry_after=1)
    e, _, seqs, _, out = start(peers, kinesis, esmd, workdir, funchost.url_lambda("fn"), "lambda",
                               timeout=3, retries=0)
    expect_not_counted(e, seqs, out, lambda: ok_payloads(funchost))
    invs = funchost.invocations()
    assert [i["result"] for i in invs] == ["throttle"] * storm + ["ok"], [i["result"] for i in invs]
    gaps = [b["t"] - a["t"] for a, b in zip(invs, invs[1:])]
    # Retry-After: 1 is a lower bound for every wait (a few ms of clock granularity allowed).
    assert min(gaps) >= 990, gaps
    assert counters(e)["throttled"] == storm
