# -*- test-case-name: tests.test_reactor -*-
"""
Tests of the lean epoll reactor and its plugin.
"""

from __future__ import annotations

import socket

from twisted.application.app import ServerOptions
from twisted.application.reactors import getReactorTypes
from twisted.application.twist._options import TwistOptions
from twisted.trial.unittest import SynchronousTestCase

from penbal.reactor import LeanEPollReactor, prefer_lean_reactor


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


class DefaultChoiceTests(SynchronousTestCase):
    """twist penbal and twistd penbal run on the lean reactor unless one is named."""

    def test_twist_default(self) -> None:
        """Under twist with no --reactor, the reactor twist installs becomes penbal-epoll."""
        launcher = TwistOptions()
        self.assertTrue(prefer_lean_reactor(launcher, modules={}))
        self.assertEqual(launcher["reactorName"], "penbal-epoll")

    def test_twist_named_reactor_kept(self) -> None:
        """twist --reactor NAME wins."""
        launcher = TwistOptions()
        launcher["reactor"], launcher["reactorName"] = object(), "epoll"
        self.assertFalse(prefer_lean_reactor(launcher, modules={}))
        self.assertEqual(launcher["reactorName"], "epoll")

    def test_installed_reactor_kept(self) -> None:
        """With a reactor installed already (twistd --reactor, trial) nothing changes."""
        launcher = TwistOptions()
        before = launcher["reactorName"]
        self.assertFalse(prefer_lean_reactor(launcher, modules={"twisted.internet.reactor": 1}))
        self.assertEqual(launcher["reactorName"], before)

    def test_twistd_installs_now(self) -> None:
        """Under twistd, where the reactor is imported later, it is installed at once."""
        installed: list[bool] = []
        chosen = prefer_lean_reactor(ServerOptions(), modules={},
                                     install_now=lambda: installed.append(True))
        self.assertTrue(chosen)
        self.assertEqual(installed, [True])

    def test_other_launchers_untouched(self) -> None:
        """Options parsed outside twist/twistd (tests, tools) choose nothing."""
        self.assertFalse(prefer_lean_reactor(None, modules={}))
