"""The admin HTTP endpoints of a running esmd (SQS mapping against fauxqs): /healthz, /readyz,
/status, /metrics, and a stuck lane showing up (an always-failing function, a failing FIFO
message group) with EsmdOptions.StuckLaneSeconds=2. Every wait is a condition with a
deadline."""

import json
import re

from helpers import aws, http
from helpers.esmd import aws_block
from helpers.procs import wait_until

PEERS = ("sqs",)


def config(peers, url, arn, timeout=1, **mapping):
    m = {"FunctionName": "fn", "EventSourceArn": arn}
    m.update(mapping)
    return {
        "aws": aws_block(peers),
        "functions": {"fn": {"url": url, "protocol": "lambda", "timeout_seconds": timeout,
                             "max_concurrency": 2}},
        "event_source_mappings": [m],
    }


# ---- a strict reader of the Prometheus text format (0.0.4) -----------------------------------

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*"'
SAMPLE = re.compile(rf"^({NAME})(?:\{{({LABEL}(?:,{LABEL})*)?\}})? (\S+)$")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"')


def parse_metrics(text):
    """-> (types {family: type}, samples [(name, {labels}, value)]); asserts the format:
    HELP then TYPE once per family, a family's samples together and after its TYPE, counter
    families end in _total, histogram series are _bucket/_sum/_count with a final +Inf."""
    assert text.endswith("\n")
    types, samples, helps = {}, [], set()
    current, done = None, set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            fam = line.split(" ", 3)[2]
            assert fam not in helps, f"HELP twice for {fam}"
            helps.add(fam)
            continue
        if line.startswith("# TYPE "):
            _, _, fam, typ = line.split(" ")
            assert fam in helps, f"TYPE before HELP for {fam}"
            assert fam not in types, f"TYPE twice for {fam}"
            assert typ in ("counter", "gauge", "histogram"), line
            if typ == "counter":
                assert fam.endswith("_total"), fam
            if current:
                done.add(current)
            types[fam], current = typ, fam
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, labels_text, value = m.groups()
        fam = name
        if types.get(current) == "histogram":
            assert name in (current + "_bucket", current + "_sum", current + "_count"), line
            fam = current
        assert fam == current and fam not in done, f"sample {name} outside its family block"
        labels = {k: v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
                  for k, v in LABEL_RE.findall(labels_text or "")}
        samples.append((name, labels, float(value)))
    return types, samples


def value(samples, name, **labels):
    vals = [v for n, l, v in samples if n == name and all(l.get(k) == w for k, w in labels.items())]
    assert len(vals) == 1, f"{name} {labels}: {len(vals)} samples"
    return vals[0]


def mapping_status(e, index=0):
    return e.status()["EventSourceMappings"][index]


def readyz(e):
    code, _, body = http.get(e.admin_url + "/readyz")
    return code, body.decode()


# ---- tests -----------------------------------------------------------------------------------

def test_endpoints_status_and_metrics(peers, sqs, funchost, esmd):
    q = aws.create_queue(sqs, visibility_timeout=5)
    e = esmd(config(peers, funchost.url_lambda("echo"), q.arn, BatchSize=5))
    wait_until(lambda: readyz(e)[0] == 200, 15, "/readyz 200 once the queue is reached")
    assert http.get(e.admin_url + "/healthz")[0] == 200
    st = mapping_status(e)
    assert st["State"] == "Enabled"
    assert st["LastProcessingResult"] == "No records processed"
    assert st["FunctionName"] == "fn" and st["EventSourceArn"] == q.arn and st["Source"] == "sqs"
    assert st["Ready"] is True and st["Stuck"] is False and st["BlockedSince"] is None

    aws.send_messages(sqs, q, n=12)
    wait_until(lambda: len(funchost.payloads()) >= 12, 20, "12 messages invoked")
    wait_until(lambda: mapping_status(e)["Counters"]["deleted"] >= 12, 10, "12 deleted")
    st = mapping_status(e)
    assert st["LastProcessingResult"] == "OK"
    assert st["LastInvokeOk"] is not None
    assert st["Misconfigured"] is None and st["Counters"]["misconfigured"] == 0
    uuid = st["UUID"]

    code, headers, body = http.get(e.admin_url + "/metrics")
    assert code == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    types, samples = parse_metrics(body.decode())
    lab = {"mapping": uuid, "function": "fn", "source": "sqs"}
    for name in ("esmd_polled_events_total", "esmd_filtered_out_events_total",
                 "esmd_invoked_events_total", "esmd_failed_invoke_events_total",
                 "esmd_dropped_events_total", "esmd_on_failure_queued_events_total",
                 "esmd_deleted_events_total", "esmd_committed_events_total",
                 "esmd_checkpoint_write_failures_total", "esmd_bisect_splits_total",
                 "esmd_invocations_total", "esmd_throttles_total",
                 "esmd_invoke_misconfigured_total"):
        assert types[name] == "counter", name
        value(samples, name, **lab)
    assert value(samples, "esmd_polled_events_total", **lab) >= 12
    assert value(samples, "esmd_invoked_events_total", **lab) >= 12
    assert value(samples, "esmd_deleted_events_total", **lab) >= 12
    assert value(samples, "esmd_failed_invoke_events_total", **lab) == 0
    invocations = value(samples, "esmd_invocations_total", **lab)
    assert invocations >= 3  # BatchSize 5, 12 messages
    # Histograms: count equals the number of invocation attempts; +Inf bucket = count.
    assert types["esmd_invoke_duration_seconds"] == "histogram"
    assert types["esmd_invoke_batch_records"] == "histogram"
    count = value(samples, "esmd_invoke_duration_seconds_count", **lab)
    assert count == invocations
    assert value(samples, "esmd_invoke_duration_seconds_bucket", le="+Inf", **lab) == count
    batch_sum = value(samples, "esmd_invoke_batch_records_sum", **lab)
    assert batch_sum == value(samples, "esmd_invoked_events_total", **lab)
    assert value(samples, "esmd_invoke_batch_records_bucket", le="5", **lab) == \
        value(samples, "esmd_invoke_batch_records_count", **lab)  # no batch above 5
    buckets = [v for n, l, v in samples
               if n == "esmd_invoke_duration_seconds_bucket" and l["mapping"] == uuid]
    assert buckets == sorted(buckets), "buckets are cumulative"
    assert value(samples, "esmd_mapping_ready", **lab) == 1
    assert value(samples, "esmd_mapping_stuck", **lab) == 0
    assert value(samples, "esmd_mapping_misconfigured", **lab) == 0
    assert value(samples, "esmd_mapping_info", state="Enabled", **lab) == 1
    assert types["esmd_outbox_depth"] == "gauge"
    assert value(samples, "esmd_outbox_depth") == 0
    assert value(samples, "esmd_config_generation") == 1

    assert http.get(e.admin_url + "/nope")[0] == 404
    assert http.request("POST", e.admin_url + "/metrics", body=b"")[0] == 405


def test_readyz_not_ready_until_the_queue_exists(peers, sqs, funchost, esmd):
    name = aws.unique("later")
    e = esmd(config(peers, funchost.url_lambda("echo"), aws.sqs_arn(name)))
    code, text = readyz(e)
    assert code == 503
    assert "has not reached its source" in text
    assert mapping_status(e)["State"] == "Creating"
    assert http.get(e.admin_url + "/healthz")[0] == 200
    sqs.create_queue(QueueName=name)
    wait_until(lambda: readyz(e)[0] == 200, 30, "/readyz 200 after the queue appears")


def test_always_failing_function_makes_the_mapping_stuck(peers, sqs, funchost, esmd):
    q = aws.create_queue(sqs, visibility_timeout=1)
    e = esmd(config(peers, funchost.url_lambda("fail"), q.arn, BatchSize=1,
                    EsmdOptions={"StuckLaneSeconds": 2}))
    wait_until(lambda: readyz(e)[0] == 200, 15, "/readyz 200 before anything fails")
    aws.send_messages(sqs, q, bodies=["doomed"])
    wait_until(lambda: len(funchost.invocations()) >= 1, 10, "first failing invocation")

    def degraded():
        code, text = readyz(e)
        return code == 503 and "degraded" in text and text
    text = wait_until(degraded, 20, "/readyz 503 degraded")
    assert "StuckLaneSeconds 2" in text
    st = mapping_status(e)
    assert st["Stuck"] is True
    assert st["BlockedSince"] is not None and st["BlockedSeconds"] > 2
    assert st["LastProcessingResult"].startswith("PROBLEM")
    assert st["SourceState"]["FailingSince"] is not None
    assert st["SourceState"]["FailingError"]
    _, samples = parse_metrics(e.metrics())
    lab = {"mapping": st["UUID"]}
    assert value(samples, "esmd_mapping_stuck", **lab) == 1
    assert value(samples, "esmd_mapping_blocked_seconds", **lab) > 2
    assert value(samples, "esmd_failed_invoke_events_total", **lab) >= 2

    # The function recovers: the next invocation succeeds and the mapping is ready again.
    funchost.control("fail", "echo")
    wait_until(lambda: readyz(e)[0] == 200, 20, "/readyz 200 after a success")
    assert mapping_status(e)["Stuck"] is False
    assert mapping_status(e)["LastProcessingResult"] == "OK"


def test_failing_fifo_group_is_a_blocked_lane(peers, sqs, funchost, esmd):
    q = aws.create_queue(sqs, fifo=True, visibility_timeout=1)
    e = esmd(config(peers, funchost.url_lambda("partial"), q.arn, BatchSize=10,
                    FunctionResponseTypes=["ReportBatchItemFailures"],
                    EsmdOptions={"StuckLaneSeconds": 2}))
    wait_until(lambda: readyz(e)[0] == 200, 15, "/readyz 200")
    aws.send_messages(sqs, q, bodies=["POISON in group bad"], group_id="bad")

    def good_flow():
        # The other group keeps succeeding, so the mapping as a whole is not failing.
        aws.send_messages(sqs, q, bodies=["fine"], group_id="good")
        code, text = readyz(e)
        return code == 503 and "degraded" in text
    wait_until(good_flow, 25, "/readyz degraded by the failing group", interval=0.5)
    st = mapping_status(e)
    groups = st["SourceState"]["BlockedGroups"]
    assert [g["MessageGroupId"] for g in groups] == ["bad"]
    assert groups[0]["BlockedSince"] is not None
    assert st["Stuck"] is True
    assert any("fine" in p for p in funchost.payloads())
