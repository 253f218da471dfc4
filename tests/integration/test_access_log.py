# -*- test-case-name: tests.integration.test_access_log -*-
"""
The access log of a real penbal: rotated as logrotate does it (move the file, then SIGUSR1 or
SIGHUP), with and without a config file; written at stop.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from penbal.testing.backends import NameBackend
from penbal.testing.process import PenbalProcess, free_port, wait_for


def visit(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := s.recv(100):
            reply += chunk
        return reply


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


class RotationTests(SynchronousTestCase):
    def rotate(self, *options: str) -> None:
        backend = NameBackend("db")
        self.addCleanup(backend.stop)
        port = free_port()
        access = Path(self.mktemp()).absolute()
        proc = PenbalProcess(["-l", str(access), *options, f"127.0.0.1:{port}",
                              backend.address], listen_port=port, probe=False)
        self.addCleanup(proc.stop)
        for number, signum in enumerate((signal.SIGUSR1, signal.SIGHUP), start=1):
            self.assertEqual(visit(port), b"db\n")
            wait_for(lambda: len(lines(access)) == 1, 10, "the line before the rotation")
            os.rename(access, f"{access}.{number}")
            proc.process.send_signal(signum)
            wait_for(access.exists, 10, f"the access log reopened on {signum!r}")
            self.assertEqual(visit(port), b"db\n")
            wait_for(lambda: len(lines(access)) == 1, 10, "the line after the rotation")
            self.assertEqual(len(lines(Path(f"{access}.{number}"))), 1)
            os.rename(access, f"{access}.{number}b")
            proc.process.send_signal(signal.SIGUSR1)
            wait_for(access.exists, 10, "the access log reopened")
        self.assertEqual(visit(port), b"db\n")
        self.assertEqual(proc.stop(), 0)  # at once: the line is written at stop
        self.assertEqual(len(lines(access)), 1)
        self.assertNotIn("bytes in", proc.log())  # never an event of the event log

    def test_rotation_without_config_file(self) -> None:
        """Without -F, SIGUSR1 and SIGHUP both reopen the access log."""
        self.rotate()

    def test_rotation_with_config_file(self) -> None:
        """With -F, the same (SIGHUP also re-reads the file)."""
        config = Path(self.mktemp())
        config.write_text("conn_max 50\n")
        self.rotate("-F", str(config))
