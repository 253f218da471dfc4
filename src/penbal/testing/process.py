# -*- test-case-name: tests.integration.test_tcp_relay -*-
"""
Start a real C{twist penbal} process (tests, demo), wait until it listens, stop it by pid.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    """A port that was free a moment ago on C{host}."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def unix_socket_path(name: str, cleanups: Callable[[Callable[[], None]], None]) -> str:
    """A path for a unix socket C{name} in a new directory under the system temp dir.

    Trial's own temp dirs sit under the checkout, and a deep checkout pushes them past
    the 108-byte limit of a unix socket address; C{cleanups} registers the removal.
    """
    directory = tempfile.mkdtemp(prefix="penbal-")
    cleanups(lambda: shutil.rmtree(directory, ignore_errors=True))
    return os.path.join(directory, name)


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


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on TCP C{port}, read from /proc/net/tcp{,6}."""
    wanted = f":{port:04X}"
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[1].endswith(wanted) and fields[3] == "0A":
                inodes.add(fields[9])
    return inodes


def listening(port: int, pid: int) -> bool:
    """True if process C{pid} listens on TCP C{port}.  Read from /proc: a probe connection
    would count as a client and move the balancer's round-robin turn, and another process
    that took the port in the meantime is not mistaken for ours."""
    inodes = _listening_inodes(port)
    if not inodes:
        return False
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


def wait_listening(port: int, process: subprocess.Popen[bytes], what: str,
                   timeout: float = 20) -> None:
    """Wait until C{process} listens on C{port}; fail if it exits or the deadline passes."""
    deadline = time.monotonic() + timeout
    while not listening(port, process.pid):
        if process.poll() is not None:
            raise ExitedEarlyError(f"{what} exited with status {process.returncode} before "
                              f"listening on port {port}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not listen on port {port} within {timeout}s")
        time.sleep(0.02)


class ExitedEarlyError(AssertionError):
    """The balancer exited before listening (most often: another process took its port)."""


class PenbalProcess:
    """A C{twist penbal ARGS} child process with its log in a file."""

    def __init__(self, args: Sequence[str], listen_port: int | None = None,
                 host: str = "127.0.0.1", extra_env: dict[str, str] | None = None,
                 probe: bool = True, reactor: str | None = None,
                 log_dir: str | None = None, access_log: bool = False) -> None:
        # By default logs go to the working directory: trial runs in _trial_temp, so they stay
        # with the run.
        directory = log_dir or os.getcwd()
        self.log_path = Path(tempfile.mkstemp(prefix="penbal-", suffix=".log", dir=directory)[1])
        #: With C{access_log}, the JSON access log (see L{access_records}).
        self.access_path: Path | None = None
        if access_log:
            self.access_path = Path(tempfile.mkstemp(prefix="penbal-", suffix=".access",
                                                     dir=directory)[1])
            args = ["--access-log", str(self.access_path), "--access-log-format", "json", *args]
        self._log = self.log_path.open("wb")
        env = dict(os.environ, **(extra_env or {}))
        self.process = subprocess.Popen(
            [str(BIN / "twist"), "--log-format", "json",
             *(["--reactor", reactor] if reactor else []), "penbal", *args],
            stdout=self._log, stderr=subprocess.STDOUT, env=env,
        )
        self.pid = self.process.pid
        if listen_port is not None and not probe:
            # No probe connection: it would count as a client and move round-robin's turn.
            wait_listening(listen_port, self.process, f"penbal (log: {self.log_path})")
        elif listen_port is not None:
            wait_for(lambda: self._alive_and_accepting(host, listen_port), 20,
                     f"penbal to listen on {host}:{listen_port} (log: {self.log_path})")

    def _alive_and_accepting(self, host: str, port: int) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"penbal exited early: {self.log()}")
        return accepts(host, port)

    def log(self) -> str:
        """Everything the process logged so far."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def access_records(self) -> list[dict[str, Any]]:
        """The connection records written to the access log so far (it is written at least
        once a second)."""
        assert self.access_path is not None, "started without access_log=True"
        text = self.access_path.read_text(errors="replace")
        return [json.loads(line) for line in text.splitlines() if line.endswith("}")]

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
