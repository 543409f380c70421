"""esm_invoker against a real Lambda Invoke API host: serverless-offline 13 running
deploy/functions/sls (started and stopped by tests/integration/lambda_host.sh)."""

import os
import subprocess

import pytest

from helpers.procs import REPO, free_port
from test_invoker import SQS_EVENT, one

PEERS = ()
SCRIPT = os.path.join(REPO, "tests", "integration", "lambda_host.sh")


@pytest.fixture(scope="module")
def lambda_host(tmp_path_factory):
    env = dict(os.environ)
    env.setdefault("LAMBDA_HOST_DIR", os.path.join(REPO, ".peers", "lambda-host"))
    r = subprocess.run([SCRIPT, "start", str(free_port())], capture_output=True, text=True,
                       timeout=600, env=env, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"lambda_host.sh start failed:\n{r.stderr}{r.stdout}"
    endpoint = [ln.split("=", 1)[1] for ln in r.stdout.splitlines() if ln.startswith("LAMBDA_ENDPOINT=")][0]
    yield endpoint
    subprocess.run([SCRIPT, "stop"], timeout=60, env=env, stdin=subprocess.DEVNULL)


def url(endpoint, fn):
    return f"{endpoint}/2015-03-31/functions/esm-test-dev-{fn}/invocations"


def test_success(lambda_host):
    r = one(url(lambda_host, "echo"), payload=SQS_EVENT)
    assert r["class"] == "success" and r["status"] == 200


def test_function_error(lambda_host):
    r = one(url(lambda_host, "fail"), payload=SQS_EVENT)
    assert r["class"] == "function_error" and r["function_error"] == "Unhandled"
    assert "the function failed" in r["body"]


def test_partial(lambda_host):
    r = one(url(lambda_host, "partial"), payload=SQS_EVENT, rbif="m-1,m-2,m-3")
    assert r["class"] == "success" and r["rbif"] == "partial" and r["rbif_failed"] == [1]


def test_function_timeout_is_function_error(lambda_host):
    # the host enforces the function's 1 s timeout and answers 200 + Unhandled before our
    # client-side timeout (timeout_seconds + 2 s) fires
    r = one(url(lambda_host, "slow"), payload=SQS_EVENT, timeout_s=2)
    assert r["class"] == "function_error" and r["function_error"] == "Unhandled"
    assert "timeout" in r["body"].lower()


def test_unknown_function_is_misconfiguration(lambda_host):
    # ResourceNotFound: esmd's URL names no function; retried, never counted
    r = one(url(lambda_host, "nope"), payload=SQS_EVENT)
    assert r["class"] == "error" and r["status"] == 404 and r["misconfigured"] is True


def test_signed_request_accepted(lambda_host):
    env = {"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret"}
    r = one(url(lambda_host, "echo"), payload=SQS_EVENT, sign="us-east-1", env=env)
    assert r["class"] == "success"
