"""Fixtures for esmd's integration tests (real peers: fauxqs, kinesis-local, Apache Kafka).

Which peers a session starts: the union over the collected tests that use the `peers`
fixture (directly or through sqs/kinesis/kafka) of
  - the test's `@pytest.mark.peers("sqs", "kafka")` marker, else
  - its module's `PEERS = ("sqs",)` list, else
  - all three.
Peers that were already running are reused. Peers started by a harness session are stopped by
the last pytest session that leaves (sessions may run in parallel; see helpers/peers.py); peers
started by hand are left running. ESMD_KEEP_PEERS=1 keeps everything running.

Fixtures: peers (endpoints), sqs / kinesis (boto3 clients), kafka (helpers bound to the
broker), funchost (esmd-funchost on a free port), esmd (factory: config dict -> running
daemon), workdir (a per-test temp folder). Helper modules live in helpers/.
"""

import os

import pytest

from helpers import aws
from helpers import peers as peers_mod
from helpers.esmd import Esmd
from helpers.funchost import Funchost
from helpers.kafka import Kafka
from helpers.procs import Proc

PEER_FIXTURES = {"peers", "sqs", "kinesis", "kafka"}
SANITIZER_REPORTS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", ": runtime error: ")


def pytest_configure(config):
    config.addinivalue_line("markers", "peers(*names): test peers the test needs (sqs, kinesis, kafka)")


def _needed_peers(session):
    names = set()
    for item in session.items:
        if not PEER_FIXTURES & set(getattr(item, "fixturenames", ())):
            continue
        mark = item.get_closest_marker("peers")
        if mark is not None:
            names.update(mark.args)
        elif getattr(item.module, "PEERS", None) is not None:
            names.update(item.module.PEERS)
        else:
            names.update(peers_mod.ALL_PEERS)
    unknown = names - set(peers_mod.ALL_PEERS)
    if unknown:
        raise pytest.UsageError(f"unknown peers {sorted(unknown)}; known: {peers_mod.ALL_PEERS}")
    return names or set(peers_mod.ALL_PEERS)


@pytest.fixture(scope="session")
def peers(request):
    names = _needed_peers(request.session)
    p = peers_mod.acquire(names)
    yield p
    peers_mod.release(stop=not os.environ.get("ESMD_KEEP_PEERS"))


def _require(peers, name):
    if name not in peers.names:
        pytest.fail(f"peer {name!r} was not started: add it to the test's @pytest.mark.peers or the "
                    f"module's PEERS")


@pytest.fixture(scope="session")
def sqs(peers):
    _require(peers, "sqs")
    return aws.client("sqs", peers.sqs_endpoint)


@pytest.fixture(scope="session")
def kinesis(peers):
    _require(peers, "kinesis")
    return aws.client("kinesis", peers.kinesis_endpoint)


@pytest.fixture(scope="session")
def kafka(peers):
    _require(peers, "kafka")
    return Kafka(peers.kafka_bootstrap)


@pytest.fixture
def workdir(tmp_path):
    return tmp_path


@pytest.fixture
def funchost(tmp_path):
    fh = Funchost(tmp_path)
    yield fh
    fh.stop()


@pytest.fixture
def esmd(tmp_path):
    """Factory: esmd(config_dict, name="esmd", env=None, ready=True) -> Esmd handle.

    The config is written to <tmp>/<name>.json (state_dir and admin_listen get defaults when
    absent); stderr goes to <tmp>/<name>.stderr. Every daemon is stopped at teardown.
    """
    started = []

    def make(config, name="esmd", **kw):
        e = Esmd(config, tmp_path, name=name, **kw)
        started.append(e)
        return e

    yield make
    for e in started:
        if e.proc is not None:
            e.proc.stop(timeout=10)
    # An ASan/UBSan build reports into its stderr and may still exit 0 (a leak at a kill): a report
    # fails the test that ran it.
    for e in started:
        try:
            with open(e.stderr_path, errors="replace") as f:
                log = f.read()
        except FileNotFoundError:
            continue
        for mark in SANITIZER_REPORTS:
            at = log.find(mark)
            if at >= 0:
                pytest.fail(f"esmd {e.name}: {mark.strip()} in {e.stderr_path}:\n{log[at:at + 3000]}")


def pytest_sessionfinish(session, exitstatus):
    # Anything a failing test or fixture left behind (all started in their own group).
    Proc.kill_all()
