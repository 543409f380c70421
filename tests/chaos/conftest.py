"""Fixtures for the chaos scenarios: the integration tests' fixtures (peers, sqs, kinesis, kafka,
funchost, esmd, workdir) reused as they are, plus chaos settings (seed, full mode, results).

The integration conftest is loaded under its own module name so that both folders can be run
in separate pytest sessions without a module-name clash.
"""

import importlib.util
import os
import random
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
INTEGRATION = os.path.join(HERE, "..", "integration")
sys.path.insert(0, INTEGRATION)
sys.path.insert(0, HERE)

_spec = importlib.util.spec_from_file_location("esmd_integration_conftest",
                                               os.path.join(INTEGRATION, "conftest.py"))
_ic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ic)

peers = _ic.peers
sqs = _ic.sqs
kinesis = _ic.kinesis
kafka = _ic.kafka
workdir = _ic.workdir
funchost = _ic.funchost
esmd = _ic.esmd
pytest_sessionfinish = _ic.pytest_sessionfinish


def pytest_configure(config):
    _ic.pytest_configure(config)
    config.addinivalue_line("markers", "full: only with CHAOS_FULL=1")


@pytest.fixture
def chaos_rng(request):
    """A random.Random seeded from CHAOS_SEED (default: random); the seed is printed on failure."""
    seed = int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(1 << 30))
    request.node.user_properties.append(("chaos_seed", seed))
    print(f"CHAOS_SEED={seed}")
    return random.Random(seed)


def full_mode():
    return os.environ.get("CHAOS_FULL") == "1"
