"""On-failure destinations: the outbox drainer against real peers.

Driven through tests/tools/outbox_driver.c (esmd-outbox-driver): rows are written to a real
store, the driver drains them to SQS / SNS (fauxqs), Kafka (Apache Kafka), a local HTTP server
and a file. Plus: a destination that is down keeps its rows and gets them when it is back; a
kill -9 mid-drain loses nothing. And through esmd itself: a record its destination refuses for
good is parked and re-driven; an SQS message that comes back after its failure record was
written gets no second one.

The driver binary: $ESMD_OUTBOX_DRIVER, else build/esmd-outbox-driver, else
build-destinations/esmd-outbox-driver.
"""

import json
import os
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers import aws, http
from helpers import kafka as kafka_mod
from helpers.esmd import aws_block
from helpers.procs import REPO, Proc, free_port, wait_until

PEERS = ()  # per test: @pytest.mark.peers


def driver_bin():
    cands = [os.environ.get("ESMD_OUTBOX_DRIVER"),
             os.path.join(REPO, "build", "esmd-outbox-driver"),
             os.path.join(REPO, "build-destinations", "esmd-outbox-driver")]
    for c in cands:
        if c and os.access(c, os.X_OK):
            return c
    pytest.skip("esmd-outbox-driver is not built (tests/tools/outbox_driver.c)")


class Outbox:
    """A state dir plus the driver that drains it."""

    def __init__(self, workdir, peers=None):
        self.dir = workdir
        self.state = os.path.join(workdir, "state")
        self.status_path = os.path.join(workdir, "status.json")
        self.peers = peers
        self.proc = None
        self.runs = 0

    def _base(self):
        argv = [driver_bin(), "--state-dir", self.state]
        if self.peers is not None and self.peers.sqs_endpoint:
            argv += ["--sqs-endpoint", self.peers.sqs_endpoint,
                     "--sns-endpoint", self.peers.sqs_endpoint]
        if self.peers is not None and self.peers.kafka_bootstrap:
            argv += ["--kafka-bootstrap", self.peers.kafka_bootstrap]
        return argv

    def env(self):
        return {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}

    def add(self, rows):
        """rows: [(destination, payload_obj[, key])]: written in one transaction."""
        path = os.path.join(self.dir, f"rows-{self.runs}.jsonl")
        self.runs += 1
        with open(path, "w") as f:
            for r in rows:
                d = {"destination": r[0], "payload": r[1], "mapping": "m-1"}
                if len(r) > 2 and r[2] is not None:
                    d["key"] = r[2]
                f.write(json.dumps(d) + "\n")
        p = Proc(self._base() + ["--rows", path, "--add-only"],
                 os.path.join(self.dir, "add.log"), env=self.env())
        wait_until(lambda: not p.alive(), 30, "rows added")
        assert p.returncode() == 0, p.log_tail()

    def start(self, exit_when_empty=False, extra=()):
        argv = self._base() + ["--status", self.status_path, *extra]
        if exit_when_empty:
            argv.append("--exit-when-empty")
        self.proc = Proc(argv, os.path.join(self.dir, "driver.log"), env=self.env())
        return self.proc

    def status(self):
        try:
            with open(self.status_path) as f:
                return json.load(f)
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def dest_status(self, name):
        st = self.status() or {}
        for d in st.get("destinations", []):
            if d["destination"] == name:
                return d
        return None

    def wait_drained(self, timeout=60):
        """Waits for the --exit-when-empty driver to exit 0 (depth 0 and nothing in flight)."""
        wait_until(lambda: not self.proc.alive(), timeout,
                   f"outbox drained; driver log:\n{self.proc.log_tail()}")
        assert self.proc.returncode() == 0, self.proc.log_tail()

    def stop(self):
        if self.proc is not None:
            return self.proc.stop(timeout=15)
        return None


@pytest.fixture
def outbox(workdir):
    ob = Outbox(str(workdir))
    yield ob
    ob.stop()


@pytest.fixture
def outbox_peers(workdir, peers):
    ob = Outbox(str(workdir), peers)
    yield ob
    ob.stop()


class Sink:
    """A local HTTP server that records POSTed bodies; `fail` makes it answer 500."""

    def __init__(self, port=None, delay=0.0):
        self.bodies = []
        self.headers = []
        self.lock = threading.Lock()
        self.fail = False
        self.delay = delay
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 - http.server naming
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                if sink.delay:
                    threading.Event().wait(sink.delay)
                if sink.fail:
                    code = 500
                else:
                    code = 200
                    with sink.lock:
                        sink.bodies.append(body)
                        sink.headers.append(dict(self.headers))
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *a):
                pass

        self.port = port or free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/failures"

    def payloads(self):
        with self.lock:
            return [json.loads(b) for b in self.bodies]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink():
    s = Sink()
    yield s
    s.close()


def record(i, **extra):
    """A failure record shaped like AWS's (docs/design.md "Failure records"), numbered."""
    return {"requestContext": {"requestId": f"req-{i}", "condition": "RetryAttemptsExhausted",
                               "approximateInvokeCount": 3,
                               "functionArn": "arn:aws:lambda:us-east-1:000000000000:function:f"},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                                "functionError": "Unhandled"},
            "version": "1.0", "timestamp": "2026-11-24T00:00:00.000Z", "n": i,
            "text": "ünïcödé \"quoted\"\nnewline", **extra}


# ---------------------------------------------------------------- http and file


def test_http_destination_posts_each_record_in_order(outbox, sink):
    rows = [(sink.url, record(i)) for i in range(20)]
    outbox.add(rows)
    outbox.start(exit_when_empty=True)
    outbox.wait_drained()
    got = sink.payloads()
    assert [p["n"] for p in got] == list(range(20))
    assert got[3] == record(3)
    assert all(h.get("Content-Type") == "application/json" for h in sink.headers)
    st = outbox.status()
    assert st["depth"] == 0 and st["delivered"] == 20 and st["failed_attempts"] == 0


def test_file_destination_appends_one_line_per_record(outbox, workdir):
    path = os.path.join(str(workdir), "out", "failures.jsonl")
    os.makedirs(os.path.dirname(path))
    outbox.add([(f"file://{path}", record(i)) for i in range(10)])
    outbox.start(exit_when_empty=True)
    outbox.wait_drained()
    with open(path) as f:
        lines = f.read().splitlines()
    assert [json.loads(x) for x in lines] == [record(i) for i in range(10)]


def test_http_destination_down_keeps_rows_and_delivers_when_back(outbox):
    port = free_port()
    url = f"http://127.0.0.1:{port}/failures"
    outbox.add([(url, record(i)) for i in range(5)])
    outbox.start(exit_when_empty=True)

    def failing():
        d = outbox.dest_status(url)
        return d if d and d["failed_attempts"] >= 2 else None

    d = wait_until(failing, 30, "two failed attempts against the stopped server")
    assert d["depth"] == 5
    assert d["last_error"] and d["last_success_at"] is None
    assert outbox.status()["depth"] == 5
    assert outbox.proc.alive()  # nothing was dropped, the driver still waits
    assert "failed (attempt" in outbox.proc.log()

    s = Sink(port=port)
    try:
        outbox.wait_drained(timeout=60)  # backoff after 2-3 failures is at most a few seconds
        assert [p["n"] for p in s.payloads()] == list(range(5))
    finally:
        s.close()


def test_http_5xx_is_retried(outbox, sink):
    sink.fail = True
    outbox.add([(sink.url, record(1))])
    outbox.start(exit_when_empty=True)
    wait_until(lambda: (outbox.dest_status(sink.url) or {}).get("failed_attempts", 0) >= 1, 30,
               "a 500 answer counted as a failed attempt")
    assert "HTTP 500" in outbox.dest_status(sink.url)["last_error"]
    sink.fail = False
    outbox.wait_drained()
    assert [p["n"] for p in sink.payloads()] == [1]


def test_kill9_mid_drain_loses_nothing(outbox, workdir):
    s = Sink(delay=0.01)
    try:
        n = 300
        outbox.add([(s.url, record(i)) for i in range(n)])
        p = outbox.start()
        wait_until(lambda: len(s.bodies) >= 60, 60, "60 rows delivered before the crash")
        p.kill9()
        before = len(s.bodies)
        assert before < n, "the crash should happen mid-drain"
        outbox.start(exit_when_empty=True)
        outbox.wait_drained(timeout=120)
        got = [x["n"] for x in s.payloads()]
        assert set(got) == set(range(n)), f"missing: {sorted(set(range(n)) - set(got))[:10]}"
        dups = len(got) - n
        # only rows in flight at the crash may come twice (1 per destination by default)
        assert dups <= 1, f"{dups} duplicates"
    finally:
        s.close()


# ---------------------------------------------------------------- SQS and SNS (fauxqs)


@pytest.mark.peers("sqs")
def test_sqs_destination(outbox_peers, sqs):
    q = aws.create_queue(sqs)
    outbox_peers.add([(q.arn, record(i)) for i in range(5)])
    outbox_peers.start(exit_when_empty=True)
    outbox_peers.wait_drained()
    msgs = aws.drain(sqs, q, expect=5)
    bodies = sorted((json.loads(m["Body"]) for m in msgs), key=lambda b: b["n"])
    assert bodies == [record(i) for i in range(5)]


@pytest.mark.peers("sqs")
def test_sqs_missing_queue_keeps_rows_until_created(outbox_peers, sqs):
    name = aws.unique("late")
    arn = aws.sqs_arn(name)
    outbox_peers.add([(arn, record(7))])
    outbox_peers.start(exit_when_empty=True)
    wait_until(lambda: (outbox_peers.dest_status(arn) or {}).get("failed_attempts", 0) >= 1, 30,
               "a failed attempt against a missing queue")
    assert "QueueDoesNotExist" in outbox_peers.dest_status(arn)["last_error"]
    q = aws.create_queue(sqs, name=name)
    outbox_peers.wait_drained()
    msgs = aws.drain(sqs, q, expect=1)
    assert json.loads(msgs[0]["Body"]) == record(7)


@pytest.mark.peers("sqs")
def test_sns_destination(outbox_peers, sqs, peers):
    sns = aws.client("sns", peers.sqs_endpoint)
    topic = sns.create_topic(Name=aws.unique("t"))["TopicArn"]
    q = aws.create_queue(sqs)
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=q.arn,
                  Attributes={"RawMessageDelivery": "true"})
    outbox_peers.add([(topic, record(i)) for i in range(3)])
    outbox_peers.start(exit_when_empty=True)
    outbox_peers.wait_drained()
    msgs = aws.drain(sqs, q, expect=3)
    bodies = sorted((json.loads(m["Body"]) for m in msgs), key=lambda b: b["n"])
    assert bodies == [record(i) for i in range(3)]


# ---------------------------------------------------------------- Kafka


@pytest.mark.peers("kafka")
def test_kafka_destination_explicit_and_source_cluster(outbox_peers, kafka, peers):
    topic = kafka.create_topic(partitions=2)
    explicit = f"kafka://{peers.kafka_bootstrap}/{topic}"
    source = f"kafka://{topic}"  # resolved through --kafka-bootstrap (the source cluster)
    rows = [(explicit, record(i), f"key-{i}") for i in range(4)]
    rows += [(source, record(10 + i), f"key-{10 + i}") for i in range(2)]
    rows.append((explicit, record(5), "key-0"))  # same key as record 0
    rows.append((explicit, record(99), None))  # no key: round-robin
    outbox_peers.add(rows)
    outbox_peers.start(exit_when_empty=True)
    outbox_peers.wait_drained()
    got = kafka_mod.consume(peers.kafka_bootstrap, topic, expect=len(rows))
    by_n = {json.loads(m["value"])["n"]: m for m in got}
    assert sorted(by_n) == [0, 1, 2, 3, 5, 10, 11, 99]
    assert by_n[2]["key"] == b"key-2"
    assert by_n[11]["key"] == b"key-11"
    assert by_n[99]["key"] is None
    assert json.loads(by_n[3]["value"]) == record(3)
    # the record's key keeps its partitioning
    assert by_n[5]["partition"] == by_n[0]["partition"]


def test_kafka_destination_down_keeps_rows(outbox, workdir):
    dead = f"127.0.0.1:{free_port()}"
    dest = f"kafka://{dead}/nowhere"
    outbox.add([(dest, record(1), "k")])
    outbox.start(exit_when_empty=True, extra=())
    # librdkafka reports the message as failed after message.timeout.ms (30 s by default);
    # meanwhile the row must stay in the outbox
    wait_until(lambda: (outbox.status() or {}).get("in_flight") == 1, 20, "the produce in flight")
    assert outbox.status()["depth"] == 1
    rc = outbox.stop()
    assert rc == 0
    # a clean stop with the message unconfirmed leaves the row in the outbox
    os.unlink(outbox.status_path)
    p = Proc([driver_bin(), "--state-dir", outbox.state, "--status", outbox.status_path],
             os.path.join(str(workdir), "again.log"))
    try:
        wait_until(lambda: (outbox.status() or {}).get("depth") == 1 and p.alive(), 20,
                   "the row still there after the restart")
    finally:
        p.stop()


# ---------------------------------------------------------------- parked records and dedupe
# (docs/operations.md "Parked failure records"): esmd end to end, an SQS source whose
# messages fail for good, its failure records going to an SQS queue on fauxqs.


def esmd_config(peers, funchost, source, failures, endpoint=None, **mapping):
    m = {"FunctionName": "fn", "EventSourceArn": source.arn, "BatchSize": 1,
         "MaximumRetryAttempts": 0, "DestinationConfig": {"OnFailure": {"Destination": failures.arn}}}
    m.update(mapping)
    cfg = {"aws": aws_block(peers),
           "functions": {"fn": {"url": funchost.url_lambda("fail"), "protocol": "lambda",
                                "timeout_seconds": 1, "max_concurrency": 2}},
           "event_source_mappings": [m]}
    if endpoint:
        cfg["aws"]["endpoints"]["sqs"] = endpoint
    return cfg


def outbox_of(e):
    return e.status()["Outbox"]


def outbox_dest(e, arn):
    for d in outbox_of(e)["destinations"]:
        if d["destination"] == arn:
            return d
    return None


def plain_metric(e, name):
    """A label-less sample of /metrics, or None."""
    for line in e.metrics().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def parked(e):
    code, _, body = http.get(e.admin_url + "/outbox/parked")
    assert code == 200, body
    return json.loads(body)["parked"]


def record_bodies(msgs):
    return [r["body"] for m in msgs for r in json.loads(m["Body"])["payload"]["Records"]]


@pytest.mark.peers("sqs")
def test_oversize_record_is_parked_the_rest_flow_and_redrive_delivers_it(peers, sqs, funchost,
                                                                          esmd):
    src = aws.create_queue(sqs, visibility_timeout=30)
    # the destination queue takes at most 4 KiB: the big message's record is refused for good
    failures = aws.create_queue(sqs, name=src.name + "-failures",
                                attributes={"MaximumMessageSize": "4096"})
    big = "B" * 6000
    aws.send_messages(sqs, src, bodies=[big])
    e = esmd(esmd_config(peers, funchost, src, failures))
    # the big record is the first row of its destination, the small ones come behind it
    wait_until(lambda: outbox_of(e)["failed_attempts"] >= 1, 30, "the destination refused the record")
    small = [f"small-{i}" for i in range(3)]
    aws.send_messages(sqs, src, bodies=small)
    got = aws.drain(sqs, failures, expect=3, timeout=30)
    assert sorted(record_bodies(got)) == small

    wait_until(lambda: outbox_of(e)["parked"] == 1, 15, "the parked row in /status")
    ob = outbox_of(e)
    assert ob["depth"] == 0
    d = outbox_dest(e, failures.arn)
    assert d["parked"] == 1 and d["delivered"] == 3
    assert "InvalidParameterValue" in d["last_park_reason"]
    assert plain_metric(e, "esmd_outbox_parked") == 1
    assert plain_metric(e, "esmd_outbox_parked_total") == 1
    rows = parked(e)
    assert len(rows) == 1
    row = rows[0]
    assert row["destination"] == failures.arn
    assert row["mapping"] == e.status()["EventSourceMappings"][0]["UUID"]
    assert row["size"] > 6000 and "4096" in row["reason"]
    assert set(row) >= {"id", "mapping", "destination", "reason", "parked_at", "size"}
    wait_until(lambda: queue_empty(sqs, src), 15, "the source queue emptied")

    # parked state survives a restart, and the row is not retried
    e.restart()
    assert [r["id"] for r in parked(e)] == [row["id"]]
    assert outbox_of(e)["parked"] == 1
    assert outbox_dest(e, failures.arn)["parked"] == 1

    # redrive while the cause is still there: parked again
    code, _, body = http.request("POST", e.admin_url + f"/outbox/parked/redrive?id={row['id']}",
                                 body=b"")
    assert code == 200 and json.loads(body) == {"redriven": 1}, body
    wait_until(lambda: plain_metric(e, "esmd_outbox_parked_total") == 1 and
               outbox_of(e)["parked"] == 1, 15, "the redriven row refused and parked again")
    # the operator raises the limit, then re-drives by destination
    sqs.set_queue_attributes(QueueUrl=failures.url, Attributes={"MaximumMessageSize": "262144"})
    code, _, body = http.request(
        "POST", e.admin_url + "/outbox/parked/redrive?destination=" + failures.arn, body=b"")
    assert code == 200 and json.loads(body) == {"redriven": 1}, body
    got = aws.drain(sqs, failures, expect=1, timeout=30)
    assert record_bodies(got) == [big]
    wait_until(lambda: outbox_of(e)["parked"] == 0, 15, "nothing parked any more")
    assert parked(e) == []
    assert plain_metric(e, "esmd_outbox_parked") == 0
    # an unknown id is an error, not a silent no-op
    code, _, _ = http.request("POST", e.admin_url + "/outbox/parked/redrive?id=999999", body=b"")
    assert code == 404
    code, _, _ = http.request("POST", e.admin_url + "/outbox/parked/redrive?id=x", body=b"")
    assert code == 400


@pytest.mark.peers("sqs")
def test_records_a_missing_queue_refuses_are_listed_pending_until_it_exists(peers, sqs, funchost, esmd):
    src = aws.create_queue(sqs, visibility_timeout=30)
    name = src.name + "-later"
    failures = types.SimpleNamespace(arn=aws.sqs_arn(name))
    aws.send_messages(sqs, src, bodies=["one", "two"])
    e = esmd(esmd_config(peers, funchost, src, failures))

    def pending():
        code, _, body = http.get(e.admin_url + "/outbox/pending")
        assert code == 200, body
        return json.loads(body)

    def both_failed():
        rows = pending()["pending"]
        return rows if len(rows) == 2 and all(r["last_error"] for r in rows) else None

    rows = wait_until(both_failed, 30, "both records pending with a delivery error")
    assert {r["destination"] for r in rows} == {failures.arn}
    assert all(r["attempts"] >= 1 and r["next_attempt_at"] and "parked_at" not in r for r in rows)
    assert "NonExistentQueue" in rows[0]["last_error"] or "exist" in rows[0]["last_error"]
    page = json.loads(http.get(e.admin_url + "/outbox/pending?limit=1")[2])
    assert [r["id"] for r in page["pending"]] == [rows[0]["id"]] and page["next_after"] == rows[0]["id"]
    assert http.get(e.admin_url + "/outbox/pending?limit=0")[0] == 400
    assert parked(e) == []

    q = aws.create_queue(sqs, name=name)
    got = aws.drain(sqs, q, expect=2, timeout=60)
    assert sorted(record_bodies(got)) == ["one", "two"]
    wait_until(lambda: pending()["pending"] == [], 15, "nothing pending once delivered")


def queue_empty(sqs, q):
    return aws.queue_counts(sqs, q) == (0, 0, 0)


class DeleteBlocker:
    """Forwards SQS calls to fauxqs; while `block` is set, DeleteMessageBatch gets a 500 (the
    delete after the outbox commit fails), its receipt handles noted."""

    def __init__(self, upstream):
        self.block = True
        self.refused_handles = set()
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                target = self.headers.get("X-Amz-Target", "").split(".")[-1]
                if target == "DeleteMessageBatch" and proxy.block:
                    with proxy.lock:
                        for ent in json.loads(body).get("Entries", []):
                            proxy.refused_handles.add(ent["ReceiptHandle"])
                    out = json.dumps({"__type": "com.amazonaws.sqs#InternalError",
                                      "message": "injected by the test"}).encode()
                    status, ctype = 500, "application/x-amz-json-1.0"
                else:
                    hdrs = {k: v for k, v in self.headers.items()
                            if k.lower() not in ("host", "content-length")}
                    status, rh, out = http.request("POST", upstream + "/", body=body, headers=hdrs)
                    ctype = rh.get("Content-Type", "application/x-amz-json-1.0")
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def refused(self):
        with self.lock:
            return len(self.refused_handles)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def delete_blocker(peers):
    p = DeleteBlocker(peers.sqs_endpoint)
    yield p
    p.close()


@pytest.mark.peers("sqs")
def test_message_back_after_a_failed_delete_gets_one_failure_record(peers, sqs, funchost, esmd,
                                                                     delete_blocker):
    src = aws.create_queue(sqs, visibility_timeout=1)
    failures = aws.create_queue(sqs, name=src.name + "-failures")
    aws.send_messages(sqs, src, bodies=["poison"])
    e = esmd(esmd_config(peers, funchost, src, failures, endpoint=delete_blocker.url))
    # two receives whose failure record was handled and whose delete then failed
    wait_until(lambda: delete_blocker.refused() >= 2, 60, "two failed deletes of the message")
    assert funchost.payloads().count("poison") >= 2
    delete_blocker.block = False
    wait_until(lambda: queue_empty(sqs, src), 30, "the message deleted at last")
    wait_until(lambda: outbox_of(e)["depth"] == 0 and outbox_of(e)["in_flight"] == 0, 30,
               "the outbox drained")
    assert outbox_of(e)["delivered"] == 1
    got = aws.drain(sqs, failures, expect=1, timeout=10)
    assert record_bodies(got) == ["poison"]
    assert aws.queue_counts(sqs, failures) == (0, 0, 0)
    assert "already has a failure record" in e.log()
    counters = e.status()["EventSourceMappings"][0]["Counters"]
    assert counters["on_failure_queued"] == 1


@pytest.mark.peers("sqs")
def test_message_back_after_kill9_before_its_delete_gets_one_failure_record(peers, sqs, funchost,
                                                                             esmd, delete_blocker):
    src = aws.create_queue(sqs, visibility_timeout=2)
    failures = aws.create_queue(sqs, name=src.name + "-failures")
    aws.send_messages(sqs, src, bodies=["poison"])
    cfg = esmd_config(peers, funchost, src, failures, endpoint=delete_blocker.url)
    e = esmd(cfg)
    # the record is written and delivered, the delete has not happened: esmd dies
    got = aws.drain(sqs, failures, expect=1, timeout=30)
    assert record_bodies(got) == ["poison"]
    wait_until(lambda: outbox_of(e)["delivered"] == 1 and outbox_of(e)["depth"] == 0, 15,
               "the outbox row deleted after its delivery")
    e.kill9()
    delete_blocker.block = False
    calls = funchost.payloads().count("poison")
    e.start()
    # the message comes back (visibility timeout), fails again, and is deleted
    wait_until(lambda: funchost.payloads().count("poison") > calls, 30, "the message invoked again")
    wait_until(lambda: queue_empty(sqs, src), 30, "the message deleted")
    wait_until(lambda: outbox_of(e)["depth"] == 0 and outbox_of(e)["in_flight"] == 0, 30,
               "the outbox drained")
    assert outbox_of(e)["delivered"] == 0
    assert aws.queue_counts(sqs, failures) == (0, 0, 0)
    assert "already has a failure record" in e.log()


@pytest.mark.peers("kafka")
def test_kafka_topic_refusing_an_oversize_record_parks_it_and_the_rest_flow(outbox_peers, kafka,
                                                                           peers):
    # the broker takes at most 2000 bytes per message on this topic (max.message.bytes)
    topic = kafka.create_topic(partitions=1, config={"max.message.bytes": "2000"})
    dest = f"kafka://{peers.kafka_bootstrap}/{topic}"
    outbox_peers.add([(dest, record(0), "k"), (dest, record(1, big="B" * 5000), "k"),
                      (dest, record(2), "k"), (dest, record(3), "k")])
    outbox_peers.start()
    wait_until(lambda: (outbox_peers.dest_status(dest) or {}).get("delivered") == 3 and
               outbox_peers.dest_status(dest).get("parked") == 1, 60,
               f"three delivered, one parked; driver log:\n{outbox_peers.proc.log_tail()}")
    reason = outbox_peers.dest_status(dest)["last_park_reason"]
    assert "too large" in reason.lower(), reason
    got = kafka_mod.consume(peers.kafka_bootstrap, topic, expect=3)
    assert [json.loads(m["value"])["n"] for m in got] == [0, 2, 3]
    assert outbox_peers.status()["depth"] == 0
