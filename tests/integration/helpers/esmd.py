"""Starting esmd under test: a config dict becomes a file, the daemon runs in its own group."""

import json
import os
import signal

from . import http
from .procs import REPO, GiveUp, Proc, free_port, wait_until


def esmd_bin():
    return os.environ.get("ESMD_BIN", os.path.join(REPO, "build", "esmd"))


def aws_block(peers, region="us-east-1"):
    """The config's "aws" block pointing at the running emulators (SNS is fauxqs too)."""
    eps = {}
    if peers.sqs_endpoint:
        eps["sqs"] = peers.sqs_endpoint
        eps["sns"] = peers.sqs_endpoint
    if peers.kinesis_endpoint:
        eps["kinesis"] = peers.kinesis_endpoint
    return {"region": region, "endpoints": eps}


class Esmd:
    """A running esmd. stop() -> SIGTERM + wait -> return code; kill9(); restart(); log()."""

    def __init__(self, config, workdir, name="esmd", env=None, binary=None, ready=True, ready_timeout=20.0):
        self.binary = binary or esmd_bin()
        if not os.path.exists(self.binary):
            raise FileNotFoundError(f"{self.binary} not found: build it (scripts/build.sh) or set ESMD_BIN")
        self.workdir = str(workdir)
        self.name = name
        self.config_path = os.path.join(self.workdir, f"{name}.json")
        self.stderr_path = os.path.join(self.workdir, f"{name}.stderr")
        self.env = dict(os.environ)
        self.env.update({"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                         "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"})
        self.env.update(env or {})
        self.config = None
        self.write_config(config)
        self.proc = None
        self.start(ready=ready, ready_timeout=ready_timeout)

    def write_config(self, config):
        """Write config (a dict) to the config file; state_dir and admin_listen get defaults."""
        cfg = json.loads(json.dumps(config))
        cfg.setdefault("state_dir", os.path.join(self.workdir, f"{self.name}-state"))
        cfg.setdefault("admin_listen", f"127.0.0.1:{free_port()}")
        os.makedirs(cfg["state_dir"], exist_ok=True)
        with open(self.config_path + ".tmp", "w") as f:
            json.dump(cfg, f, indent=2)
        os.replace(self.config_path + ".tmp", self.config_path)
        self.config = cfg
        return cfg

    @property
    def admin_url(self):
        return "http://" + self.config["admin_listen"]

    def start(self, ready=True, ready_timeout=20.0):
        self.proc = Proc([self.binary, "--config", self.config_path], self.stderr_path, env=self.env)
        if ready:
            try:
                self.wait_ready(ready_timeout)
            except BaseException:
                self.proc.stop(timeout=5)
                raise
        return self

    def wait_ready(self, timeout=20.0, path="/healthz"):
        def up():
            if not self.proc.alive():
                raise GiveUp(f"esmd exited (rc {self.proc.returncode()}):\n{self.proc.log_tail()}")
            return http.ok(self.admin_url + path)

        wait_until(up, timeout, f"esmd GET {self.admin_url}{path} = 200")

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def stop(self, timeout=20.0):
        """SIGTERM, wait up to timeout (then SIGKILL); returns the exit code."""
        return self.proc.stop(timeout=timeout)

    def kill9(self):
        return self.proc.kill9()

    def signal(self, sig=signal.SIGHUP):
        os.kill(self.proc.pid, sig)

    def reload(self, config):
        """Write a new config and send SIGHUP."""
        self.write_config(config)
        self.signal(signal.SIGHUP)

    def restart(self, config=None, ready=True):
        """Stop (SIGTERM) if running, optionally rewrite the config, start again."""
        if self.alive():
            self.stop()
        if config is not None:
            self.write_config(config)
        return self.start(ready=ready)

    def log(self):
        return self.proc.log() if self.proc else ""

    def status(self):
        """GET /status as JSON."""
        code, _, body = http.get(self.admin_url + "/status")
        if code != 200:
            raise AssertionError(f"esmd /status: HTTP {code}")
        return json.loads(body)

    def metrics(self):
        code, _, body = http.get(self.admin_url + "/metrics")
        if code != 200:
            raise AssertionError(f"esmd /metrics: HTTP {code}")
        return body.decode()

    def metric(self, name, **labels):
        """The value of one sample of /metrics whose labels include `labels`; None if absent."""
        for line in self.metrics().splitlines():
            if not line.startswith(name + "{"):
                continue
            head, _, value = line.rpartition(" ")
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                return float(value)
        return None


def check_config(config, workdir, binary=None):
    """Run `esmd --check-config` on a config dict; returns (rc, stdout+stderr)."""
    import subprocess

    path = os.path.join(str(workdir), "check.json")
    with open(path, "w") as f:
        f.write(config if isinstance(config, str) else json.dumps(config))
    r = subprocess.run([binary or esmd_bin(), "--check-config", path], capture_output=True, text=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout + r.stderr
