"""Building blocks of the chaos scenarios: record feeders per source, the kill -9 loop, a
checkpoint watcher, and the at-least-once analysis of the function host's log.

Every wait has a deadline (helpers.procs.wait_until); nothing sleeps and hopes. Kill moments are
random but come from a seeded random.Random, so a failing run can be repeated with CHAOS_SEED.
"""

import collections
import json
import os
import threading
import time

from helpers import aws
from helpers.procs import wait_until


def now_ms():
    return int(time.time() * 1000)


# ---------------------------------------------------------------- feeders


class Feeder(threading.Thread):
    """Sends records "<prefix>-<i>" for i in range(n) in the background, in `tranches` equal
    parts: part k is sent once release() was called k+1 times (the kill loop releases one part
    per cycle, so every kill hits records in flight). .sent counts what the source confirmed;
    .error holds an exception that stopped it. join_ok() waits for the end and re-raises."""

    def __init__(self, n, chunk, tranches=1, prefix="r"):
        super().__init__(daemon=True)
        self.n, self.chunk, self.prefix = n, chunk, prefix
        self.tranches = max(1, tranches)
        self.sent = 0
        self.error = None
        self._released = threading.Semaphore(0)

    def release(self, *_):
        self._released.release()

    def release_all(self):
        for _ in range(self.tranches):
            self._released.release()

    def wait_sent(self, tranche, timeout=120):
        """Until tranche `tranche` (0-based) was sent completely (re-raises a feeder error)."""
        per = -(-self.n // self.tranches)
        want = min(self.n, (tranche + 1) * per)
        wait_until(lambda: self.error or self.sent >= want, timeout, f"tranche {tranche} sent")
        if self.error:
            raise self.error

    def bodies(self, start, end):
        return [f"{self.prefix}-{i}" for i in range(start, end)]

    def send(self, bodies):  # pragma: no cover - per source
        raise NotImplementedError

    def run(self):
        try:
            per = -(-self.n // self.tranches)
            for t in range(self.tranches):
                if not self._released.acquire(timeout=600):
                    raise TimeoutError(f"tranche {t} never released")
                for start in range(t * per, min(self.n, (t + 1) * per), self.chunk):
                    end = min(self.n, (t + 1) * per, start + self.chunk)
                    self.send(self.bodies(start, end))
                    self.sent = end
        except Exception as exc:  # noqa: BLE001 - re-raised by join_ok
            self.error = exc

    def join_ok(self, timeout):
        self.release_all()  # whatever the kill loop did not release yet
        self.join(timeout)
        if self.error:
            raise self.error
        assert not self.is_alive(), f"feeder still sending after {timeout} s ({self.sent}/{self.n})"

    def expected(self):
        return self.bodies(0, self.n)


class SqsFeeder(Feeder):
    def __init__(self, sqs, queue, n, tranches=1, prefix="r"):
        super().__init__(n, 100, tranches, prefix)
        self.sqs, self.queue = sqs, queue

    def send(self, bodies):
        aws.send_messages(self.sqs, self.queue, bodies=bodies)


class KinesisFeeder(Feeder):
    def __init__(self, kinesis, stream, n, tranches=1, prefix="r"):
        super().__init__(n, 250, tranches, prefix)
        self.kinesis, self.stream = kinesis, stream
        self.puts = []  # (shard id, sequence number, data)

    def send(self, bodies):
        self.puts.extend(aws.put_records(self.kinesis, self.stream,
                                         records=[(f"pk-{b}", b) for b in bodies]))

    def last_seq_by_shard(self):
        last = {}
        for shard, seq, _ in self.puts:
            if shard not in last or int(seq) > int(last[shard]):
                last[shard] = seq
        return last


class KafkaFeeder(Feeder):
    def __init__(self, kafka, topic, n, tranches=1, prefix="r"):
        super().__init__(n, 250, tranches, prefix)
        self.kafka, self.topic = kafka, topic

    def send(self, bodies):
        self.kafka.produce(self.topic, [{"value": b, "key": b} for b in bodies])


# ---------------------------------------------------------------- checkpoint watcher


class CheckpointWatcher(threading.Thread):
    """Polls a read function (-> {key: comparable position}) every `interval` seconds and records
    every value seen; a position that moves back is kept in .regressions. Read errors (esmd down
    between a kill and a restart) are skipped."""

    def __init__(self, read, interval=0.1):
        super().__init__(daemon=True)
        self.read, self.interval = read, interval
        self.highest = {}
        self.regressions = []
        self.samples = 0
        self._halt = threading.Event()

    def observe(self, values, where="poll"):
        for key, pos in values.items():
            if pos is None:
                continue
            hi = self.highest.get(key)
            if hi is not None and pos < hi:
                self.regressions.append((where, key, hi, pos))
            if hi is None or pos > hi:
                self.highest[key] = pos
        self.samples += 1

    def run(self):
        while not self._halt.is_set():
            try:
                self.observe(self.read())
            except Exception:  # noqa: BLE001 - esmd is down right now
                pass
            self._halt.wait(self.interval)

    def stop(self):
        self._halt.set()
        self.join(10)


# ---------------------------------------------------------------- kill loop


def kill_cycles(e, funchost, rng, cycles, min_up=0.05, max_up=1.0, progress_timeout=60.0,
                on_cycle=None, on_restart=None):
    """kill -9 esmd `cycles` times while records flow, restarting it after each kill.

    Each cycle calls on_cycle(i) (e.g. a feeder's release: more records), waits until the
    function host logged an invocation since then (so every kill hits a running flow), lets
    esmd run a random min_up..max_up s, then kills. Returns the kill times (epoch ms), taken
    just before the signal."""
    kills = []
    for i in range(cycles):
        seen = len(funchost.invocations())
        if on_cycle:
            on_cycle(i)
        wait_until(lambda: len(funchost.invocations()) > seen or not e.alive(), progress_timeout,
                   f"cycle {i}: an invocation after the restart")
        assert e.alive(), f"esmd died by itself in cycle {i}:\n{e.proc.log_tail()}"
        threading.Event().wait(rng.uniform(min_up, max_up))  # the random kill moment
        kills.append(now_ms())
        e.kill9()
        if on_restart:
            on_restart(i)
        e.start()
    return kills


# ---------------------------------------------------------------- analysis


def deliveries(funchost):
    """[(t_ms, payload)] for every record of every invocation that the function accepted."""
    out = []
    for inv in funchost.invocations():
        for p in inv.get("payloads", []):
            out.append((inv["t"], p))
    return out


def analyse(funchost, expected, kills, window_ms, max_dupes):
    """At-least-once check from the function host's log.

    - every expected record was delivered at least once;
    - every delivery of a record except its last started at most window_ms before some kill
      (it belonged to a batch in flight at that kill: the only allowed source of duplicates);
    - the number of extra deliveries is at most max_dupes.
    Returns figures for the results table."""
    by_rec = collections.defaultdict(list)
    for t, p in deliveries(funchost):
        by_rec[p].append(t)
    missing = [r for r in expected if r not in by_rec]
    assert not missing, f"{len(missing)} records never delivered, e.g. {missing[:10]}"
    extra = 0
    most = 1
    unexplained = []
    for rec, times in by_rec.items():
        times.sort()
        most = max(most, len(times))
        extra += len(times) - 1
        for t in times[:-1]:
            if not any(-500 <= k - t <= window_ms for k in kills):
                unexplained.append((rec, t))
    assert not unexplained, (f"{len(unexplained)} duplicate deliveries not explained by a kill "
                             f"(kills at {kills}), e.g. {unexplained[:5]}")
    assert extra <= max_dupes, f"{extra} duplicate deliveries, more than the bound {max_dupes}"
    return {"records": len(expected), "kills": len(kills), "lost": len(missing),
            "duplicates": extra, "most_deliveries_of_one_record": most,
            "records_duplicated": sum(1 for t in by_rec.values() if len(t) > 1)}


def record_result(name, figures):
    """Appends the figures as one JSON line to $CHAOS_RESULTS (when set) for the run's summary."""
    path = os.environ.get("CHAOS_RESULTS")
    if not path:
        return
    with open(path, "a") as f:
        f.write(json.dumps({"scenario": name, "full": os.environ.get("CHAOS_FULL") == "1",
                            **figures}) + "\n")
