# -*- test-case-name: tests.integration.test_tcp_relay -*-
"""
Start a real C{twist penbal} process for a test, wait until it accepts, stop it by pid.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    """A port that was free a moment ago on C{host}."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll C{condition} until true, or fail naming C{what} after C{timeout} seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def accepts(host: str, port: int) -> bool:
    """True if a TCP connect to host:port succeeds now."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def rss_kib(pid: int) -> int:
    """Resident memory of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


class PenbalProcess:
    """A C{twist penbal ARGS} child process with its log in a file."""

    def __init__(self, args: Sequence[str], listen_port: int | None = None,
                 host: str = "127.0.0.1", extra_env: dict[str, str] | None = None) -> None:
        # Logs go to the working directory: trial runs in _trial_temp, so they stay with the run.
        self.log_path = Path(tempfile.mkstemp(prefix="penbal-", suffix=".log", dir=os.getcwd())[1])
        self._log = self.log_path.open("wb")
        env = dict(os.environ, **(extra_env or {}))
        self.process = subprocess.Popen(
            [str(BIN / "twist"), "--log-format", "json", "penbal", *args],
            stdout=self._log, stderr=subprocess.STDOUT, env=env,
        )
        self.pid = self.process.pid
        if listen_port is not None:
            wait_for(lambda: self._alive_and_accepting(host, listen_port), 20,
                     f"penbal to listen on {host}:{listen_port} (log: {self.log_path})")

    def _alive_and_accepting(self, host: str, port: int) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"penbal exited early: {self.log()}")
        return accepts(host, port)

    def log(self) -> str:
        """Everything the process logged so far."""
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, wait; SIGKILL our own pid only if it does not exit in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()
        return self.process.returncode


def run_penbal(args: Sequence[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run C{twist penbal ARGS} to completion (for start-up errors)."""
    return subprocess.run([str(BIN / "twist"), "penbal", *args], capture_output=True,
                          text=True, timeout=timeout)
