# -*- test-case-name: tests.relay.test_pipe -*-
"""
Plain relaying on the lean path goes through a pipe between the two transports, past the
legs; the figures (the connection's bytes, the backend's counters, the access record) are
settled from the transports' counts when read.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from penbal.address import BackendSpec
from penbal.balancer import Balancer, Settings
from penbal.connlog import ConnectionLog
from penbal.policies.roundrobin import RoundRobinPolicy
from penbal.pool import BackendPool
from penbal.relay.config import RelayConfig
from penbal.relay.connect import DirectConnector, TwistedConnector
from penbal.relay.leanport import LeanTCPPort
from penbal.relay.leantransport import LeanTCPTransport
from penbal.relay.legs import FrontLeg
from penbal.relay.listener import RelayFactory


class Doubler(Protocol):
    """The backend: answers each chunk with it twice."""

    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data + data)


class Client(Protocol):
    """Collects what comes back; C{wait(n)} fires once n bytes have."""

    def __init__(self) -> None:
        self.received = b""
        self._waiting: tuple[int, Deferred[None]] | None = None
        self.ended: Deferred[None] = Deferred()

    def wait(self, size: int) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        self._waiting = (size, d)
        self._check()
        return d

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        self._check()

    def _check(self) -> None:
        if self._waiting is not None and len(self.received) >= self._waiting[0]:
            d = self._waiting[1]
            self._waiting = None
            d.callback(None)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.ended.callback(None)


class PipeTests(TestCase):
    """Real sockets, the lean path."""

    async def test_figures_settled_from_the_pipes(self) -> None:
        """Bytes relayed through the pipes show in the backend's counters and the
        connection's figures whenever they are settled, and in the access record at the
        end, exactly."""
        doubler: Any = ServerFactory.forProtocol(Doubler)
        backend_port: Any = reactor.listenTCP(0, doubler, interface="127.0.0.1")
        self.addCleanup(backend_port.stopListening)
        pool = BackendPool(reactor, [BackendSpec("127.0.0.1", backend_port.getHost().port)])
        balancer = Balancer(pool, RoundRobinPolicy(), Settings())
        connlog = ConnectionLog()
        factory = RelayFactory(reactor, reactor, balancer, connlog)
        factory.config = RelayConfig(lean=True)
        factory.connector = DirectConnector(reactor, reactor, TwistedConnector(reactor))
        port = LeanTCPPort(reactor, factory, 0, "127.0.0.1")
        port.startListening()
        self.addCleanup(port.stopListening)
        factory.attach(port)

        client = Client()
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port),
                              client)
        assert client.transport is not None
        client.transport.write(b"hello")
        await client.wait(10)
        [front] = factory.fronts
        assert isinstance(front, FrontLeg) and front.peer is not None
        # The backend's answer is piped from its first byte (nothing awaited it).  The
        # client's "hello" may have come before the backend was up, and then waited in the
        # front leg: its figures are checked once settled, below.
        self.assertEqual(front.peer.transport.piped, 10)  # type: ignore[attr-defined]
        client.transport.write(b"abc")
        await client.wait(16)
        [front] = factory.fronts
        assert isinstance(front, FrontLeg) and front.peer is not None
        self.assertIsInstance(front.transport, LeanTCPTransport)
        self.assertIs(front.transport.pipe, front.peer.transport)  # type: ignore[attr-defined]
        self.assertIs(front.peer.transport.pipe, front.transport)  # type: ignore[attr-defined]

        backend = pool.find(f"127.0.0.1:{backend_port.getHost().port}")
        assert backend is not None
        backend.settle_live()
        counters = backend.counters
        self.assertEqual((counters.bytes_to_backend, counters.bytes_from_backend), (8, 16))
        self.assertEqual((front.bytes_in, front.bytes_out), (8, 16))
        backend.settle_live()  # settling twice counts nothing twice
        self.assertEqual((counters.bytes_to_backend, counters.bytes_from_backend), (8, 16))

        client.transport.write(b"xy")
        await client.wait(20)
        client.transport.loseConnection()
        await client.ended
        await factory.when_idle()
        [record] = connlog.recent
        self.assertEqual((record.bytes_in, record.bytes_out), (10, 20))
        self.assertEqual((counters.bytes_to_backend, counters.bytes_from_backend), (10, 20))
