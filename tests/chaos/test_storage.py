"""Scenario 5: esmd's state_dir fails under it. A tmpfs of our own is mounted on the state_dir
(needs root; skipped otherwise) and filled up mid-flow, or made read-only across a restart. Kinesis source:
its checkpoint is the acknowledgement esmd writes. Asserted:
  - esmd stops acknowledging (the checkpoint stays behind the records the function already got),
    says why (the checkpoint_write_failures counter and a log line naming the cause), and keeps
    running;
  - when space (or write access) returns, it resumes by itself: every record delivered, the
    checkpoint at the shard's last record.
And a corrupt database is refused at start with a clear error (the file, "corrupt")."""

import json
import os
import subprocess

import pytest

from helpers import aws
from helpers.esmd import Esmd, aws_block
from helpers.procs import wait_until

pytestmark = pytest.mark.peers("kinesis")


@pytest.fixture
def tmpfs(workdir):
    path = os.path.join(str(workdir), "state")
    os.makedirs(path, exist_ok=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", path],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)")
    yield path
    subprocess.run(["mount", "-o", "remount,rw", path], capture_output=True)
    subprocess.run(["umount", "-l", path], capture_output=True)


def start(peers, kinesis, funchost, esmd, state_dir):
    st = aws.create_stream(kinesis, shards=1)
    e = esmd({"state_dir": state_dir, "aws": aws_block(peers),
              "functions": {"fn": {"url": funchost.url_lambda("echo"), "protocol": "lambda",
                                   "timeout_seconds": 3}},
              "event_source_mappings": [{"FunctionName": "fn", "EventSourceArn": st.arn,
                                         "StartingPosition": "TRIM_HORIZON", "BatchSize": 10}]})
    return e, st


def checkpoint(e):
    return e.status()["EventSourceMappings"][0]["SourceState"]["Shards"][0].get("Checkpoint")


def write_failures(e):
    return e.status()["EventSourceMappings"][0]["Counters"]["checkpoint_write_failures"]


def flow(kinesis, st, e, funchost, prefix, n):
    """Put n records; returns their sequence numbers once the function got them all."""
    seqs = [s for _, s, _ in aws.put_records(kinesis, st, records=[("k", f"{prefix}-{i}") for i in range(n)])]
    want = {f"{prefix}-{i}" for i in range(n)}
    wait_until(lambda: want <= set(funchost.payloads()), 30, f"{prefix} records delivered")
    return seqs


def fill(path):
    """Writes a filler file until the filesystem is full; returns its path."""
    filler = os.path.join(path, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:  # unbuffered: nothing is left to flush (and fail) at close
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def assert_holds_back(e, kinesis, st, funchost, cause_words):
    """After the state_dir broke: new records reach the function at most once more per retry,
    but the checkpoint stays behind the last of them and esmd says why."""
    seqs = aws.put_records(kinesis, st, records=[("k", f"blocked-{i}") for i in range(20)])
    wait_until(lambda: write_failures(e) > 0, 30, "a failed checkpoint write")
    assert checkpoint(e) != seqs[-1][1], "the checkpoint moved although the state_dir is broken"
    log = e.log().lower()
    assert "state store write failed" in log or "checkpoint" in log, e.proc.log_tail()
    assert any(w in log for w in cause_words), f"no cause among {cause_words}:\n{e.proc.log_tail()}"
    assert e.alive()
    return [s for _, s, _ in seqs]


def test_state_dir_full_stops_acks_then_recovers(peers, kinesis, funchost, esmd, tmpfs):
    e, st = start(peers, kinesis, funchost, esmd, tmpfs)
    first = flow(kinesis, st, e, funchost, "before", 20)
    wait_until(lambda: checkpoint(e) == first[-1], 20, "checkpoint after the first records")
    filler = fill(tmpfs)
    seqs = assert_holds_back(e, kinesis, st, funchost, ("full", "space"))
    os.unlink(filler)
    wait_until(lambda: checkpoint(e) == seqs[-1], 60, "checkpoint at the end once space is back")
    assert {f"blocked-{i}" for i in range(20)} <= set(funchost.payloads())


def test_state_dir_read_only_is_refused_then_resumes(peers, kinesis, funchost, esmd, tmpfs, workdir):
    # A filesystem with files open for writing cannot be remounted read-only (EBUSY), so the
    # read-only case is a restart onto a read-only state_dir (what an operator's mistake or a
    # failing disk remounted by the kernel looks like to the next start).
    e, st = start(peers, kinesis, funchost, esmd, tmpfs)
    first = flow(kinesis, st, e, funchost, "before", 20)
    wait_until(lambda: checkpoint(e) == first[-1], 20, "checkpoint after the first records")
    assert e.stop() == 0
    subprocess.run(["mount", "-o", "remount,ro", tmpfs], check=True)
    ro = Esmd(e.config, workdir, name="esmd-ro", ready=False, binary=e.binary)
    wait_until(lambda: not ro.alive(), 20, "esmd to refuse the read-only state_dir and exit")
    log = ro.log().lower()
    assert ro.proc.returncode() > 0, log
    assert "read-only" in log or "readonly" in log, log
    subprocess.run(["mount", "-o", "remount,rw", tmpfs], check=True)
    before = len(funchost.invocations())
    e.start()
    seqs = flow(kinesis, st, e, funchost, "after", 20)
    wait_until(lambda: checkpoint(e) == seqs[-1], 30, "checkpoint at the end once writable again")
    again = [p for inv in funchost.invocations()[before:] for p in inv["payloads"]]
    assert not [p for p in again if p.startswith("before")], "resumed before its checkpoint"


def test_corrupt_database_is_refused_at_start(peers, kinesis, funchost, esmd, workdir):
    e, _ = start(peers, kinesis, funchost, esmd, os.path.join(str(workdir), "state"))
    assert e.stop() == 0
    db = os.path.join(e.config["state_dir"], "esmd.db")
    assert os.path.exists(db)
    for extra in ("-wal", "-shm"):
        if os.path.exists(db + extra):
            os.unlink(db + extra)
    with open(db, "r+b") as f:  # keep the size, destroy the header and the first pages
        f.write(os.urandom(8192))
    e2 = Esmd(e.config, workdir, name="esmd-corrupt", ready=False, binary=e.binary)
    wait_until(lambda: not e2.alive(), 20, "esmd to refuse the corrupt database and exit")
    assert e2.proc.returncode() != 0
    log = e2.log()
    assert db in log and "corrupt" in log.lower(), log
    assert "Segmentation" not in log and e2.proc.returncode() > 0


def failure_records(path):
    if not os.path.exists(path):
        return []
    return [json.loads(x) for x in open(path).read().splitlines() if x.strip()]


def test_state_dir_full_during_a_pf2_discard(peers, kinesis, funchost, esmd, tmpfs, workdir):
    """ParallelizationFactor 2: a poison record is discarded (failure record + checkpoint) while
    the disk is full and the other lane's records keep arriving; esmd is stopped before space
    returns. The shard position never passes the poison record without its failure record, and
    after the restart the failure record is delivered exactly once and every record is done.
    A real full disk refuses every lane's write alike, so this does not force the interleaving
    where the other lane commits while the discard's write fails: the unit test
    tests/unit/test_pollers_kinesis_pf.c does, with a store that fails on command."""
    st = aws.create_stream(kinesis, shards=1)
    out = os.path.join(str(workdir), "failures.jsonl")  # outside the full tmpfs
    e = esmd({"state_dir": tmpfs, "aws": aws_block(peers),
              "functions": {"fn": {"url": funchost.url_lambda("poison"), "protocol": "lambda",
                                   "timeout_seconds": 3}},
              "event_source_mappings": [{
                  "FunctionName": "fn", "EventSourceArn": st.arn, "StartingPosition": "TRIM_HORIZON",
                  "BatchSize": 1, "ParallelizationFactor": 2, "MaximumRetryAttempts": 0,
                  "DestinationConfig": {"OnFailure": {"Destination": "file://" + out}}}]})
    first = flow(kinesis, st, e, funchost, "before", 10)
    wait_until(lambda: checkpoint(e) == first[-1], 20, "checkpoint after the first records")
    filler = fill(tmpfs)
    put = aws.put_records(kinesis, st, records=[("poison-key", "POISON-1")] +
                          [(f"k{i}", f"full-{i}") for i in range(10)])
    poison_seq, last = put[0][1], put[-1][1]
    want = {f"full-{i}" for i in range(10)} | {"POISON-1"}
    # Each lane's first record after the fill is invoked; then its write fails and it waits.
    wait_until(lambda: "POISON-1" in funchost.payloads(), 30, "the poison record invoked")
    wait_until(lambda: write_failures(e) > 0, 30, "a failed checkpoint write")
    lanes = e.status()["EventSourceMappings"][0]["SourceState"]["Shards"][0]["Lanes"]
    assert any(l["Batch"]["Phase"] == "WaitingForStateStore" for l in lanes), lanes
    assert not failure_records(out)
    cp = checkpoint(e)
    assert cp is None or int(cp) < int(poison_seq), f"checkpoint {cp} passed the poison {poison_seq}"
    assert e.stop() == 0  # still full: the discard is abandoned, never skipped
    os.unlink(filler)
    e.start()
    wait_until(lambda: checkpoint(e) == last, 60, "checkpoint at the end once space is back")
    frs = wait_until(lambda: failure_records(out) or None, 30, "the failure record")
    assert len(frs) == 1, frs
    assert frs[0]["KinesisBatchInfo"]["startSequenceNumber"] == poison_seq
    assert want <= set(funchost.payloads())
    assert len(failure_records(out)) == 1
