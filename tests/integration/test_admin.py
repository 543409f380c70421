"""The admin HTTP endpoints of a running esmd (SQS mapping against fauxqs): /healthz, /readyz,
/status, /metrics, and a stuck lane showing up (an always-failing function, a failing FIFO
message group) with EsmdOptions.StuckLaneSeconds=2. Every wait is a condition with a
deadline."""

import http.client as httpclient
import json
import re
import socket
import subprocess
import urllib.parse

import pytest

from helpers import aws, http
from helpers.esmd import aws_block
from helpers.procs import free_port, wait_until

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


# ---- securing the admin API (docs/operations.md "Securing the admin API") --------------------

TOKEN = "0123456789abcdef0123456789abcdef"
IDLE_DEADLINE = 40  # esmd closes idle connections after 10 s; generous for a loaded machine


def bare_config():
    return {"functions": {}, "event_source_mappings": []}


def call(url, method="POST", body=None, headers=None):
    """-> (status, json-or-text body); http.client so that no header is added behind our back
    (urllib would set a form Content-Type on any body)."""
    u = urllib.parse.urlsplit(url)
    c = httpclient.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        c.request(method, u.path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
    finally:
        c.close()
    try:
        return r.status, json.loads(data)
    except ValueError:
        return r.status, data.decode(errors="replace")


def generation(e):
    return e.status()["Generation"]


def refused_total(e, reason):
    _, samples = parse_metrics(e.metrics())
    return value(samples, "esmd_admin_refused_total", reason=reason)


def non_loopback_ipv4():
    """An IPv4 address of this host that is not loopback, or None."""
    try:
        out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                             capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return None
    for line in out.splitlines():
        addr = line.split()[3].split("/")[0]
        if not addr.startswith("127."):
            return addr
    return None


def closed_by_server(sock, deadline):
    """True when the server closes sock (EOF or reset) before the deadline (seconds)."""
    sock.settimeout(deadline)
    try:
        while sock.recv(4096):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def connect(e, source=None):
    host, port = e.config["admin_listen"].rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if source:
        s.bind((source, 0))
    s.connect((host, int(port)))
    return s


def test_requests_a_browser_could_send_are_refused(esmd):
    e = esmd(bare_config())
    url = e.admin_url + "/reload"
    port = e.config["admin_listen"].rsplit(":", 1)[1]
    cases = [
        ({"Content-Type": "application/x-www-form-urlencoded"}, b"a=1", "form_content_type"),
        ({"Content-Type": "multipart/form-data; boundary=x"}, b"--x--", "form_content_type"),
        ({"Content-Type": "text/plain"}, b"{}", "form_content_type"),
        ({"Content-Type": "text/plain"}, None, "form_content_type"),
        ({}, b"{}", "body_not_json"),  # fetch() with a Blob: a body without a type
        ({"Content-Type": "application/json", "Origin": "http://evil.example"}, b"{}",
         "cross_site"),
        ({"Origin": "null"}, None, "cross_site"),
        ({"Sec-Fetch-Site": "cross-site"}, None, "cross_site"),
        ({"Sec-Fetch-Site": "same-site"}, None, "cross_site"),
        # DNS rebinding: same origin for the browser, but Host is the attacker's name.
        ({"Host": f"rebind.example:{port}", "Origin": f"http://rebind.example:{port}",
          "Sec-Fetch-Site": "same-origin"}, None, "cross_site"),
    ]
    for headers, body, reason in cases:
        code, doc = call(url, body=body, headers=headers)
        assert code == 403, (headers, body, code, doc)
        assert doc["reason"] == reason, (headers, doc)
        assert doc["error"].startswith("refused: ") and doc["fix"], doc
    assert generation(e) == 1, "a refused request reloaded the config"
    assert refused_total(e, "form_content_type") == 4
    assert refused_total(e, "body_not_json") == 1
    assert refused_total(e, "cross_site") == 5
    assert "admin: refused POST /reload from 127.0.0.1: cross_site" in e.log()

    # curl from the host: a bodiless POST, or a JSON body, still reloads.
    assert call(url)[0] == 200
    assert call(url, body=b"{}", headers={"Content-Type": "application/json"})[0] == 200
    assert call(url, headers={"Origin": f"http://127.0.0.1:{port}"})[0] == 200
    assert generation(e) == 4
    assert call(url, method="PUT")[0] == 405  # mutating routes take POST only
    # Every state-changing endpoint passes the same guard, not just /reload.
    code, doc = call(e.admin_url + "/outbox/parked/redrive", headers={"Origin": "http://evil.example"})
    assert code == 403 and doc["reason"] == "cross_site", doc
    code, doc = call(e.admin_url + "/outbox/parked/redrive", headers={"Content-Type": "text/plain"})
    assert code == 403 and doc["reason"] == "form_content_type", doc
    assert call(e.admin_url + "/outbox/parked/redrive")[0] == 200


def test_a_non_loopback_client_needs_a_token(esmd, tmp_path):
    ip = non_loopback_ipv4()
    if not ip:
        pytest.skip("this host has no non-loopback IPv4 address to bind the admin API on")
    # Connecting to our own global address makes the client address that address too.
    e = esmd(dict(bare_config(), admin_listen=f"{ip}:{free_port(ip)}"), name="open")
    code, doc = call(e.admin_url + "/reload")
    assert code == 403 and doc["reason"] == "remote_without_token", doc
    assert "admin_token_file" in doc["fix"]
    code, doc = call(e.admin_url + "/outbox/parked/redrive")
    assert code == 403 and doc["reason"] == "remote_without_token", doc
    for path in ("/healthz", "/readyz", "/status", "/metrics", "/outbox/parked"):  # reads stay open
        assert call(e.admin_url + path, method="GET")[0] == 200, path
    assert generation(e) == 1
    assert f"admin: refused POST /reload from {ip}: remote_without_token" in e.log()
    assert "has no admin token: state-changing requests are accepted from loopback only" in e.log()

    token_file = tmp_path / "admin_token"
    token_file.write_text(TOKEN + "\n")
    t = esmd(dict(bare_config(), admin_listen=f"{ip}:{free_port(ip)}",
                  admin_token_file=str(token_file)), name="token")
    url = t.admin_url + "/reload"
    for auth in (None, "Bearer wrong-token-0123456789", "Basic " + TOKEN, "Bearer " + TOKEN[:-1]):
        code, doc = call(url, headers={"Authorization": auth} if auth else {})
        assert code == 403 and doc["reason"] == "bad_token", (auth, doc)
    assert generation(t) == 1
    code, doc = call(url, headers={"Authorization": "Bearer " + TOKEN})
    assert code == 200 and doc["applied"] is True, doc
    assert refused_total(t, "bad_token") == 4
    assert TOKEN not in t.log()

    # A reload re-reads the file: the new token works at once, the old one no longer.
    new = "fedcba9876543210fedcba9876543210"
    token_file.write_text(new + "\n")
    assert call(url, headers={"Authorization": "Bearer " + TOKEN})[0] == 200
    assert call(url, headers={"Authorization": "Bearer " + TOKEN})[1]["reason"] == "bad_token"
    assert call(url, headers={"Authorization": "Bearer " + new})[0] == 200
    assert generation(t) == 4


def test_connections_are_bounded_per_client_and_queued_beyond_the_total(esmd):
    e = esmd(bare_config())
    held = [connect(e) for _ in range(16)]  # ESM_ADMIN_MAX_CONNECTIONS_PER_IP
    extra = connect(e)
    assert closed_by_server(extra, 10), "a 17th connection from one address was kept open"
    # Another client address is still served while 127.0.0.1 is at its limit.
    other = connect(e, source="127.0.0.2")
    other.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    other.settimeout(10)
    assert other.recv(64).startswith(b"HTTP/1.1 200")
    other.close()
    # 64 in total (ESM_ADMIN_MAX_CONNECTIONS): 16 more from each of three other addresses. MHD
    # then stops accepting, so a 65th waits in the listen backlog until one of them closes.
    for src in ("127.0.0.3", "127.0.0.4", "127.0.0.5"):
        held += [connect(e, source=src) for _ in range(16)]
    queued = connect(e, source="127.0.0.6")
    queued.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    held.pop().close()
    queued.settimeout(10)
    assert queued.recv(64).startswith(b"HTTP/1.1 200"), "served once a slot was free"
    queued.close()
    for s in held:
        s.close()
    wait_until(lambda: http.ok(e.admin_url + "/healthz"), 10, "served again once they closed")


def test_idle_and_half_sent_requests_are_closed(esmd):
    e = esmd(bare_config())
    idle = connect(e)
    half = connect(e)
    half.sendall(b"POST /reload HTTP/1.1\r\nHost: x\r\n")  # headers never finished
    short = connect(e)
    short.sendall(b"POST /reload HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 10\r\n\r\n{\"a\"")  # body never finished
    assert http.ok(e.admin_url + "/healthz"), "the loop serves others meanwhile"
    for name, s in (("idle", idle), ("half request", half), ("half body", short)):
        assert closed_by_server(s, IDLE_DEADLINE), f"{name} connection kept open"
        s.close()
    assert generation(e) == 1


def test_oversized_requests_are_refused(esmd):
    e = esmd(bare_config())
    url = e.admin_url + "/reload"
    code, doc = call(url, body=b"{" + b" " * 100000 + b"}",
                     headers={"Content-Type": "application/json"})
    assert code == 413 and doc["reason"] == "body_too_large", doc
    # Chunked, so the size is unknown up front: the connection is closed once it passes the cap.
    s = connect(e)
    s.sendall(b"POST /reload HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (8192, b" " * 8192)
    answer = b""
    try:
        for _ in range(16):
            s.sendall(chunk)
        s.settimeout(10)
        answer = s.recv(64)
    except (BrokenPipeError, ConnectionResetError):
        pass
    s.close()
    assert not answer.startswith(b"HTTP/1.1 2"), answer
    assert refused_total(e, "body_too_large") == 2
    s = connect(e)
    s.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n")
    s.settimeout(10)
    assert s.recv(64).startswith(b"HTTP/1.1 431")
    s.close()
    assert generation(e) == 1
