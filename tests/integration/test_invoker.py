"""esm_invoker against esmd-funchost on loopback, through tests/tools/invoke_cli.

Both function protocols: success, function error, partial (RBIF), throttle with Retry-After,
500, timeouts, connection refused, garbage/truncated/oversized responses, max_concurrency and
the 6 MB request cap. invoke_cli prints one JSON line per result; funchost logs one JSON line
per invocation it served. No peers are needed.
"""

import json
import os
import subprocess

import pytest

from helpers import http
from helpers.procs import REPO, free_port

PEERS = ()

MARK = "POISON"
SQS_EVENT = {"Records": [
    {"messageId": "m-1", "body": "fine"},
    {"messageId": "m-2", "body": f"this one is {MARK}"},
    {"messageId": "m-3", "body": "fine too"},
]}
KAFKA_EVENT = {"eventSource": "SelfManagedKafka", "records": {
    "orders-0": [{"topic": "orders", "partition": 0, "offset": 10, "value": "b2s="},        # ok
                 {"topic": "orders", "partition": 0, "offset": 11, "value": "UE9JU09O"}],   # POISON
    "orders-1": [{"topic": "orders", "partition": 1, "offset": 5, "value": "UE9JU09OIQ=="}],  # POISON!
}}
KAFKA_IDS = "orders-0:10,orders-0:11,orders-1:5"


def cli_bin():
    path = os.environ.get("INVOKE_CLI_BIN", os.path.join(REPO, "build", "invoke_cli"))
    if not os.path.exists(path):
        pytest.fail(f"{path} not found: build the invoke_cli target or set INVOKE_CLI_BIN")
    return path


def invoke(url, protocol="lambda", payload=None, timeout_s=None, count=1, max_concurrency=None,
           headers=(), rbif=None, rbif_kafka=False, payload_size=None, sign=None, env=None,
           deadline=60):
    """Runs invoke_cli; returns (results by index, summary)."""
    argv = [cli_bin(), "--url", url, "--protocol", protocol, "--count", str(count)]
    if payload is not None:
        argv += ["--payload", payload if isinstance(payload, str) else json.dumps(payload)]
    if payload_size is not None:
        argv += ["--payload-size", str(payload_size)]
    if timeout_s is not None:
        argv += ["--timeout", str(timeout_s)]
    if max_concurrency is not None:
        argv += ["--max-concurrency", str(max_concurrency)]
    for h in headers:
        argv += ["--header", h]
    if rbif is not None:
        argv += ["--rbif", rbif]
    if rbif_kafka:
        argv += ["--rbif-kafka"]
    if sign:
        argv += ["--sign", sign]
    full_env = dict(os.environ)
    full_env.update(env or {})
    r = subprocess.run(argv, capture_output=True, text=True, timeout=deadline, env=full_env,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"invoke_cli rc {r.returncode}: {r.stderr}"
    lines = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    summary = lines[-1]
    assert summary.get("summary"), r.stdout
    return {x["i"]: x for x in lines[:-1]}, summary


def one(url, **kw):
    results, summary = invoke(url, **kw)
    assert summary["done"] == 1, summary
    return results[0]


# ------------------------------------------------------------------ success


def test_lambda_success(funchost):
    r = one(funchost.url_lambda("echo"), payload=SQS_EVENT)
    assert r["class"] == "success" and r["status"] == 200
    assert r["body"] == "null"
    assert r["executed_version"] == "$LATEST"
    assert len(r["request_id"]) == 36 and r["reason"] == ""
    (inv,) = funchost.wait_invocations(1, "echo")
    assert inv["proto"] == "lambda"
    assert inv["ids"] == ["m-1", "m-2", "m-3"]
    assert inv["payloads"] == ["fine", f"this one is {MARK}", "fine too"]
    assert inv["headers"]["x-amz-invocation-type"] == "RequestResponse"
    assert inv["headers"]["content-type"] == "application/json"
    assert "expect" not in inv["headers"]
    assert "authorization" not in inv["headers"]  # no credentials: unsigned


def test_http_success_with_configured_headers(funchost):
    r = one(funchost.url_http("echo"), protocol="http", payload=SQS_EVENT,
            headers=["X-Test-Token: abc 123", "Content-Type: application/vnd.test+json"])
    assert r["class"] == "success" and r["status"] == 200 and r["body"] == "{}"
    (inv,) = funchost.wait_invocations(1, "echo")
    assert inv["proto"] == "http"
    assert inv["headers"]["x-test-token"] == "abc 123"
    assert inv["headers"]["content-type"] == "application/vnd.test+json"  # configured wins
    assert "x-amz-invocation-type" not in inv["headers"]


def test_lambda_sigv4_with_session_token(funchost):
    env = {"AWS_ACCESS_KEY_ID": "AKIDINVOKERTEST", "AWS_SECRET_ACCESS_KEY": "s3cr3t",
           "AWS_SESSION_TOKEN": "tok-123"}
    r = one(funchost.url_lambda("echo"), payload=SQS_EVENT, sign="eu-west-1", env=env)
    assert r["class"] == "success"
    (inv,) = funchost.wait_invocations(1, "echo")
    auth = inv["headers"]["authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDINVOKERTEST/")
    assert "/eu-west-1/lambda/aws4_request" in auth
    assert "x-amz-security-token" in auth  # the token header is signed
    assert inv["headers"]["x-amz-security-token"] == "tok-123"
    assert inv["headers"]["x-amz-date"]


# ------------------------------------------------------------------ function errors


def test_lambda_function_error(funchost):
    r = one(funchost.url_lambda("poison"), payload=SQS_EVENT)
    assert r["class"] == "function_error" and r["status"] == 200
    assert r["function_error"] == "Unhandled"
    assert json.loads(r["body"])["errorMessage"] == "m-2"
    assert funchost.wait_invocations(1, "poison")[0]["result"] == "error"


def test_http_function_error(funchost):
    r = one(funchost.url_http("poison"), protocol="http", payload=SQS_EVENT)
    assert r["class"] == "function_error" and r["status"] == 500
    assert r["function_error"] == "Unhandled" and r["reason"] == "HTTP 500"


def test_poison_without_marker_succeeds(funchost):
    clean = {"Records": [{"messageId": "a", "body": "x"}]}
    assert one(funchost.url_lambda("poison"), payload=clean)["class"] == "success"
    assert one(funchost.url_http("poison"), protocol="http", payload=clean)["class"] == "success"


@pytest.mark.parametrize("protocol", ["lambda", "http"])
def test_partial_batch_response(funchost, protocol):
    url = funchost.url_lambda("partial") if protocol == "lambda" else funchost.url_http("partial")
    r = one(url, protocol=protocol, payload=SQS_EVENT, rbif="m-1,m-2,m-3")
    assert r["class"] == "success"
    assert json.loads(r["body"]) == {"batchItemFailures": [{"itemIdentifier": "m-2"}]}
    assert r["rbif"] == "partial" and r["rbif_failed"] == [1]


def test_kafka_partial_batch_response(funchost):
    r = one(funchost.url_http("partial"), protocol="http", payload=KAFKA_EVENT, rbif=KAFKA_IDS,
            rbif_kafka=True)
    assert r["class"] == "success"
    assert r["rbif"] == "partial" and r["rbif_failed"] == [1, 2]
    (inv,) = funchost.wait_invocations(1, "partial")
    assert inv["ids"] == ["orders-0:10", "orders-0:11", "orders-1:5"]
    assert inv["payloads"] == ["ok", MARK, MARK + "!"]


def test_kinesis_event_payloads_are_decoded(funchost):
    event = {"Records": [{"kinesis": {"sequenceNumber": "4959", "data": "UE9JU09O"}},
                         {"kinesis": {"sequenceNumber": "4960", "data": "b2s="}}]}
    r = one(funchost.url_lambda("partial"), payload=event, rbif="4959,4960")
    assert r["rbif"] == "partial" and r["rbif_failed"] == [0]


@pytest.mark.parametrize("mode,why", [("garbage", "not valid JSON"), ("truncated", "not valid JSON")])
def test_malformed_responses_fail_rbif(funchost, mode, why):
    r = one(funchost.url_lambda(mode), payload=SQS_EVENT, rbif="m-1,m-2,m-3")
    assert r["class"] == "success"  # the invoke itself worked ...
    assert r["rbif"] == "invalid" and why in r["rbif_why"]  # ... the whole batch failed


@pytest.mark.parametrize("protocol", ["lambda", "http"])
def test_oversized_response_is_function_error(funchost, protocol):
    url = funchost.url_lambda("oversized") if protocol == "lambda" else funchost.url_http("oversized")
    r = one(url, protocol=protocol, payload=SQS_EVENT)
    assert r["class"] == "function_error" and r["function_error"] == "Unhandled"
    assert "response larger than 6291456 bytes" in r["reason"]


# ------------------------------------------------------------------ throttles and errors


def test_throttle_with_retry_after_then_success(funchost):
    funchost.control("busy", "throttle", count=2, retry_after=1)
    results, summary = invoke(funchost.url_lambda("busy"), payload=SQS_EVENT, count=3,
                              max_concurrency=1)
    assert summary["done"] == 3
    classes = [results[i]["class"] for i in range(3)]
    assert classes == ["throttle", "throttle", "success"]  # FIFO with max_concurrency 1
    assert results[0]["status"] == 429 and results[0]["retry_after_ms"] == 1000
    assert results[1]["retry_after_ms"] == 1000
    assert results[2]["retry_after_ms"] == -1
    assert [i["result"] for i in funchost.invocations("busy")] == ["throttle", "throttle", "ok"]


@pytest.mark.parametrize("protocol", ["lambda", "http"])
def test_throttle_without_retry_after(funchost, protocol):
    url = funchost.url_lambda("throttle") if protocol == "lambda" else funchost.url_http("throttle")
    r = one(url, protocol=protocol, payload=SQS_EVENT)
    assert r["class"] == "throttle" and r["retry_after_ms"] == -1


def test_503(funchost):
    r = one(funchost.url_http("unavailable"), protocol="http", payload=SQS_EVENT)
    assert r["class"] == "throttle" and r["status"] == 503
    r = one(funchost.url_lambda("unavailable"), payload=SQS_EVENT)
    assert r["class"] == "error" and r["status"] == 503


def test_404(funchost):
    r = one(funchost.base + "/function-nowhere", protocol="http", payload=SQS_EVENT)
    assert r["class"] == "error" and r["status"] == 404 and r["misconfigured"] is True
    assert r["reason"] == "function endpoint answered 404: esmd is misconfigured (URL: no such function)"
    r = one(funchost.base + "/nowhere/invocations", protocol="lambda", payload=SQS_EVENT)
    assert r["class"] == "error" and r["status"] == 404 and r["misconfigured"] is True


@pytest.mark.parametrize("protocol", ["lambda", "http"])
def test_forbidden_is_misconfiguration(funchost, protocol):
    url = funchost.url_lambda("forbidden") if protocol == "lambda" else funchost.url_http("forbidden")
    r = one(url, protocol=protocol, payload=SQS_EVENT)
    assert r["class"] == "error" and r["status"] == 403 and r["misconfigured"] is True
    assert r["function_error"] == ""
    assert r["reason"].startswith("function endpoint answered 403: esmd is misconfigured")


def test_500(funchost):
    r = one(funchost.url_lambda("error500"), payload=SQS_EVENT)
    assert r["class"] == "error" and r["status"] == 500 and r["reason"] == "HTTP 500"
    r = one(funchost.url_http("error500"), protocol="http", payload=SQS_EVENT)
    assert r["class"] == "function_error" and r["status"] == 500


def test_http_timeout_is_function_error(funchost):
    r = one(funchost.url_http("slow") + "?ms=5000", protocol="http", payload=SQS_EVENT,
            timeout_s=1)
    assert r["class"] == "function_error" and r["function_error"] == "Unhandled"
    assert r["reason"] == "timeout after 1000 ms: the function did not answer (function timeout)"


def test_lambda_timeout_is_function_error(funchost):
    r = one(funchost.url_lambda("hang"), payload=SQS_EVENT, timeout_s=1)
    assert r["class"] == "function_error" and r["status"] == 0
    assert r["function_error"] == "Unhandled" and r["misconfigured"] is False
    # timeout_seconds + 2 s margin
    assert r["reason"] == "timeout after 3000 ms: the function did not answer (function timeout)"


def test_connection_refused(funchost):
    port = free_port()
    for protocol in ("lambda", "http"):
        r = one(f"http://127.0.0.1:{port}/2015-03-31/functions/x/invocations", protocol=protocol,
                payload=SQS_EVENT)
        assert r["class"] == "error" and r["status"] == 0 and r["misconfigured"] is False
        assert r["reason"].startswith("transport error")


# ------------------------------------------------------------------ concurrency and limits


@pytest.mark.parametrize("protocol", ["lambda", "http"])
def test_max_concurrency_respected(funchost, protocol):
    name = f"slow-{protocol}"
    url = funchost.url_lambda(name) if protocol == "lambda" else funchost.url_http(name)
    results, summary = invoke(url + "?ms=200", protocol=protocol, payload=SQS_EVENT, count=8,
                              max_concurrency=2)
    assert summary["done"] == 8
    assert all(r["class"] == "success" for r in results.values())
    assert summary["max_in_flight"] == 2 and summary["max_queued"] == 6
    invs = funchost.wait_invocations(8, name)
    assert max(i["concurrent"] for i in invs) == 2  # the host never saw more than 2 at once
    _, _, body = http.get(f"{funchost.base}/_stats/{name}")
    assert json.loads(body)["max_in_flight"] == 2


def test_payload_cap_6mb(funchost):
    results, summary = invoke(funchost.url_http("echo"), protocol="http", payload_size=6291456)
    assert summary["done"] == 1 and summary["refused"] == 0
    assert results[0]["class"] == "success"
    (inv,) = funchost.wait_invocations(1, "echo")
    assert inv["ids"] == ["big-1"] and len(inv["payloads"][0]) > 6_000_000

    results, summary = invoke(funchost.url_http("echo2"), protocol="http", payload_size=6291457)
    assert summary["refused"] == 1 and summary["done"] == 0
    assert results[0]["refused"] is True
    assert funchost.invocations("echo2") == []
