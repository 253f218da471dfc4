# -*- test-case-name: tests.control.test_client -*-
"""
Tests of penbal-ctl against a real control port on loopback.
"""

from __future__ import annotations

import io
import socket
from typing import Any

from twisted.internet import reactor as global_reactor
from twisted.internet import threads
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.trial.unittest import SynchronousTestCase, TestCase

from penbal.control.client import ClientError, main, parse_target
from penbal.control.executor import Executor
from penbal.control.protocol import ControlFactory
from penbal.testing.process import unix_socket_path
from tests.control.fixtures import make_runtime


class TargetTests(SynchronousTestCase):
    """The address syntax."""

    def test_forms(self) -> None:
        """PORT, HOST:PORT, [V6]:PORT and unix:/path."""
        self.assertEqual(parse_target("8888"), (socket.AF_INET, ("127.0.0.1", 8888)))
        self.assertEqual(parse_target("127.10.0.1:1"), (socket.AF_INET, ("127.10.0.1", 1)))
        self.assertEqual(parse_target("[::1]:2"), (socket.AF_INET6, ("::1", 2)))
        self.assertEqual(parse_target("unix:/run/x"), (socket.AF_UNIX, "/run/x"))

    def test_bad(self) -> None:
        """A bad address is one error."""
        for text in ("x", "1:2:x", "[::1]", "unix:", "70000"):
            self.assertRaises(ClientError, parse_target, text)

    def test_usage(self) -> None:
        """Without a command: usage on stderr, status 2."""
        err = io.StringIO()
        self.assertEqual(main(["8888"], io.StringIO(), err), 2)
        self.assertIn("usage: penbal-ctl", err.getvalue())

    def test_unreachable(self) -> None:
        """Nothing listening: one error line, status 2."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        err = io.StringIO()
        self.assertEqual(main([f"127.0.0.1:{port}", "servers"], io.StringIO(), err), 2)
        self.assertTrue(err.getvalue().startswith("penbal-ctl: error: cannot connect"))


reactor: Any = global_reactor


class LiveTests(TestCase):
    """penbal-ctl talking to a control port in this process's reactor."""

    def setUp(self) -> None:
        self.runtime, _ = make_runtime()
        factory = ControlFactory(Executor(self.runtime), reactor)
        self.tcp = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(self.tcp.stopListening)
        self.path = unix_socket_path("control.sock", self.addCleanup)
        self.unix = reactor.listenUNIX(self.path, factory, mode=0o600)
        self.addCleanup(self.unix.stopListening)

    def ctl(self, *args: str) -> Deferred[tuple[int, str]]:
        def run() -> tuple[int, str]:
            out = io.StringIO()
            status = main(list(args), out, io.StringIO())
            return status, out.getvalue()

        return threads.deferToThread(run)

    def test_tcp(self) -> Deferred[None]:
        """penbal-ctl HOST:PORT servers prints the table; an error line gives status 1."""
        port = self.tcp.getHost().port

        async def check() -> None:
            status, out = await self.ctl(f"127.0.0.1:{port}", "servers")
            self.assertEqual(status, 0)
            self.assertEqual(len(out.splitlines()), 2)
            status, out = await self.ctl(f"127.0.0.1:{port}", "server", "9", "drain")
            self.assertEqual(status, 1)
            self.assertTrue(out.startswith("error: no server 9"))

        return ensureDeferred(check())

    def test_unix(self) -> Deferred[None]:
        """penbal-ctl unix:/path works, and the words of the command are joined."""

        async def check() -> None:
            status, out = await self.ctl(f"unix:{self.path}", "server", "1", "drain")
            self.assertEqual((status, out), (0, "server 1 127.0.0.1:4001 is now draining\n"))

        return ensureDeferred(check())
