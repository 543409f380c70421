"""The status page (GET /, docs/operations.md "Admin HTTP") of an esmd with a Kafka mapping whose
partition 1 flows and partition 0 is blocked on a poison record.

Plain HTTP checks the headers that confine the page, HEAD, and that it names no other host.
Headless Chromium renders it offline (no name but 127.0.0.1 resolves and any proxied request
goes to a closed port) and the rendered numbers are those of /status.
"""

import base64
import datetime
import hashlib
import os
import re
import subprocess
from html.parser import HTMLParser

import pytest

from helpers import http
from helpers.procs import wait_until
from test_kafka import config, group_of, kafka_source

PEERS = ("kafka",)

CHROMIUM = "/usr/bin/chromium"

# Each flag keeps Chromium from talking to anything but the page's own origin.
OFFLINE = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--metrics-recording-only",
    "--disable-default-apps", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=127.0.0.1",
]


@pytest.fixture
def blocked(kafka, funchost, esmd):
    """esmd with partition 1 committed to its end and partition 0 blocked at offset 0."""
    topic = kafka.create_topic(partitions=2)
    kafka.produce(topic, [{"value": "POISON-0", "key": "p", "partition": 0}] +
                  [{"value": f"p0-{i}", "key": "p", "partition": 0} for i in range(10)] +
                  [{"value": f"p1-{i}", "key": "q", "partition": 1} for i in range(20)])
    cfg = config(kafka, topic, funchost.url_lambda("poison"), BatchSize=5)
    cfg["event_source_mappings"][0]["EsmdOptions"]["RetryBackoff"] = {"BaseSeconds": 0, "MaxSeconds": 1}
    e = esmd(cfg)

    def settled():
        parts = {p["Partition"]: p for p in kafka_source(e)["Partitions"]}
        return (len(parts) == 2 and parts[1]["CommittedOffset"] == 20 and parts[1]["OffsetLag"] == 0
                and parts[0]["Lane"]["BlockedSince"] and parts[0]["OffsetLag"] == 11)

    wait_until(settled, 30, "partition 1 committed, partition 0 blocked")
    wait_until(lambda: kafka.committed_offsets(group_of(cfg), topic)[1] == 20, 30,
               "the group committed partition 1 at the broker")
    return e


def inline(page, tag):
    return re.search(rf"<{tag}>(.*?)</{tag}>", page, re.S).group(1)


def iso_ms(iso):
    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000


def csp_hash(text):
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_headers_head_and_no_other_host(blocked):
    code, headers, body = http.get(blocked.admin_url + "/")
    assert code == 200
    page = body.decode("utf-8")
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"
    csp = [d.strip() for d in headers["Content-Security-Policy"].split(";")]
    assert csp == ["default-src 'none'", "connect-src 'self'", "img-src 'none'",
                   "script-src " + csp_hash(inline(page, "script")),
                   "style-src " + csp_hash(inline(page, "style")),
                   "frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'"]
    assert page.count("<script") == 1 and page.count("<style") == 1  # the hashes cover all
    assert "innerHTML" not in page and "insertAdjacentHTML" not in page
    assert re.findall(r"(?:https?:)?//[a-z0-9.-]+", page, re.I) == []  # no URL to any host
    assert re.findall(r"""(?:src|href)\s*=""", page, re.I) == []  # nothing loaded from anywhere

    code, head_headers, head_body = http.request("HEAD", blocked.admin_url + "/")
    assert code == 200 and head_body == b""
    for name in ("Content-Type", "Content-Security-Policy", "X-Content-Type-Options", "Cache-Control"):
        assert head_headers[name] == headers[name]
    assert int(head_headers["Content-Length"]) == len(body)
    assert http.request("POST", blocked.admin_url + "/")[0] == 405


class Cells(HTMLParser):
    """Text of every element with data-k, keyed by (mapping UUID, lane or None, key)."""

    def __init__(self):
        super().__init__()
        self.uuid = self.lane = None
        self.key = None
        self.cells = {}
        self.attrs = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section" and "data-uuid" in a:
            self.uuid = a["data-uuid"]
        if tag == "section" and a.get("id") == "outbox":
            self.uuid = "outbox"
        if tag == "body":
            self.attrs = a
        if tag == "tr":
            self.lane = a.get("data-lane")
        if "data-k" in a:
            self.key = (self.uuid, self.lane, a["data-k"])
            self.cells[self.key] = ""

    def handle_endtag(self, tag):
        if tag in ("td", "span"):
            self.key = None
        if tag == "table":
            self.lane = None

    def handle_data(self, data):
        if self.key:
            self.cells[self.key] += data


def render(url, tmp_path):
    png = tmp_path / "status.png"
    argv = [CHROMIUM, *OFFLINE, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2000",
            "--virtual-time-budget=5000", f"--screenshot={png}", "--dump-dom", url]
    env = dict(os.environ, HOME=str(tmp_path))
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout, png, r.stderr


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed")
def test_rendered_page_matches_status(blocked, tmp_path):
    dom, png, log = render(blocked.admin_url + "/", tmp_path)
    st = blocked.status()
    p = Cells()
    p.feed(dom)
    assert int(p.attrs.get("data-renders", "0")) >= 1, dom[-2000:] + log[-2000:]
    m = st["EventSourceMappings"][0]
    uuid = m["UUID"]
    cell = lambda key, lane=None, who=uuid: p.cells[(who, lane, key)]  # noqa: E731
    assert cell("UUID") == uuid
    assert cell("State") == m["State"] == "Enabled"
    assert cell("LastProcessingResult") == m["LastProcessingResult"]
    assert cell("ConsumerGroupId") == m["SourceState"]["ConsumerGroupId"]
    parts = {str(x["Partition"]): x for x in m["SourceState"]["Partitions"]}
    for lane in ("0", "1"):
        assert cell("CommittedOffset", lane) == str(parts[lane]["CommittedOffset"])
        assert cell("OffsetLag", lane) == str(parts[lane]["OffsetLag"])
    assert (cell("CommittedOffset", "0"), cell("OffsetLag", "0")) == ("0", "11")
    assert (cell("CommittedOffset", "1"), cell("OffsetLag", "1")) == ("20", "0")
    since = parts["0"]["Lane"]["BlockedSince"]
    assert since in cell("Blocked", "0")
    # Blocked for as long as the daemon's clock says (its Date header, whole seconds), not the
    # browser's (whose clock runs ahead here: virtual time).
    daemon_now = iso_ms(m["BlockedSince"]) + m["BlockedSeconds"] * 1000
    shown = float(cell("Blocked", "0").split(" s ")[0])
    assert 0 <= shown <= (daemon_now - iso_ms(since)) / 1000 + 1.5, (shown, m)
    assert cell("LastResult", "0") == parts["0"]["Lane"]["LastProcessingResult"]
    assert cell("Phase", "1") == parts["1"]["Lane"]["Phase"] == "Idle"
    assert cell("Phase", "0") in ("WaitingToInvoke", "Invoking")  # it retries meanwhile
    assert cell("Blocked", "1") == "—"
    outbox = st["Outbox"]
    assert cell("depth", who="outbox") == str(outbox["depth"])
    assert cell("parked", who="outbox") == str(outbox["parked"])
    assert "No parked records." in dom
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
