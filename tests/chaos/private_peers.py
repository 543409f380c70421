"""Peers of a chaos scenario's own, on free ports, so they can be stopped, frozen and restarted
without pulling the shared peers (scripts/peers.sh) out from under other test sessions.

PrivateFauxqs  fauxqs (SQS/SNS) with SQLite persistence in the scenario's folder: a restart
               keeps queues and messages, as a real SQS outage would.
PrivateKinesis kinesis-local (in memory: it can be frozen and thawed, not restarted).
"""

import os
import signal

import pytest

from helpers import http
from helpers.procs import REPO, Proc, free_port, wait_until

NPMDIR = os.path.join(REPO, ".peers", "npm")
NODE22 = os.path.join(NPMDIR, "node_modules", "node22", "bin", "node")

# As tests/peers/fauxqs-start.mjs: loopback only (fauxqs itself listens on 0.0.0.0), quiet.
FAUXQS_START = """
import net from "node:net";
import {{ startFauxqs }} from {app!r};
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {{
  if (args[0] && typeof args[0] === "object" && (args[0].host === "0.0.0.0" || args[0].host === "::")) {{
    args[0] = {{ ...args[0], host: "127.0.0.1" }};
  }} else if (typeof args[0] === "number" && (args[1] === "0.0.0.0" || args[1] === "::")) {{
    args[1] = "127.0.0.1";
  }}
  return listen.apply(this, args);
}};
const server = await startFauxqs({{ port: {port}, logger: false, dataDir: {data!r} }});
console.log("fauxqs listening on " + server.port);
const stop = () => process.exit(0);
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
"""


class _Peer:
    proc = None

    def freeze(self):
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def thaw(self):
        os.killpg(self.proc.pid, signal.SIGCONT)

    def stop(self):
        if self.proc is not None:
            try:
                self.thaw()
            except ProcessLookupError:
                pass
            self.proc.stop(timeout=10)
            self.proc = None


class PrivateFauxqs(_Peer):
    def __init__(self, workdir):
        app = os.path.join(NPMDIR, "node_modules", "fauxqs", "dist", "app.js")
        if not (os.path.exists(NODE22) and os.path.exists(app)):
            pytest.skip("fauxqs not installed (scripts/peers.sh install sqs)")
        self.dir = os.path.join(str(workdir), "fauxqs")
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.script = os.path.join(self.dir, "start.mjs")
        with open(self.script, "w") as f:
            f.write(FAUXQS_START.format(app=app, port=self.port, data=os.path.join(self.dir, "data")))
        self.start()

    def start(self):
        self.proc = Proc([NODE22, "--no-warnings", self.script], os.path.join(self.dir, "fauxqs.log"))
        wait_until(lambda: self.proc.alive() and http.ok(self.endpoint + "/health"), 30,
                   f"private fauxqs on {self.endpoint}")


class PrivateKinesis(_Peer):
    def __init__(self, workdir):
        main = os.path.join(NPMDIR, "node_modules", "kinesis-local", "main.js")
        if not (os.path.exists(NODE22) and os.path.exists(main)):
            pytest.skip("kinesis-local not installed (scripts/peers.sh install kinesis)")
        self.dir = os.path.join(str(workdir), "kinesis")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        d = "0ms"
        env = dict(os.environ, KINESIS_MOCK_CERT_PATH=os.path.join(NPMDIR, "node_modules", "kinesis-local",
                                                                  "server.json"),
                   KINESIS_MOCK_PLAIN_PORT=str(self.port), KINESIS_MOCK_TLS_PORT=str(free_port()),
                   LOG_LEVEL="WARN", AWS_REGION="us-east-1", AWS_ACCOUNT_ID="000000000000",
                   SHARD_LIMIT="1000", CREATE_STREAM_DURATION=d, DELETE_STREAM_DURATION=d)
        self.proc = Proc([NODE22, os.path.join(REPO, "tests", "peers", "kinesis-start.cjs"), main],
                         os.path.join(self.dir, "kinesis.log"), env=env, cwd=NPMDIR)
        wait_until(lambda: self.proc.alive() and http.ok(self.endpoint + "/healthcheck"), 60,
                   f"private kinesis-local on {self.endpoint}")
