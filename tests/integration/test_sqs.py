"""The SQS source end to end against fauxqs (SQS JSON protocol) and esmd-funchost.

Each test asserts from the function host's invocation log, from captured events, and from the
queue's own state; every wait is a condition with a deadline."""

import base64
import hashlib
import json

import pytest

from helpers import aws, http
from helpers.capture import Capture
from helpers.esmd import aws_block
from helpers.procs import wait_until

PEERS = ("sqs",)


def config(peers, url, arn, timeout=3, **mapping):
    m = {"FunctionName": "fn", "EventSourceArn": arn}
    m.update(mapping)
    return {
        "aws": aws_block(peers),
        "functions": {"fn": {"url": url, "protocol": "lambda" if "/2015-03-31/" in url else "http",
                             "timeout_seconds": timeout, "max_concurrency": 4}},
        "event_source_mappings": [m],
    }


@pytest.fixture
def capture():
    caps = []

    def make(reply=None):
        c = Capture(reply)
        caps.append(c)
        return c

    yield make
    for c in caps:
        c.close()


def queue_empty(sqs, q):
    return aws.queue_counts(sqs, q) == (0, 0, 0)


def test_batches_gather_several_receives_within_the_window(peers, sqs, funchost, esmd):
    q = aws.create_queue(sqs)
    aws.send_messages(sqs, q, n=60)
    esmd(config(peers, funchost.url_lambda("echo"), q.arn, BatchSize=25,
                MaximumBatchingWindowInSeconds=2))
    wait_until(lambda: len(funchost.payloads()) >= 60, 30, "60 messages delivered")
    sizes = [len(inv["ids"]) for inv in funchost.invocations()]
    assert max(sizes) <= 25, sizes
    assert max(sizes) > 10, f"no batch gathered more than one receive: {sizes}"
    assert sorted(funchost.payloads()) == sorted(f"msg-{i}" for i in range(60))
    wait_until(lambda: queue_empty(sqs, q), 15, "every delivered message deleted")


def test_window_zero_invokes_as_soon_as_messages_arrive(peers, sqs, funchost, esmd):
    q = aws.create_queue(sqs)
    esmd(config(peers, funchost.url_lambda("echo"), q.arn, BatchSize=10))
    aws.send_messages(sqs, q, bodies=["only one"])
    inv = funchost.wait_invocations(1, timeout=10)
    assert inv[0]["payloads"] == ["only one"]


def test_event_has_aws_shape_and_bodies_byte_for_byte(peers, sqs, esmd, capture):
    cap = capture()
    q = aws.create_queue(sqs)
    # fauxqs refuses characters above U+FFFD (real SQS accepts them), so the unicode body stays
    # in the BMP.
    bodies = ['{"orderId": 1, "total": 42.5}', "plain text, not JSON", "h\u00e9llo \u2713 \u4e2d\u6587 \"q\" \\",
              "x" * (256 * 1024 - 1), "  leading and trailing spaces  \n\ttabs"]
    for body in bodies:  # one by one: a batch send is limited to 256 KB in total
        aws.send_messages(sqs, q, bodies=[body])
    attrs = {"tenant": {"DataType": "String", "StringValue": "acme"},
             "amount": {"DataType": "Number", "StringValue": "10.5"},
             "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"}}
    aws.send_messages(sqs, q, bodies=["with attributes"], attributes=attrs)
    esmd(config(peers, cap.url, q.arn, BatchSize=10, MaximumBatchingWindowInSeconds=1))
    wait_until(lambda: len(cap.records()) >= 6, 20, "6 records captured")
    by_body = {r["body"]: r for r in cap.records()}
    assert set(by_body) == set(bodies) | {"with attributes"}
    for body in bodies:
        r = by_body[body]
        assert list(r) == ["messageId", "receiptHandle", "body", "attributes", "messageAttributes",
                           "md5OfBody", "eventSource", "eventSourceARN", "awsRegion"], list(r)
        assert r["md5OfBody"] == hashlib.md5(body.encode()).hexdigest()
        assert r["messageAttributes"] == {}
        assert r["eventSource"] == "aws:sqs"
        assert r["eventSourceARN"] == q.arn
        assert r["awsRegion"] == "us-east-1"
        assert list(r["attributes"])[:4] == ["ApproximateReceiveCount", "SentTimestamp", "SenderId",
                                             "ApproximateFirstReceiveTimestamp"]
        assert r["attributes"]["ApproximateReceiveCount"] == "1"
    r = by_body["with attributes"]
    assert "md5OfMessageAttributes" in r
    assert r["messageAttributes"]["tenant"] == {"stringValue": "acme", "stringListValues": [],
                                                "binaryListValues": [], "dataType": "String"}
    assert r["messageAttributes"]["amount"]["dataType"] == "Number"
    assert base64.b64decode(r["messageAttributes"]["blob"]["binaryValue"]) == b"\x00\x01\xff"


def test_partial_batch_response_deletes_only_the_successes(peers, sqs, funchost, esmd):
    q = aws.create_queue(sqs, visibility_timeout=3)
    bodies = [f"ok-{i}" for i in range(8)] + ["POISON-a", "POISON-b"]
    aws.send_messages(sqs, q, bodies=bodies)
    esmd(config(peers, funchost.url_lambda("partial"), q.arn, BatchSize=10,
                MaximumBatchingWindowInSeconds=1, FunctionResponseTypes=["ReportBatchItemFailures"]))
    # The poison messages come back after the visibility timeout; the others never do.
    wait_until(lambda: funchost.payloads().count("POISON-a") >= 2, 20, "POISON-a redelivered")
    delivered = funchost.payloads()
    for i in range(8):
        assert delivered.count(f"ok-{i}") == 1, delivered
    visible, in_flight, _ = aws.queue_counts(sqs, q)
    assert visible + in_flight == 2


@pytest.mark.parametrize("mode", ["garbage", "truncated"])
def test_malformed_partial_response_fails_the_whole_batch(peers, sqs, funchost, esmd, mode):
    q = aws.create_queue(sqs, visibility_timeout=2)
    aws.send_messages(sqs, q, bodies=["a", "b", "c"])
    esmd(config(peers, funchost.url_lambda(mode), q.arn, timeout=1, BatchSize=10,
                MaximumBatchingWindowInSeconds=1, FunctionResponseTypes=["ReportBatchItemFailures"]))
    # Nothing was deleted: every message is delivered again.
    wait_until(lambda: all(funchost.payloads().count(b) >= 2 for b in "abc"), 20,
               "all three messages redelivered")


def test_function_error_redelivers_with_rising_receive_count(peers, sqs, esmd, capture):
    cap = capture(lambda event: (500, b'{"errorMessage":"boom"}'))
    q = aws.create_queue(sqs, visibility_timeout=1)
    aws.send_messages(sqs, q, bodies=["fails"])
    esmd(config(peers, cap.url, q.arn, timeout=1))
    wait_until(lambda: len(cap.records()) >= 3, 20, "three deliveries")
    counts = [int(r["attributes"]["ApproximateReceiveCount"]) for r in cap.records()]
    assert counts[:3] == [1, 2, 3], counts
    assert len({r["messageId"] for r in cap.records()}) == 1


def test_redrive_policy_moves_the_poison_message_to_the_dlq(peers, sqs, funchost, esmd):
    q = aws.create_queue_with_dlq(sqs, max_receive_count=2, visibility_timeout=1)
    aws.send_messages(sqs, q, bodies=["POISON here", "fine"])
    esmd(config(peers, funchost.url_lambda("poison"), q.arn, timeout=1, BatchSize=1))
    dead = aws.drain(sqs, q.dlq, expect=1, timeout=30)
    assert [m["Body"] for m in dead] == ["POISON here"]
    assert funchost.payloads().count("fine") == 1
    assert funchost.payloads().count("POISON here") == 2


def test_fifo_keeps_order_per_group_and_a_failing_group_does_not_block_others(
        peers, sqs, funchost, esmd):
    # As on AWS, a FIFO function reports its failed messages (ReportBatchItemFailures) so the
    # rest of the batch, from other groups, is deleted; esmd also holds back every later
    # message of a failed message's group in that batch, so a group never skips ahead.
    q = aws.create_queue(sqs, fifo=True, visibility_timeout=2)
    a = ["a-POISON-0"] + [f"a-{i}" for i in range(1, 5)]
    b = [f"b-{i}" for i in range(10)]
    aws.send_messages(sqs, q, bodies=a, group_id="A")
    aws.send_messages(sqs, q, bodies=b, group_id="B")
    esmd(config(peers, funchost.url_lambda("partial"), q.arn, timeout=1, BatchSize=10,
                FunctionResponseTypes=["ReportBatchItemFailures"]))

    def succeeded(prefix):
        return [p for inv in funchost.invocations() for p in inv["payloads"]
                if p.startswith(prefix) and "POISON" not in p]
    wait_until(lambda: succeeded("b-") == b, 30, "group B delivered in order")
    wait_until(lambda: funchost.payloads().count("a-POISON-0") >= 2, 20, "group A retried")
    assert succeeded("a-") == [], "group A advanced past its failing message"
    funchost.control("partial", "echo")  # the function is fixed: group A resumes, in order
    wait_until(lambda: [p for inv in funchost.invocations() if inv["mode"] == "echo"
                        for p in inv["payloads"] if p.startswith("a-")] == a, 30,
               "group A delivered in order after the fix")


def test_beyond_aws_retry_limit_sends_a_failure_record_with_the_message(peers, sqs, funchost, esmd):
    # The poison pill comes back after RetryBackoff's 1 s; the queue's visibility timeout stays
    # long enough that "good" is deleted before it could return, even on a loaded machine.
    q = aws.create_queue(sqs, visibility_timeout=20)
    failures = aws.create_queue(sqs, name=q.name + "-failures")
    aws.send_messages(sqs, q, bodies=["POISON pill", "good"])
    esmd(config(peers, funchost.url_lambda("partial"), q.arn, timeout=1, BatchSize=10,
                MaximumBatchingWindowInSeconds=1, FunctionResponseTypes=["ReportBatchItemFailures"],
                MaximumRetryAttempts=1, DestinationConfig={"OnFailure": {"Destination": failures.arn}},
                EsmdOptions={"RetryBackoff": {"BaseSeconds": 1, "MaxSeconds": 1}}))
    got = aws.drain(sqs, failures, expect=1, timeout=30)
    record = json.loads(got[0]["Body"])
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestContext"]["functionArn"].endswith(":function:fn")
    assert record["version"] == "1.0"
    assert record["SQSBatchInfo"]["queueArn"] == q.arn
    assert [r["body"] for r in record["payload"]["Records"]] == ["POISON pill"]
    assert funchost.payloads().count("POISON pill") == 2
    assert funchost.payloads().count("good") == 1
    wait_until(lambda: queue_empty(sqs, q), 15, "the source queue emptied")


def hang_calls(funchost, name):
    """Calls a hanging function received (a hung call is logged only when it ends)."""
    _, _, body = http.get(f"{funchost.base}/_stats/{name}")
    return json.loads(body)["calls"]


def test_function_timeout_counts_toward_retries_and_ends_in_a_failure_record(
        peers, sqs, funchost, esmd):
    # esmd's own timeout (timeout_seconds + 2 s on the lambda protocol) is a function timeout,
    # as on AWS: it uses up MaximumRetryAttempts instead of retrying for ever.
    q = aws.create_queue(sqs, visibility_timeout=2)
    failures = aws.create_queue(sqs, name=q.name + "-failures")
    aws.send_messages(sqs, q, bodies=["sleeps past timeout_seconds"])
    esmd(config(peers, funchost.url_lambda("hang-timeout"), q.arn, timeout=1, BatchSize=1,
                MaximumRetryAttempts=1,
                DestinationConfig={"OnFailure": {"Destination": failures.arn}}))
    got = aws.drain(sqs, failures, expect=1, timeout=45)
    record = json.loads(got[0]["Body"])
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert [r["body"] for r in record["payload"]["Records"]] == ["sleeps past timeout_seconds"]
    assert hang_calls(funchost, "hang-timeout") == 2
    wait_until(lambda: queue_empty(sqs, q), 15, "the source queue emptied")


def test_forbidden_endpoint_is_shown_as_misconfigured_and_never_discards(
        peers, sqs, funchost, esmd):
    # A 403 means esmd's credentials or URL are wrong, not the message: however many receives,
    # no failure record and no deletion; /status, /metrics and one log line say what is wrong.
    q = aws.create_queue(sqs, visibility_timeout=1)
    failures = aws.create_queue(sqs, name=q.name + "-failures")
    aws.send_messages(sqs, q, bodies=["kept"])
    e = esmd(config(peers, funchost.url_http("forbidden-sqs"), q.arn, timeout=1, BatchSize=1,
                    MaximumRetryAttempts=0,
                    DestinationConfig={"OnFailure": {"Destination": failures.arn}}))

    def mapping():
        return e.status()["EventSourceMappings"][0]
    wait_until(lambda: mapping()["Counters"]["misconfigured"] >= 5, 30, "five 403 answers")
    m = mapping()
    assert m["Misconfigured"]["Reason"] == (
        "function endpoint answered 403: esmd is misconfigured (credentials/URL: access denied)")
    assert m["Counters"]["dropped"] == 0 and m["Counters"]["on_failure_queued"] == 0
    assert m["Counters"]["failed_invoke"] == 0 and m["Counters"]["invocations"] == 0
    assert e.metric("esmd_mapping_misconfigured") == 1
    assert e.metric("esmd_invoke_misconfigured_total") >= 5
    assert e.log().count("function endpoint answered 403") == 1  # rate-limited, not per retry
    assert aws.receive(sqs, failures) == []
    # Fixed (here: the endpoint answers again): the message is processed, the state clears.
    funchost.control("forbidden-sqs", "echo")
    wait_until(lambda: [p for inv in funchost.invocations("forbidden-sqs") if inv["mode"] == "echo"
                        for p in inv["payloads"]] == ["kept"], 30, "delivered after the fix")
    wait_until(lambda: mapping()["Misconfigured"] is None, 10, "Misconfigured cleared")
    assert "the function endpoint answers again" in e.log()
    wait_until(lambda: queue_empty(sqs, q), 15, "the source queue emptied")


def test_filter_delivers_matches_and_deletes_the_rest(peers, sqs, funchost, esmd):
    q = aws.create_queue(sqs)
    bodies = [json.dumps({"kind": "order", "n": 1}), json.dumps({"kind": "refund", "n": 2}),
              "plain text", json.dumps({"kind": "order", "n": 3})]
    aws.send_messages(sqs, q, bodies=bodies)
    e = esmd(config(peers, funchost.url_lambda("echo"), q.arn, BatchSize=10,
                    MaximumBatchingWindowInSeconds=1,
                    FilterCriteria={"Filters": [{"Pattern": json.dumps({"body": {"kind": ["order"]}})}]}))
    wait_until(lambda: len(funchost.payloads()) >= 2, 20, "the two orders delivered")
    wait_until(lambda: queue_empty(sqs, q), 15, "non-matching messages deleted")
    assert sorted(funchost.payloads()) == sorted([bodies[0], bodies[3]])
    counters = e.status()["EventSourceMappings"][0]["Counters"]
    assert counters["filtered_out"] == 2
    assert counters["polled"] == 4


def test_throttles_are_retried_within_the_visibility_window(peers, sqs, funchost, esmd):
    q = aws.create_queue(sqs, visibility_timeout=30)
    funchost.control("echo", "throttle", count=2)
    e = esmd(config(peers, funchost.url_lambda("echo"), q.arn, timeout=2))
    aws.send_messages(sqs, q, bodies=["throttled twice"])
    wait_until(lambda: any(inv["result"] == "ok" for inv in funchost.invocations()), 20,
               "a successful invocation after the throttles")
    results = [inv["result"] for inv in funchost.invocations()]
    assert results == ["throttle", "throttle", "ok"], results
    wait_until(lambda: queue_empty(sqs, q), 10, "the message deleted")
    assert e.status()["EventSourceMappings"][0]["Counters"]["throttled"] == 2


def test_function_timeout_above_the_visibility_timeout_is_refused(peers, sqs, funchost, esmd):
    q = aws.create_queue(sqs, visibility_timeout=5)
    e = esmd(config(peers, funchost.url_lambda("echo"), q.arn, timeout=10), ready=False)
    e.wait_ready(path="/healthz")
    wait_until(lambda: e.status()["EventSourceMappings"][0]["SourceState"]["LastError"], 10,
               "the mapping to report its problem")
    state = e.status()["EventSourceMappings"][0]["SourceState"]
    assert state["LastError"] == ("Queue visibility timeout: 5 seconds is less than Function "
                                  "timeout: 10 seconds")
    assert state["State"] == "Disabled"


def test_sigterm_finishes_the_batch_in_flight_and_exits_zero(peers, sqs, funchost, esmd):
    q = aws.create_queue(sqs, visibility_timeout=30)
    funchost.control("echo", "slow", ms=1500)
    e = esmd(config(peers, funchost.url_lambda("echo"), q.arn, timeout=5))
    aws.send_messages(sqs, q, bodies=["in flight at shutdown"])
    wait_until(lambda: aws.queue_counts(sqs, q)[1] == 1, 10, "the message in flight")
    assert e.stop() == 0
    assert funchost.payloads() == ["in flight at shutdown"]
    assert aws.queue_counts(sqs, q) == (0, 0, 0), "the finished batch was deleted before exit"


def test_retry_backoff_brings_failed_messages_back_before_the_visibility_timeout(
        peers, sqs, funchost, esmd):
    # esmd extension: with EsmdOptions.RetryBackoff a failed message reappears after 1 s, 2 s,
    # ... instead of the queue's 60 s visibility timeout.
    q = aws.create_queue(sqs, visibility_timeout=60)
    aws.send_messages(sqs, q, bodies=["fails"])
    esmd(config(peers, funchost.url_lambda("fail"), q.arn, timeout=2,
                EsmdOptions={"RetryBackoff": {"BaseSeconds": 1, "MaxSeconds": 2}}))
    wait_until(lambda: len(funchost.invocations()) >= 3, 30,
               "two redeliveries long before the 60 s visibility timeout")
