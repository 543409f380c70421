"""esmd-funchost (tests/funchost): the test function host, started per test on a free port."""

import json
import os

from . import http
from .procs import REPO, GiveUp, Proc, free_port, wait_until


def funchost_bin():
    return os.environ.get("FUNCHOST_BIN", os.path.join(REPO, "build", "esmd-funchost"))


class Funchost:
    """A running esmd-funchost.

    url_lambda(name)  Lambda Invoke API URL of function `name`
    url_http(name)    plain HTTP (OpenFaaS-style) URL of function `name`
    invocations(fn)   parsed JSONL log lines (optionally only those of function fn)
    control(name, mode, **kw)  POST /_control/<name> {"mode": mode, ...}
    """

    def __init__(self, workdir, marker=None, binary=None, ready_timeout=15.0):
        self.binary = binary or funchost_bin()
        if not os.path.exists(self.binary):
            raise FileNotFoundError(f"{self.binary} not found: build it first (scripts/build.sh) "
                                    "or set FUNCHOST_BIN")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(str(workdir), f"funchost-{self.port}.inv.jsonl")
        self.out_path = os.path.join(str(workdir), f"funchost-{self.port}.out")
        argv = [self.binary, "--listen", f"127.0.0.1:{self.port}", "--log", self.log_path]
        if marker:
            argv += ["--marker", marker]
        self.proc = Proc(argv, self.out_path)
        try:
            self.wait_ready(ready_timeout)
        except BaseException:
            self.proc.stop(timeout=5)
            raise

    def wait_ready(self, timeout=15.0):
        def ready():
            if not self.proc.alive():
                raise GiveUp(f"esmd-funchost exited (rc {self.proc.returncode()}):\n"
                                     f"{self.proc.log_tail()}")
            return http.ok(self.base + "/healthz")

        wait_until(ready, timeout, f"esmd-funchost GET {self.base}/healthz = 200")

    def url_lambda(self, name):
        return f"{self.base}/2015-03-31/functions/{name}/invocations"

    def url_http(self, name):
        return f"{self.base}/function/{name}"

    def control(self, name, mode, **kw):
        status, _, body = http.post_json(f"{self.base}/_control/{name}", {"mode": mode, **kw})
        if status // 100 != 2:
            raise AssertionError(f"funchost control {name} {mode}: HTTP {status} {body[:200]!r}")
        return body

    def invocations(self, fn=None):
        """Every complete JSONL line of the invocation log (a torn last line is skipped)."""
        out = []
        try:
            with open(self.log_path, "r", errors="replace") as f:
                for line in f:
                    if not line.endswith("\n"):
                        break
                    line = line.strip()
                    if line:
                        rec = json.loads(line)
                        if fn is None or rec.get("fn") == fn:
                            out.append(rec)
        except FileNotFoundError:
            pass
        return out

    def wait_invocations(self, count, fn=None, timeout=15.0, what=None):
        """Wait until at least `count` invocations (of fn) are logged; returns them."""
        return wait_until(lambda: (lambda inv: inv if len(inv) >= count else None)(self.invocations(fn)),
                          timeout, what or f"{count} invocations of {fn or 'any function'}")

    def payloads(self, fn=None):
        """All payloads delivered to fn, in log order (flattened over invocations)."""
        return [p for inv in self.invocations(fn) for p in inv.get("payloads", [])]

    def stop(self):
        return self.proc.stop()
