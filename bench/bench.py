#!/usr/bin/env python3
"""esmd benchmarks: every figure is printed next to a reference measured in the same run.

usage: bench/bench.py [--quick] CASE...     (scripts/bench.sh is the entry point)
cases:
  sqs          esmd SQS -> no-op function at BatchSize 10/100/1000 vs a minimal
               receive+delete client on the same queue shape (the emulator's ceiling)
  sqs-latency  send -> invoke p50/p99 at a low rate, window 0
  sqs-idle     100 idle SQS mappings: RSS and CPU
  sqs-shape    records/s and RSS vs batch size and payload size
  checkpoint   esm_store_advance commits/s vs a bare SQLite transaction (same pragmas)
  sigv4        libcurl's SigV4 signing: CPU per request, signed vs unsigned
  filter       bench/filter.sh (matches/s vs cJSON parsing)
  kafka        esmd Kafka vs kcat on the same topic, BatchSize 10/100/1000 (window 0),
               and 1000 with the default 500 ms window
  kafka-shape  Kafka records/s and RSS vs partitions and payload size
  kafka-latency produce -> invoke p50/p99, window 0, next to a plain consumer
  kinesis      esmd Kinesis vs a minimal GetRecords loop (the emulator's ceiling)
  kinesis-shards memory per shard (1 shard vs 1000 shards)
  profile-sqs, profile-kafka   perf profiles of the hot path (not figures)
  all          every case except the profiles

Binaries: ESMD_BIN (default build-bench/esmd, built by scripts/bench.sh). Peers: a private
fauxqs on BENCH_SQS_PORT (default 4766) started and stopped by this script; Kafka and Kinesis
from scripts/peers.sh (shared, never stopped here). Results: one JSON line per figure appended
to build-bench/results.jsonl, and a summary table on stdout.
"""

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
OUT = os.environ.get("BENCH_OUT", os.path.join(ROOT, "build-bench"))
RUN = os.path.join(OUT, "run")
ESMD = os.environ.get("ESMD_BIN", os.path.join(OUT, "esmd"))
NOOP = os.path.join(OUT, "noop_fn")
SQS_TOOL = os.path.join(OUT, "sqs_tool")
SQS_PORT = int(os.environ.get("BENCH_SQS_PORT", "4766"))
SQS_EP = f"http://127.0.0.1:{SQS_PORT}"
# The ceiling client's threads, each a blocking receive -> delete loop: 8 keeps fauxqs busy
# (1 thread: ~18.6 k/s, 2: ~20.4 k/s, 5: ~21.6 k/s, 10: ~22.0 k/s on this machine).
CEIL_THREADS = 8
TICK = os.sysconf("SC_CLK_TCK")
QUICK = False
RESULTS = []


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def load():
    return open("/proc/loadavg").read().split()[0]


def record(case, **kv):
    kv = {"case": case, "load1": load(), "t": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
          "esmd_commit": os.environ.get("BENCH_ESMD_COMMIT", "?"), **kv}
    RESULTS.append(kv)
    with open(os.path.join(OUT, "results.jsonl"), "a") as f:
        f.write(json.dumps(kv) + "\n")
    print(json.dumps(kv), flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def wait_until(pred, timeout, what, interval=0.05):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Proc:
    """A child in its own process group; stdout+stderr to a log file; stopped by its PID."""

    def __init__(self, argv, name, env=None, cwd=None):
        os.makedirs(RUN, exist_ok=True)
        self.log_path = os.path.join(RUN, f"{name}.log")
        self.logf = open(self.log_path, "wb")
        self.p = subprocess.Popen([str(a) for a in argv], stdout=self.logf, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, env=env, cwd=cwd, start_new_session=True)
        self.pid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def cpu(self):
        """utime+stime in seconds (children excluded)."""
        f = open(f"/proc/{self.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / TICK

    def mem(self):
        """(VmRSS, VmHWM) in MB."""
        d = {}
        for line in open(f"/proc/{self.pid}/status"):
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                d[k] = int(v.split()[0]) / 1024
        return d.get("VmRSS", 0.0), d.get("VmHWM", 0.0)

    def stop(self, timeout=20):
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.p.wait()
        self.logf.close()
        return self.p.returncode

    def tail(self, n=30):
        try:
            return "".join(open(self.log_path, errors="replace").readlines()[-n:])
        except OSError:
            return ""


# ---------------------------------------------------------------- peers and helpers


class Noop:
    """bench/noop_fn on a free port."""

    def __init__(self, *args):
        self.port = free_port()
        self.proc = Proc([NOOP, "--listen", f"127.0.0.1:{self.port}", *args], f"noop-{self.port}")
        self.base = f"http://127.0.0.1:{self.port}"
        wait_until(self._up, 10, "noop_fn ready")

    def _up(self):
        try:
            return http_get(self.base + "/healthz") == b"ok"
        except OSError:
            return False

    def url(self, name="fn"):
        return f"{self.base}/2015-03-31/functions/{name}/invocations"

    def stats(self):
        return json.loads(http_get(self.base + "/stats"))

    def lat_us(self):
        return [int(x) for x in http_get(self.base + "/lat").split()]

    def stop(self):
        self.proc.stop()


class Esmd:
    def __init__(self, config, name="esmd"):
        self.dir = os.path.join(RUN, name)
        subprocess.run(["rm", "-rf", self.dir], check=True)
        os.makedirs(self.dir)
        self.admin = f"127.0.0.1:{free_port()}"
        cfg = {"state_dir": os.path.join(self.dir, "state"), "admin_listen": self.admin,
               "log_level": os.environ.get("BENCH_ESMD_LOG", "warn"), **config}
        path = os.path.join(self.dir, "esmd.json")
        with open(path, "w") as f:
            json.dump(cfg, f, indent=1)
        env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
                   AWS_REGION="us-east-1")
        self.t_launch = time.time()
        self.proc = Proc([ESMD, "--config", path], name, env=env)
        wait_until(self._up, 20, "esmd /healthz")

    def _up(self):
        if not self.proc.alive():
            raise RuntimeError(f"esmd exited:\n{self.proc.tail()}")
        try:
            http_get(f"http://{self.admin}/healthz")
            return True
        except OSError:
            return False

    def stop(self):
        rc = self.proc.stop()
        if rc not in (0, None):
            log(f"esmd exited with rc {rc}:\n{self.proc.tail(10)}")
        return rc


def ensure_fauxqs():
    """A private fauxqs on SQS_PORT (the shared one on 4566 is busy with tests)."""
    try:
        http_get(SQS_EP + "/health", timeout=1)
        return None
    except OSError:
        pass
    npm = os.path.join(ROOT, ".peers", "npm")
    node = os.path.join(npm, "node_modules", "node22", "bin", "node")
    if not os.path.exists(node):
        subprocess.run([os.path.join(ROOT, "scripts", "peers.sh"), "install", "sqs"], check=True)
    env = dict(os.environ, FAUXQS_PORT=str(SQS_PORT), FAUXQS_BIND="127.0.0.1")
    p = Proc([node, "--no-warnings", os.path.join(npm, "fauxqs-start.mjs")], "fauxqs", env=env, cwd=npm)

    def up():
        if not p.alive():
            raise RuntimeError(f"fauxqs exited:\n{p.tail()}")
        try:
            return http_get(SQS_EP + "/health", timeout=1)
        except OSError:
            return False

    wait_until(up, 30, "fauxqs ready")
    return p


def sqs(*args, check=True):
    r = subprocess.run([SQS_TOOL, args[0], SQS_EP, *[str(a) for a in args[1:]]], capture_output=True,
                       text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"sqs_tool {' '.join(map(str, args))}: rc {r.returncode}\n{r.stderr}")
    return r.stdout.strip()


def sqs_json(*args):
    return json.loads(sqs(*args).splitlines()[-1])


def queue(name):
    url = sqs("create", name)
    return url, f"arn:aws:sqs:us-east-1:000000000000:{name}"


def sqs_config(fn_url, mappings, max_concurrency=10):
    return {"aws": {"region": "us-east-1", "endpoints": {"sqs": SQS_EP, "sns": SQS_EP}},
            "functions": {"fn": {"url": fn_url, "protocol": "lambda", "timeout_seconds": 30,
                                 "max_concurrency": max_concurrency}},
            "event_source_mappings": mappings}


def pct(vals, p):
    s = sorted(vals)
    if not s:
        return float("nan")
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


# ---------------------------------------------------------------- SQS throughput


def perf_attach(pid, out):
    """perf record (call graphs via DWARF) attached to pid; stop with perf_stop."""
    return subprocess.Popen(["perf", "record", "-F", "1999", "--call-graph", "dwarf,16384", "-o", out,
                             "-p", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def perf_stop(p):
    p.send_signal(signal.SIGINT)
    p.wait(60)


def esmd_sqs_run(qurl, arn, n, batch, window=None, max_concurrency=10, name="esmd", profile=None):
    """Drains n messages from qurl through esmd -> noop. Returns figures from first poll (esmd
    launch) to last delete (queue count 0)."""
    noop = Noop("--count", "receiptHandle")
    m = {"FunctionName": "fn", "EventSourceArn": arn, "BatchSize": batch}
    if window is None:
        window = 1 if batch > 10 else 0
    if window:
        m["MaximumBatchingWindowInSeconds"] = window
    e = Esmd(sqs_config(noop.url(), [m], max_concurrency), name)
    prof = perf_attach(e.proc.pid, profile) if profile else None
    try:
        peak = [0.0]

        def drained():
            if not e.proc.alive():
                raise RuntimeError(f"esmd died:\n{e.proc.tail()}")
            peak[0] = max(peak[0], e.proc.mem()[1])
            return int(sqs("count", qurl)) == 0

        wait_until(drained, 600, f"{n} messages drained by esmd", interval=0.05)
        t_end = time.time()
        cpu = e.proc.cpu()
        rss, hwm = e.proc.mem()
        st = noop.stats()
    finally:
        if prof:
            perf_stop(prof)
        e.stop()
        noop.stop()
    secs = t_end - e.t_launch
    return {"n": n, "records_invoked": st["records"], "invocations": st["requests"],
            "seconds": round(secs, 3), "per_s": round(n / secs), "cpu_s": round(cpu, 3),
            "cpu_us_per_record": round(cpu / n * 1e6, 1), "rss_mb": round(rss, 1),
            "peak_rss_mb": round(max(hwm, peak[0]), 1), "fn_cpu_s": st["cpu_s"]}


def case_sqs():
    n = 10000 if QUICK else 50000
    reps = 1 if QUICK else 3
    for batch in (10, 100, 1000):
        for rep in range(reps):
            qurl, arn = queue(f"bench-b{batch}-{rep}-{int(time.time())}")
            sqs("send", qurl, n, 200)
            ceil = sqs_json("drain", qurl, n, CEIL_THREADS)
            sqs("send", qurl, n, 200)
            r = esmd_sqs_run(qurl, arn, n, batch)
            ratio = r["per_s"] / ceil["per_s"]
            record("sqs", batch=batch, rep=rep, payload=200, esmd=r, ceiling=ceil,
                   ratio=round(ratio, 3))


def case_sqs_shape():
    """records/s and peak RSS as batch size and payload size change (ratio to the ceiling)."""
    n = 5000 if QUICK else 15000
    for batch, payload in ((10, 1024), (100, 1024), (1000, 1024), (1000, 8192), (1000, 64)):
        qurl, arn = queue(f"bench-shape-{batch}-{payload}-{int(time.time())}")
        sqs("send", qurl, n, payload)
        ceil = sqs_json("drain", qurl, n, CEIL_THREADS)
        sqs("send", qurl, n, payload)
        r = esmd_sqs_run(qurl, arn, n, batch)
        record("sqs-shape", batch=batch, payload=payload, esmd=r, ceiling=ceil,
               ratio=round(r["per_s"] / ceil["per_s"], 3))


def perf_report(data, path, *args):
    """`perf report --stdio` of a recording into path."""
    with open(path, "w") as f:
        subprocess.run(["perf", "report", "-i", data, "--stdio", *args], stdout=f, stderr=subprocess.DEVNULL)


def case_profile_sqs():
    """perf profile of esmd draining SQS at BatchSize 10 and 1000 (figures are not comparable:
    perf itself costs CPU). Writes build-bench/profile-sqs-b<N>.txt (flat, by symbol) and
    -callers.txt (call graph of the top symbols)."""
    n = 10000 if QUICK else 50000
    for batch in (10, 1000):
        qurl, arn = queue(f"bench-prof-{batch}-{int(time.time())}")
        sqs("send", qurl, n, 200)
        data = os.path.join(OUT, f"perf-sqs-b{batch}.data")
        r = esmd_sqs_run(qurl, arn, n, batch, profile=data)
        flat = os.path.join(OUT, f"profile-sqs-b{batch}.txt")
        perf_report(data, flat, "--no-children", "--sort", "dso,symbol", "-g", "none", "--percent-limit", "0.5")
        perf_report(data, flat.replace(".txt", "-callers.txt"), "--no-children", "--sort", "symbol", "-G",
                    "--percent-limit", "2")
        record("profile-sqs", batch=batch, esmd=r, flat=flat)


# ---------------------------------------------------------------- SQS latency


def case_sqs_latency():
    rate, secs = 20, (10 if QUICK else 30)
    qurl, arn = queue(f"bench-lat-{int(time.time())}")
    # reference: the same trickle read by the minimal client is not instrumented; the
    # fauxqs long-poll wake-up (~17 ms, measured) is part of both paths.
    noop = Noop("--count", "receiptHandle", "--lat-key", '"body":"')
    m = {"FunctionName": "fn", "EventSourceArn": arn, "BatchSize": 10}
    e = Esmd(sqs_config(noop.url(), [m]), "esmd-lat")
    try:
        time.sleep(1)
        tr = sqs_json("trickle", qurl, rate, secs)
        wait_until(lambda: noop.stats()["records"] >= tr["n"], 30, "all probes invoked")
        lat = [v / 1000 for v in noop.lat_us()]
        cpu = e.proc.cpu()
    finally:
        e.stop()
        noop.stop()
    record("sqs-latency", rate_per_s=rate, seconds=secs, n=len(lat), window=0,
           p50_ms=round(pct(lat, 50), 2), p90_ms=round(pct(lat, 90), 2),
           p99_ms=round(pct(lat, 99), 2), max_ms=round(max(lat), 2),
           esmd_cpu_s=round(cpu, 3))


# ---------------------------------------------------------------- idle mappings


def case_sqs_idle():
    nmap = 100
    secs = 10 if QUICK else 30
    maps = []
    stamp = int(time.time())
    for i in range(nmap):
        _, arn = queue(f"bench-idle-{stamp}-{i}")
        maps.append({"FunctionName": "fn", "EventSourceArn": arn, "BatchSize": 10})
    noop = Noop()
    for nm, conc, label in ((1, 10, "baseline: 1 mapping, max_concurrency 10"),
                            (nmap, 10, "default max_concurrency 10 (5 pollers/mapping)"),
                            (nmap, 2, "max_concurrency 2 (2 pollers/mapping)")):
        e = Esmd(sqs_config(noop.url(), maps[:nm], conc), "esmd-idle")
        try:
            time.sleep(5)  # settle: every mapping resolved its queue and long-polls
            c0, t0 = e.proc.cpu(), time.monotonic()
            time.sleep(secs)
            cpu = e.proc.cpu() - c0
            wall = time.monotonic() - t0
            rss, hwm = e.proc.mem()
            fds = len(os.listdir(f"/proc/{e.proc.pid}/fd"))
            threads = len(os.listdir(f"/proc/{e.proc.pid}/task"))
        finally:
            e.stop()
        record("sqs-idle", mappings=nm, config=label, seconds=round(wall, 1),
               cpu_pct_of_core=round(cpu / wall * 100, 2), rss_mb=round(rss, 1),
               peak_rss_mb=round(hwm, 1), rss_kb_per_mapping=round(rss * 1024 / nm, 1),
               fds=fds, threads=threads)
    noop.stop()


# ---------------------------------------------------------------- checkpoint, filter


def case_checkpoint():
    r = subprocess.run([os.path.join(OUT, "bench_checkpoint"), "3" if not QUICK else "0.5",
                        os.path.join(RUN, "ckpt")], capture_output=True, text=True, check=True)
    for line in r.stdout.splitlines():
        if line.startswith("{"):
            record("checkpoint", **json.loads(line))


def case_sigv4():
    """libcurl's SigV4 signing cost per request (bench/bench_sigv4.c) against noop_fn."""
    noop = Noop()
    try:
        for body in (300, 1500):
            r = subprocess.run([os.path.join(OUT, "bench_sigv4"), noop.base + "/", "400" if QUICK else "2000",
                                str(body)], capture_output=True, text=True, check=True)
            record("sigv4", **json.loads(r.stdout.strip().splitlines()[-1]))
    finally:
        noop.stop()


def case_filter():
    r = subprocess.run([os.path.join(ROOT, "bench", "filter.sh"), "1.0" if QUICK else "2"],
                       capture_output=True, text=True, env=dict(os.environ, BENCH_OUT=OUT))
    print(r.stdout)
    if r.returncode != 0:
        log(f"filter.sh failed: {r.stderr}")
    record("filter", output=r.stdout.strip().splitlines())


# ---------------------------------------------------------------- Kafka

KAFKA_BS = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
# An esmd Kafka run stops after this many seconds and reports the rate of what it committed
# (BatchSize 10 and 100 run at a few hundred to ~2 k records/s today: 1M would take hours).
KAFKA_MAX_S = float(os.environ.get("BENCH_KAFKA_MAX_S", "60"))


def kafka_helpers():
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    from helpers import kafka as k  # confluent-kafka, installed by scripts/peers.sh install

    return k


def kafka_delete_topic(topic):
    a = kafka_helpers().admin(KAFKA_BS)
    try:
        a.delete_topics([topic], operation_timeout=30)[topic].result(30)
    except Exception as exc:  # noqa: BLE001 - cleanup only
        log(f"delete topic {topic}: {exc}")


def run_measured(argv, stdout=subprocess.DEVNULL):
    """Runs argv to completion; returns (wall s, CPU s, peak RSS MB) of that child."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"{argv[0]} rc {p.returncode}: {p.stderr.read().decode()[-500:]}")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024


def kafka_topic(k, n, payload, partitions):
    """A fresh topic holding n records of `payload` bytes (kcat -P from a file)."""
    topic = k.create_topic(KAFKA_BS, k.unique("bench"), partitions=partitions)
    path = os.path.join(RUN, f"kafka-{n}-{payload}.kv")
    if not os.path.exists(path):
        with open(path + ".tmp", "w") as f:
            alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
            for i in range(n):
                head = f"{i:010d}"
                # key TAB value: keyed records spread over the partitions by hash
                f.write(f"k{i}\t" + head + (alphabet * (payload // len(alphabet) + 1))[i % 36:i % 36 + payload - len(head)] + "\n")
        os.replace(path + ".tmp", path)
    wall, _, _ = run_measured(["kcat", "-P", "-b", KAFKA_BS, "-t", topic, "-K", "\t", "-l", "-X", "linger.ms=20",
                               "-X", "batch.num.messages=10000", "-z", "none", path])
    total = sum(k.end_offsets(KAFKA_BS, topic).values())
    if total != n:
        raise RuntimeError(f"topic {topic}: {total} records, want {n}")
    log(f"produced {n} x {payload} B to {topic} ({partitions} partitions) in {wall:.1f} s")
    return topic


def kcat_consume(topic, n):
    """The reference: kcat reading the whole topic (values to /dev/null)."""
    wall, cpu, rss = run_measured(["kcat", "-C", "-b", KAFKA_BS, "-t", topic, "-o", "beginning", "-e",
                                   "-q", "-f", "%s\n"])
    return {"n": n, "seconds": round(wall, 3), "per_s": round(n / wall), "cpu_s": round(cpu, 3),
            "peak_rss_mb": round(rss, 1)}


class Committed:
    """Sum of a group's committed offsets on a topic, from one reusable consumer handle."""

    def __init__(self, k, group, topic):
        import confluent_kafka as ck

        self.ck = ck
        self.c = ck.Consumer({"bootstrap.servers": KAFKA_BS, "group.id": group})
        self.tps = [ck.TopicPartition(topic, p) for p in k.partitions_of(KAFKA_BS, topic)]

    def total(self):
        return sum(max(tp.offset, 0) for tp in self.c.committed(self.tps, timeout=10))

    def close(self):
        self.c.close()


def esmd_kafka_run(k, topic, n, batch, window=None, profile=None, name="esmd-kafka"):
    noop = Noop("--count", '"offset":')
    group = k.unique("bench-g")
    m = {"FunctionName": "fn", "Topics": [topic], "StartingPosition": "TRIM_HORIZON", "BatchSize": batch,
         "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [KAFKA_BS]}},
         "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": group},
         "EsmdOptions": {"KafkaProperties": {"session.timeout.ms": "6000",
                                             "heartbeat.interval.ms": "500",
                                             **json.loads(os.environ.get("BENCH_KAFKA_PROPS", "{}"))}}}
    if window is not None:
        m["MaximumBatchingWindowInSeconds"] = window
    cfg = {"functions": {"fn": {"url": noop.url(), "protocol": "lambda", "timeout_seconds": 30}},
           "event_source_mappings": [m]}
    com = Committed(k, group, topic)
    e = Esmd(cfg, name)
    prof = perf_attach(e.proc.pid, profile) if profile else None
    try:
        peak = [0.0]
        first = [None]

        committed = [0]

        def done():
            if not e.proc.alive():
                raise RuntimeError(f"esmd died:\n{e.proc.tail()}")
            peak[0] = max(peak[0], e.proc.mem()[1])
            committed[0] = com.total()
            return committed[0] >= n or time.time() - e.t_launch > KAFKA_MAX_S

        wait_until(done, KAFKA_MAX_S + 60, f"{n} records committed by esmd", interval=0.1)
        t_end = time.time()
        cpu = e.proc.cpu()
        rss, hwm = e.proc.mem()
        st = noop.stats()
        first[0] = st["first_us"] / 1e6
    finally:
        if prof:
            perf_stop(prof)
        e.stop()
        noop.stop()
        com.close()
    secs = t_end - first[0]
    done_n = min(committed[0], n)
    return {"n": n, "committed": done_n, "stopped_at_time_limit": done_n < n,
            "records_invoked": st["records"], "invocations": st["requests"],
            "seconds_first_invoke_to_last_commit": round(secs, 3),
            "seconds_first_to_last_invoke": round((st["last_us"] - st["first_us"]) / 1e6, 3),
            "seconds_from_launch": round(t_end - e.t_launch, 3), "per_s": round(done_n / secs),
            "cpu_s": round(cpu, 3), "cpu_us_per_record": round(cpu / max(done_n, 1) * 1e6, 2),
            "rss_mb": round(rss, 1), "peak_rss_mb": round(max(hwm, peak[0]), 1),
            "fn_cpu_s": st["cpu_s"]}


def kafka_compare(k, n, batch, payload=200, partitions=4, case="kafka", window=0):
    """A fresh topic; kcat reads it, esmd drains it, kcat reads it again (the reference is the
    mean of the two kcat runs around esmd's). Window 0 unless given (None: the 500 ms default,
    which holds each partition's last, partial batch that long: a fixed cost at the end of the
    run, not a rate)."""
    topic = kafka_topic(k, n, payload, partitions)
    try:
        before = kcat_consume(topic, n)
        r = esmd_kafka_run(k, topic, n, batch, window=window)
        after = kcat_consume(topic, n)
    finally:
        kafka_delete_topic(topic)
    ref = round((before["per_s"] + after["per_s"]) / 2)
    record(case, batch=batch, payload=payload, partitions=partitions, window=window, esmd=r,
           kcat_before=before, kcat_after=after, ratio=round(r["per_s"] / ref, 3))


def case_kafka():
    k = kafka_helpers()
    n = int(os.environ.get("BENCH_KAFKA_N", 100000 if QUICK else 1000000))
    for batch in [int(b) for b in os.environ.get("BENCH_BATCHES", "10,100,1000").split(",")]:
        kafka_compare(k, n, batch)
    kafka_compare(k, n, 1000, window=None)


def case_kafka_shape():
    """records/s and RSS vs partitions and payload size at BatchSize 1000."""
    k = kafka_helpers()
    n = int(os.environ.get("BENCH_KAFKA_N", 100000 if QUICK else 300000))
    for partitions, payload in ((1, 200), (8, 200), (4, 1024), (4, 64)):
        kafka_compare(k, n, 1000, payload, partitions, case="kafka-shape")


def case_kafka_latency():
    """produce -> invoke latency at a low rate, window 0, next to a plain librdkafka consumer
    (confluent-kafka, assigned to every partition) reading the same records: the broker's own
    delivery latency."""
    import threading

    import confluent_kafka as ck

    k = kafka_helpers()
    rate, secs = 50, (10 if QUICK else 30)
    topic = k.create_topic(KAFKA_BS, k.unique("bench-lat"), partitions=4)
    noop = Noop("--count", '"offset":', "--lat-key", '"value":"', "--lat-b64")
    group = k.unique("bench-g")
    m = {"FunctionName": "fn", "Topics": [topic], "StartingPosition": "LATEST", "BatchSize": 100,
         "MaximumBatchingWindowInSeconds": 0,
         "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [KAFKA_BS]}},
         "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": group},
         "EsmdOptions": {"KafkaProperties": {"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}}}
    cfg = {"functions": {"fn": {"url": noop.url(), "protocol": "lambda", "timeout_seconds": 30}},
           "event_source_mappings": [m]}
    ref_lat, stop = [], threading.Event()

    def reference():
        c = ck.Consumer({"bootstrap.servers": KAFKA_BS, "group.id": k.unique("ref"), "enable.auto.commit": False})
        c.assign([ck.TopicPartition(topic, p, ck.OFFSET_END) for p in range(4)])
        while not stop.is_set():
            msg = c.poll(0.1)
            if msg is not None and not msg.error() and msg.value().startswith(b"T"):
                ref_lat.append((time.time_ns() // 1000 - int(msg.value()[1:])) / 1000)
        c.close()

    e = Esmd(cfg, "esmd-kafka-lat")
    th = threading.Thread(target=reference)
    try:
        # wait until esmd owns every partition (status shows them) before producing
        def assigned():
            st = json.loads(http_get(f"http://{e.admin}/status"))
            return len(st["EventSourceMappings"][0]["SourceState"].get("Partitions") or []) == 4

        wait_until(assigned, 60, "esmd assigned 4 partitions")
        th.start()
        time.sleep(1)
        p = ck.Producer({"bootstrap.servers": KAFKA_BS, "linger.ms": 0})
        t0, sent = time.monotonic(), 0
        while time.monotonic() - t0 < secs:
            p.produce(topic, key=f"k{sent}", value=f"T{time.time_ns() // 1000}")
            p.poll(0)
            sent += 1
            time.sleep(max(0.0, t0 + sent / rate - time.monotonic()))
        p.flush(10)
        wait_until(lambda: noop.stats()["records"] >= sent, 30, "all probes invoked")
        lat = [v / 1000 for v in noop.lat_us()]
        cpu = e.proc.cpu()
    finally:
        stop.set()
        if th.is_alive():
            th.join()
        e.stop()
        noop.stop()
        kafka_delete_topic(topic)
    record("kafka-latency", rate_per_s=rate, seconds=secs, n=len(lat), window=0, batch=100,
           p50_ms=round(pct(lat, 50), 2), p90_ms=round(pct(lat, 90), 2), p99_ms=round(pct(lat, 99), 2),
           max_ms=round(max(lat), 2), esmd_cpu_s=round(cpu, 3),
           reference_consumer={"n": len(ref_lat), "p50_ms": round(pct(ref_lat, 50), 2),
                               "p99_ms": round(pct(ref_lat, 99), 2)})


def case_profile_kafka():
    k = kafka_helpers()
    n = int(os.environ.get("BENCH_KAFKA_N", 100000 if QUICK else 300000))
    topic = kafka_topic(k, n, 200, 4)
    try:
        for batch in (1000,):
            data = os.path.join(OUT, f"perf-kafka-b{batch}.data")
            r = esmd_kafka_run(k, topic, n, batch, profile=data)
            flat = os.path.join(OUT, f"profile-kafka-b{batch}.txt")
            perf_report(data, flat, "--no-children", "--sort", "dso,symbol", "-g", "none", "--percent-limit", "0.5")
            perf_report(data, flat.replace(".txt", "-children.txt"), "--children", "--sort", "dso,symbol", "-g",
                        "none", "--percent-limit", "1")
            record("profile-kafka", batch=batch, esmd=r, flat=flat)
    finally:
        kafka_delete_topic(topic)


# ---------------------------------------------------------------- Kinesis

KIN_PORT = int(os.environ.get("BENCH_KINESIS_PORT", "4768"))
KIN_EP = f"http://127.0.0.1:{KIN_PORT}"
KIN_TOOL = os.path.join(OUT, "kinesis_tool")


def ensure_kinesis():
    """A private kinesis-local (kinesis-mock) on KIN_PORT (TLS on KIN_PORT+3)."""
    try:
        http_get(KIN_EP + "/healthcheck", timeout=1)
        return None
    except OSError:
        pass
    npm = os.path.join(ROOT, ".peers", "npm")
    node = os.path.join(npm, "node_modules", "node22", "bin", "node")
    if not os.path.exists(node):
        subprocess.run([os.path.join(ROOT, "scripts", "peers.sh"), "install", "kinesis"], check=True)
    subprocess.run(["cp", os.path.join(ROOT, "tests", "peers", "kinesis-start.cjs"), npm], check=True)
    env = dict(os.environ, KINESIS_MOCK_CERT_PATH=os.path.join(npm, "node_modules", "kinesis-local", "server.json"),
               KINESIS_MOCK_PLAIN_PORT=str(KIN_PORT), KINESIS_MOCK_TLS_PORT=str(KIN_PORT + 3),
               LOG_LEVEL="WARN", AWS_REGION="us-east-1", AWS_ACCOUNT_ID="000000000000", SHARD_LIMIT="5000",
               CREATE_STREAM_DURATION="0ms", DELETE_STREAM_DURATION="0ms")
    p = Proc([node, os.path.join(npm, "kinesis-start.cjs"),
              os.path.join(npm, "node_modules", "kinesis-local", "main.js")], "kinesis", env=env, cwd=npm)

    def up():
        if not p.alive():
            raise RuntimeError(f"kinesis-local exited:\n{p.tail()}")
        try:
            return http_get(KIN_EP + "/healthcheck", timeout=1) is not None
        except OSError:
            return False

    wait_until(up, 60, "kinesis-local ready")
    return p


def kin(*args):
    r = subprocess.run([KIN_TOOL, args[0], KIN_EP, *[str(a) for a in args[1:]]], capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise RuntimeError(f"kinesis_tool {' '.join(map(str, args))}: rc {r.returncode}\n{r.stderr}")
    out = r.stdout.strip()
    return json.loads(out.splitlines()[-1]) if out else None


def esmd_kinesis_run(stream, n, batch, profile=None):
    noop = Noop("--count", '"sequenceNumber"')
    m = {"FunctionName": "fn", "EventSourceArn": f"arn:aws:kinesis:us-east-1:000000000000:stream/{stream}",
         "StartingPosition": "TRIM_HORIZON", "BatchSize": batch}
    cfg = {"aws": {"region": "us-east-1", "endpoints": {"kinesis": KIN_EP}},
           "functions": {"fn": {"url": noop.url(), "protocol": "lambda", "timeout_seconds": 30}},
           "event_source_mappings": [m]}
    e = Esmd(cfg, "esmd-kinesis")
    prof = perf_attach(e.proc.pid, profile) if profile else None
    try:
        def done():
            if not e.proc.alive():
                raise RuntimeError(f"esmd died:\n{e.proc.tail()}")
            return noop.stats()["records"] >= n

        wait_until(done, 900, f"{n} Kinesis records invoked", interval=0.05)
        time.sleep(0.2)  # the last checkpoint write follows the last invocation
        cpu = e.proc.cpu()
        rss, hwm = e.proc.mem()
        st = noop.stats()
    finally:
        if prof:
            perf_stop(prof)
        e.stop()
        noop.stop()
    secs = st["last_us"] / 1e6 - e.t_launch
    return {"n": n, "records_invoked": st["records"], "invocations": st["requests"],
            "seconds_launch_to_last_invoke": round(secs, 3), "per_s": round(n / secs),
            # without esmd's start-up (exec, state store, DescribeStreamSummary, ListShards,
            # iterators): from the first invocation, an upper bound of the steady rate
            "seconds_first_to_last_invoke": round((st["last_us"] - st["first_us"]) / 1e6, 3),
            "per_s_from_first_invoke": round(n / max((st["last_us"] - st["first_us"]) / 1e6, 1e-3)),
            "cpu_s": round(cpu, 3), "cpu_us_per_record": round(cpu / n * 1e6, 1), "rss_mb": round(rss, 1),
            "peak_rss_mb": round(hwm, 1)}


def case_kinesis():
    n = int(os.environ.get("BENCH_KINESIS_N", 4000 if QUICK else 10000))
    stream = f"bench-{int(time.time())}"
    kin("create", stream, 4)
    put = kin("put", stream, n, 200)
    log(f"put {n} records into {stream} (4 shards): {put['per_s']} records/s")
    try:
        for batch in (10, 100, 1000):
            # the emulator's ceiling: the best of Limit 10000 and 1000, no call-rate cap, before
            # esmd's run and (with the better Limit) after it: kinesis-local's speed drifts
            # between runs by more than esmd's differences, so the reference is the mean
            before = max((dict(kin("read", stream, n, lim), limit=lim) for lim in (10000, 1000)),
                         key=lambda x: x["per_s"])
            # the limits AWS sets: Limit = BatchSize, at most 5 GetRecords/s/shard (slow at
            # BatchSize 10: BENCH_KINESIS_SAME_LIMITS=0 leaves it out)
            same = kin("read", stream, n, batch, 5) if os.environ.get("BENCH_KINESIS_SAME_LIMITS", "1") != "0" else None
            r = esmd_kinesis_run(stream, n, batch)
            after = kin("read", stream, n, before["limit"])
            free = dict(before, per_s=round((before["per_s"] + after["per_s"]) / 2))
            record("kinesis", batch=batch, payload=200, shards=4, esmd=r, ceiling=free,
                   ceiling_before=before, ceiling_after=after,
                   same_limits=same, ratio=round(r["per_s"] / free["per_s"], 3),
                   ratio_to_same_limits=round(r["per_s"] / same["per_s"], 3) if same else None)
    finally:
        kin("delete", stream)


def case_kinesis_shards():
    """Memory per shard: esmd on an empty stream of 1 shard, then of N shards (default 1000)."""
    nshards = int(os.environ.get("BENCH_KINESIS_SHARDS", 100 if QUICK else 1000))
    noop = Noop()
    out = {}
    try:
        for count in (1, nshards):
            stream = f"bench-shards-{count}-{int(time.time())}"
            t0 = time.monotonic()
            kin("create", stream, count)
            created = time.monotonic() - t0
            m = {"FunctionName": "fn", "StartingPosition": "LATEST", "BatchSize": 100,
                 "EventSourceArn": f"arn:aws:kinesis:us-east-1:000000000000:stream/{stream}"}
            cfg = {"aws": {"region": "us-east-1", "endpoints": {"kinesis": KIN_EP}},
                   "functions": {"fn": {"url": noop.url(), "protocol": "lambda", "timeout_seconds": 30}},
                   "event_source_mappings": [m]}
            e = Esmd(cfg, f"esmd-shards-{count}")
            try:
                def shards():
                    st = json.loads(http_get(f"http://{e.admin}/status", timeout=10))
                    return len(st["EventSourceMappings"][0]["SourceState"].get("Shards") or [])

                seen = [0]

                def all_seen():
                    seen[0] = shards()
                    return seen[0] >= count

                t1 = time.monotonic()
                try:
                    wait_until(all_seen, 300, f"{count} shards in /status", interval=1)
                except TimeoutError:
                    log(f"only {seen[0]} of {count} shards visible after 300 s")
                ready_s = time.monotonic() - t1
                time.sleep(10)
                c0, w0 = e.proc.cpu(), time.monotonic()
                time.sleep(20)
                cpu = (e.proc.cpu() - c0) / (time.monotonic() - w0) * 100
                rss, hwm = e.proc.mem()
            finally:
                e.stop()
                kin("delete", stream)
            out[count] = {"shards_seen": seen[0], "rss_mb": round(rss, 1), "peak_rss_mb": round(hwm, 1),
                          "cpu_pct_of_core": round(cpu, 2), "create_s": round(created, 1),
                          "all_shards_seen_s": round(ready_s, 1)}
    finally:
        noop.stop()
    per = (out[nshards]["rss_mb"] - out[1]["rss_mb"]) * 1024 / max(out[nshards]["shards_seen"] - 1, 1)
    record("kinesis-shards", one=out[1], many=out[nshards], shards=nshards, kb_per_shard=round(per, 1))


# ---------------------------------------------------------------- main


CASES = {
    "sqs": case_sqs, "sqs-shape": case_sqs_shape, "sqs-latency": case_sqs_latency, "sqs-idle": case_sqs_idle,
    "kafka": case_kafka, "kafka-shape": case_kafka_shape, "kafka-latency": case_kafka_latency,
    "kinesis": case_kinesis, "kinesis-shards": case_kinesis_shards,
    "checkpoint": case_checkpoint, "sigv4": case_sigv4, "filter": case_filter,
    "profile-sqs": case_profile_sqs, "profile-kafka": case_profile_kafka,
}
SQS_CASES = {"sqs", "sqs-latency", "sqs-idle", "sqs-shape", "profile-sqs"}


def on_term(signum, frame):
    raise KeyboardInterrupt  # run the finally blocks: every child is stopped by its PID


def main(argv):
    global QUICK
    signal.signal(signal.SIGTERM, on_term)
    args = [a for a in argv if a != "--quick"]
    QUICK = len(args) != len(argv)
    if not args or args == ["all"]:
        args = [c for c in CASES if not c.startswith("profile")]
    bad = [a for a in args if a not in CASES]
    if bad:
        sys.exit(f"unknown case(s) {bad}; known: {', '.join(CASES)}")
    os.makedirs(RUN, exist_ok=True)
    fq = ensure_fauxqs() if SQS_CASES & set(args) else None
    kp = ensure_kinesis() if {"kinesis", "kinesis-shards"} & set(args) else None
    try:
        for c in args:
            log(f"case {c} (load {load()})")
            CASES[c]()
    finally:
        for p in (fq, kp):
            if p:
                p.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
