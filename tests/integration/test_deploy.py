"""deploy/: the systemd unit verifies (systemd-analyze verify, with no "Unknown key"), the
compose file validates (docker-compose 1.29 `config -q`, no engine needed), the example
configs pass `esmd --check-config`, and the Dockerfile builds with the packages of
scripts/install-deps.sh. Debian's docker-compose v1 validates without an engine, and
systemd-analyze verify works without systemd as PID 1."""

import os
import re
import shutil
import subprocess

import pytest

from helpers.esmd import check_config, esmd_bin
from helpers.procs import REPO

DEPLOY = os.path.join(REPO, "deploy")
UNIT = os.path.join(DEPLOY, "esmd.service")
COMPOSE = os.path.join(DEPLOY, "docker-compose.yml")


def need(tool):
    if not shutil.which(tool):
        pytest.skip(f"{tool} is not installed (scripts/install-deps.sh installs it)")


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, **kw)


def verify_unit(text, workdir):
    path = os.path.join(str(workdir), "esmd.service")
    with open(path, "w") as f:
        f.write(text.replace("/usr/bin/esmd", esmd_bin()))
    return run(["systemd-analyze", "verify", path])


def unit_settings(text):
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z]+)=(.*)$", line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2))
    return out


def test_unit_file_verifies(workdir):
    need("systemd-analyze")
    text = open(UNIT).read()
    r = verify_unit(text, workdir)
    assert r.returncode == 0, r.stderr
    for bad in ("Unknown key", "Unknown section", "Invalid", "Failed to parse"):
        assert bad not in r.stderr, r.stderr


def test_unit_check_catches_a_typo(workdir):
    """The check above can fail: a misspelt hardening key only warns, with rc 0."""
    need("systemd-analyze")
    text = open(UNIT).read().replace("ProtectSystem=strict", "ProtectSytem=strict")
    r = verify_unit(text, workdir)
    assert "Unknown key" in r.stderr


def test_unit_has_the_service_contract():
    s = unit_settings(open(UNIT).read())
    assert s["Type"] == ["notify"]
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["ExecStart"] == ["/usr/bin/esmd --config /etc/esmd/esmd.json"]
    assert s["StateDirectory"] == ["esmd"]
    assert s["DynamicUser"] == ["yes"]
    assert s["EnvironmentFile"] == ["-/etc/esmd/env"]
    assert "WatchdogSec" in s
    for key, value in (("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"),
                       ("PrivateTmp", "yes"), ("ProtectHome", "yes"),
                       ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
                       ("ProtectKernelTunables", "yes"), ("ProtectKernelModules", "yes"),
                       ("ProtectKernelLogs", "yes"), ("MemoryDenyWriteExecute", "yes")):
        assert s.get(key) == [value], key
    assert "@system-service" in s["SystemCallFilter"]


def test_compose_file_validates(workdir):
    need("docker-compose")
    r = run(["docker-compose", "-f", COMPOSE, "config", "-q"])
    assert r.returncode == 0, r.stdout + r.stderr
    r = run(["docker-compose", "-f", COMPOSE, "config", "--services"])
    assert r.returncode == 0, r.stderr
    assert set(r.stdout.split()) == {"sqs", "kinesis", "kafka", "function", "esmd"}
    # The validation can fail: an unknown key is refused.
    bad = os.path.join(DEPLOY, ".compose-bad-test.yml")
    try:
        with open(bad, "w") as f:
            f.write(open(COMPOSE).read().replace("    stop_grace_period: 45s",
                                                 "    stop_grace_period: 45s\n    bogus_key: 1"))
        r = run(["docker-compose", "-f", bad, "config", "-q"])
        assert r.returncode != 0 and "bogus_key" in r.stdout + r.stderr
    finally:
        os.unlink(bad)


def test_compose_wiring():
    text = open(COMPOSE).read()
    assert "apache/kafka:" in text and "KAFKA_PROCESS_ROLES: broker,controller" in text
    assert "elasticmq" in text and "kinesis-mock" in text
    assert "dockerfile: deploy/Dockerfile" in text
    assert "./compose/esmd.json:/etc/esmd/esmd.json" in text


def test_example_configs_are_valid(workdir):
    rc, out = check_config(open(os.path.join(DEPLOY, "compose", "esmd.json")).read(), workdir)
    assert rc == 0, out
    assert "3 event source mappings" in out
    env = dict(os.environ, ORDERS_TOKEN="secret")
    r = run([esmd_bin(), "--check-config", os.path.join(DEPLOY, "esmd.json")], env=env)
    assert r.returncode == 0, r.stdout + r.stderr


def test_dockerfile_uses_the_install_deps_packages():
    deps = open(os.path.join(REPO, "scripts", "install-deps.sh")).read()
    m = re.search(r"pkgs=\((.*?)\)", deps, re.S)
    dev = {p for p in m.group(1).split() if p.endswith("-dev")}
    docker = open(os.path.join(DEPLOY, "Dockerfile")).read()
    build_stage = docker.split("FROM debian:12-slim")[0]
    missing = {p for p in dev if p not in build_stage and not p.startswith("libclang")}
    assert not missing, f"build stage lacks {sorted(missing)}"
    assert "FROM debian:12 AS build" in docker
    runtime = docker.split("FROM debian:12-slim")[1]
    # Every shared library the built binary links (from our -dev packages) is installed.
    r = run(["ldd", esmd_bin()])
    sonames = {"libev.so.4": "libev4", "libcurl.so.4": "libcurl4", "librdkafka.so.1": "librdkafka1",
               "libcjson.so.1": "libcjson1", "libsqlite3.so.0": "libsqlite3-0",
               "libmicrohttpd.so.12": "libmicrohttpd12", "libsystemd.so.0": "libsystemd0"}
    for so, pkg in sonames.items():
        if so in r.stdout:
            assert pkg in runtime, f"{so} needs {pkg} in the runtime stage"
