"""Process and timing helpers: free ports, deadline polling, processes in their own group."""

import os
import signal
import socket
import subprocess
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


class WaitTimeout(AssertionError):
    """Raised by wait_until when the condition did not hold before the deadline."""


class GiveUp(AssertionError):
    """Raise from a wait_until predicate when waiting longer cannot help (e.g. the process died)."""


def wait_until(predicate, timeout=10.0, what="condition", interval=0.05):
    """Poll predicate() until it returns a truthy value; return that value.

    Fails with an AssertionError naming `what` (and the last exception the predicate
    raised, if any) when `timeout` seconds pass first; a GiveUp raised by the predicate ends
    the wait at once. Use this instead of sleeps.
    """
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last_exc = None
        except GiveUp:
            raise
        except Exception as exc:  # noqa: BLE001 - reported in the failure message
            last_exc = exc
        if time.monotonic() >= deadline:
            msg = f"timed out after {timeout:g} s waiting for {what}"
            if last_exc is not None:
                msg += f" (last error: {type(last_exc).__name__}: {last_exc})"
            raise WaitTimeout(msg)
        time.sleep(interval)


def free_port(host="127.0.0.1"):
    """A TCP port that is free on host right now (bound with port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Proc:
    """A child process started in its own process group (session), killed by PID at cleanup.

    stdout+stderr go to `log_path`. Every Proc ever started is tracked in `Proc.live` so
    that the conftest can kill leftovers even when a test fails mid-way.
    """

    live = set()

    def __init__(self, argv, log_path, env=None, cwd=None):
        self.argv = [str(a) for a in argv]
        self.log_path = str(log_path)
        self.env = env
        self.cwd = cwd
        self.popen = None
        self.start()

    def start(self):
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,  # own session + process group, pgid == pid
                close_fds=True,
            )
        Proc.live.add(self)
        return self

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def returncode(self):
        return self.popen.poll() if self.popen else None

    def _signal_group(self, sig):
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout=10.0, sig=signal.SIGTERM):
        """Send sig to the group, wait up to timeout, then SIGKILL. Returns the exit code."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self._signal_group(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.popen.wait(timeout=10)
        # children of the leader that outlived it
        self._signal_group(signal.SIGKILL)
        Proc.live.discard(self)
        return self.popen.returncode

    def kill9(self):
        """SIGKILL the whole group at once (crash simulation). Returns the exit code."""
        if self.popen is None:
            return None
        self._signal_group(signal.SIGKILL)
        self.popen.wait(timeout=10)
        Proc.live.discard(self)
        return self.popen.returncode

    def log(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_tail(self, n=40):
        return "\n".join(self.log().splitlines()[-n:])

    @classmethod
    def kill_all(cls):
        for p in list(cls.live):
            p.stop(timeout=5)
