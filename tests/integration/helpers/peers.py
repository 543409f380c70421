"""Drives scripts/peers.sh: which peers run, start the missing ones, stop what we started."""

import os
import subprocess

from .procs import REPO

PEERS_SH = os.path.join(REPO, "scripts", "peers.sh")
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


def start(names, install=True):
    """Install (idempotent) and start names; returns (Peers, set of names this call started)."""
    names = [n for n in ALL_PEERS if n in set(names)]
    before = running(names)
    if install:
        _run("install", *names)
    r = _run("start", *names)
    env = {}
    for line in r.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            env[key.strip()] = value.strip()
    return Peers(names, env), set(names) - before


def stop(names):
    if names:
        _run("stop", *[n for n in ALL_PEERS if n in set(names)])
