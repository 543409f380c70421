"""Drives scripts/peers.sh for pytest sessions, which may run in parallel.

Several pytest sessions (other checkouts' helpers, parallel CI jobs) share the same peers on
fixed ports. Each session registers itself in .peers/run/users/<pid> while it uses them; peers
that a harness session started are marked .peers/run/<name>.harness. The last session to
leave stops the harness-started peers; peers someone started by hand are never stopped here.
"""

import fcntl
import os
import subprocess
from contextlib import contextmanager

from .procs import REPO

PEERS_SH = os.path.join(REPO, "scripts", "peers.sh")
RUN = os.path.join(REPO, ".peers", "run")
USERS = os.path.join(RUN, "users")
ALL_PEERS = ("sqs", "kinesis", "kafka")


def _run(*args, check=True, timeout=600):
    argv = [PEERS_SH, *args]
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed (rc {r.returncode}):\n{r.stderr}{r.stdout}")
    return r


def running(names):
    """The subset of names whose peer runs (started by peers.sh)."""
    r = _run("status", *names, check=False)
    up = set()
    for line in r.stdout.splitlines():
        name, _, rest = line.partition(":")
        if rest.strip().startswith("running"):
            up.add(name.strip())
    return up


class Peers:
    """Endpoints of the running peers (attributes are None for peers not requested)."""

    def __init__(self, names, env):
        self.names = tuple(names)
        self.env = dict(env)  # SQS_ENDPOINT=..., KINESIS_ENDPOINT=..., KAFKA_BOOTSTRAP=...
        self.sqs_endpoint = env.get("SQS_ENDPOINT")
        self.kinesis_endpoint = env.get("KINESIS_ENDPOINT")
        self.kafka_bootstrap = env.get("KAFKA_BOOTSTRAP")
        self.region = "us-east-1"
        self.account = "000000000000"

    def __repr__(self):
        return f"Peers({self.env})"


@contextmanager
def _users_lock():
    os.makedirs(USERS, exist_ok=True)
    with open(os.path.join(RUN, ".users.lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _other_users():
    me = os.getpid()
    others = []
    for entry in os.listdir(USERS):
        try:
            pid = int(entry)
        except ValueError:
            continue
        if pid == me:
            continue
        if _pid_alive(pid):
            others.append(pid)
        else:  # a session that died without leaving
            try:
                os.unlink(os.path.join(USERS, entry))
            except FileNotFoundError:
                pass
    return others


def acquire(names, install=True):
    """Register this session, install (idempotent) and start names; returns Peers."""
    names = [n for n in ALL_PEERS if n in set(names)]
    me = os.path.join(USERS, str(os.getpid()))
    with _users_lock():
        open(me, "w").close()
        before = running(names)
        try:
            if install:
                _run("install", *names)
            r = _run("start", *names)
        except BaseException:
            os.unlink(me)
            raise
        finally:
            # whatever this call started (even if a later peer failed) is harness-owned
            for n in running(names) - before:
                open(os.path.join(RUN, f"{n}.harness"), "w").close()
    env = {}
    for line in r.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            env[key.strip()] = value.strip()
    return Peers(names, env)


def release(stop=True):
    """Unregister; if no other session uses the peers, stop the ones a harness session started."""
    with _users_lock():
        try:
            os.unlink(os.path.join(USERS, str(os.getpid())))
        except FileNotFoundError:
            pass
        if not stop or _other_users():
            return []
        ours = [n for n in ALL_PEERS if os.path.exists(os.path.join(RUN, f"{n}.harness"))]
        if ours:
            _run("stop", *ours)
            for n in ours:
                os.unlink(os.path.join(RUN, f"{n}.harness"))
        return ours
