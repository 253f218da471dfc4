# -*- test-case-name: tests.test_reactor -*-
"""
Tests of the lean epoll reactor and its plugin.
"""

from __future__ import annotations

import socket

from twisted.application.reactors import getReactorTypes
from twisted.trial.unittest import SynchronousTestCase

from penbal.reactor import LeanEPollReactor


class Reader:
    """A read descriptor over one end of a socket pair, recording its reads."""

    def __init__(self, sock: socket.socket, fail: bool = False) -> None:
        self.sock = sock
        self.fail = fail
        self.reads = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    def logPrefix(self) -> str:
        return "Reader"

    def doRead(self) -> None:
        self.reads += 1
        self.sock.recv(100)
        if self.fail:
            raise RuntimeError("boom")

    def connectionLost(self, reason: object) -> None:
        pass


class LeanReactorTests(SynchronousTestCase):
    """Dispatching without a log context, still safe."""

    def setUp(self) -> None:
        self.reactor = LeanEPollReactor()  # type: ignore[no-untyped-call]
        self.left, self.right = socket.socketpair()
        self.addCleanup(self.left.close)
        self.addCleanup(self.right.close)

    def test_dispatches_reads(self) -> None:
        """A readable descriptor gets its doRead from one poll."""
        reader = Reader(self.left)
        self.reactor.addReader(reader)  # type: ignore[no-untyped-call]
        self.right.send(b"x")
        self.reactor.doPoll(1)
        self.assertEqual(reader.reads, 1)
        self.reactor.removeReader(reader)  # type: ignore[no-untyped-call]

    def test_handler_error_does_not_escape(self) -> None:
        """An exception in a handler is turned into a lost connection, not a crash."""
        reader = Reader(self.left, fail=True)
        self.reactor.addReader(reader)  # type: ignore[no-untyped-call]
        self.right.send(b"x")
        self.reactor.doPoll(1)
        self.assertEqual(reader.reads, 1)
        self.flushLoggedErrors(RuntimeError)

    def test_plugin(self) -> None:
        """twist --reactor penbal-epoll finds it."""
        names = {r.shortName for r in getReactorTypes()}
        self.assertIn("penbal-epoll", names)

