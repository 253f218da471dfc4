"""
Tests for L{penbal.health.tcpcheck}.
"""

from __future__ import annotations

import socket

from twisted.internet import reactor
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from penbal.address import BackendSpec
from penbal.backend import Backend
from penbal.health.result import CheckResult
from penbal.health.tcpcheck import TCPCheck


class TCPCheckTests(SynchronousTestCase):
    """Connect only."""

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.check = TCPCheck(self.reactor, self.reactor, 0.5)
        self.backend = Backend(BackendSpec("127.0.0.1", 3361))

    def start(self) -> tuple[Deferred[CheckResult], list[CheckResult | Failure]]:
        d = self.check.check(self.backend)
        got: list[CheckResult | Failure] = []
        d.addBoth(got.append)
        return d, got

    def test_connects_with_timeout(self) -> None:
        """The check connects to the backend with the check timeout."""
        self.start()
        host, port, _factory, timeout, _bind = self.reactor.tcpClients[0]
        self.assertEqual((host, port, timeout), ("127.0.0.1", 3361, 0.5))

    def test_connected(self) -> None:
        """A connection is a reachable result, and is closed at once."""
        _d, got = self.start()
        factory = self.reactor.tcpClients[0][2]
        self.reactor.advance(0.01)
        protocol = factory.buildProtocol(None)
        assert protocol is not None
        transport = StringTransport()
        protocol.makeConnection(transport)
        [result] = got
        assert isinstance(result, CheckResult)
        self.assertTrue(result.reachable)
        self.assertAlmostEqual(result.latency, 0.01)
        self.assertTrue(transport.disconnecting)

    def test_refused(self) -> None:
        """A refused connection is unreachable with the reason."""
        _d, got = self.start()
        connector = self.reactor.connectors[0]
        factory = self.reactor.tcpClients[0][2]
        factory.clientConnectionFailed(connector, Failure(ConnectionRefusedError()))
        [result] = got
        assert isinstance(result, CheckResult)
        self.assertFalse(result.reachable)
        self.assertIn("refused", result.error)

    def test_cancel_stops_connecting(self) -> None:
        """Cancelling (the scheduler's timeout) stops the connection attempt."""
        d, got = self.start()
        d.cancel()
        self.assertIsInstance(got[0], Failure)
        assert isinstance(got[0], Failure)
        got[0].trap(CancelledError)
        self.assertTrue(self.reactor.connectors[0].stoppedConnecting)


class LiveTCPCheckTests(TestCase):
    """The check with the real reactor on loopback."""

    async def test_listening(self) -> None:
        """A listening port is reachable."""
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen(1)
            port = server.getsockname()[1]
            check = TCPCheck(reactor, reactor, 1.0)
            result = await check.check(Backend(BackendSpec("127.0.0.1", port)))
        self.assertTrue(result.reachable)

    async def test_closed(self) -> None:
        """A closed port is unreachable, refused."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        check = TCPCheck(reactor, reactor, 1.0)
        result = await check.check(Backend(BackendSpec("127.0.0.1", port)))
        self.assertFalse(result.reachable)
        self.assertIn("refused", result.error.lower())
