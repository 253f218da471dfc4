# -*- test-case-name: tests.integration.test_operations -*-
"""
Helpers for the operations integration tests: a penbal with a control port, its log, and
clients that know which backend they reached.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from penbal.testing.backends import NameBackend
from penbal.testing.process import PenbalProcess, accepts, free_port, wait_for

CTL = str(Path(sys.executable).parent / "penbal-ctl")


class NamedClient:
    """A client connection through penbal that read its backend's name first."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.name = self.file.readline().decode().strip()

    def echo(self, data: bytes) -> bytes:
        """Send C{data} and read it back."""
        self.sock.sendall(data)
        got = b""
        while len(got) < len(data):
            chunk = self.file.read1(len(data) - len(got))
            if not chunk:
                break
            got += chunk
        return got

    def close(self) -> None:
        self.file.close()
        self.sock.close()


class OperationsCase(SynchronousTestCase):
    """Start a penbal with a control port in front of named backends."""

    def backends(self, *names: str) -> list[NameBackend]:
        found = []
        for name in names:
            backend = NameBackend(name)
            self.addCleanup(backend.stop)
            found.append(backend)
        return found

    def start(self, backends: Sequence[NameBackend], *options: str,
              control: str | None = None) -> int:
        """Run penbal on a free port with C{-C control} (a free loopback port by default)."""
        self.port = free_port()
        if control is None:
            control = f"127.0.0.1:{free_port()}"
        self.control = control
        self.proc = PenbalProcess(
            ["-C", control, *options, f"127.0.0.1:{self.port}", *(b.address for b in backends)],
            listen_port=self.port,
        )
        self.addCleanup(self.proc.stop)
        return self.port

    def ctl(self, *words: str, expect: int = 0) -> str:
        """Run the penbal-ctl console script; check its exit status."""
        result = subprocess.run([CTL, self.control, *words], capture_output=True, text=True,
                                timeout=30)
        self.assertEqual(result.returncode, expect, (words, result.stdout, result.stderr))
        return result.stdout

    def status(self) -> dict[str, Any]:
        """The JSON status, through the control port."""
        data: dict[str, Any] = json.loads(self.ctl("status", "json"))
        return data

    def client(self) -> NamedClient:
        client = NamedClient(self.port)
        self.addCleanup(client.close)
        return client

    def log_events(self) -> list[dict[str, Any]]:
        """The penbal process's JSON log events so far."""
        events = []
        for line in self.proc.log().splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
        return events


__all__ = ["CTL", "NamedClient", "OperationsCase", "accepts", "free_port", "wait_for"]
