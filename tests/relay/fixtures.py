# -*- test-case-name: tests.relay -*-
"""
A balancer wired to memory transports and a fake reactor, for the relay's unit tests.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.protocol import ClientFactory
from twisted.internet.testing import MemoryReactorClock, StringTransport

from penbal.address import BackendSpec
from penbal.backend import Backend
from penbal.balancer import Balancer, Settings
from penbal.connlog import ConnectionLog
from penbal.policies.roundrobin import RoundRobinPolicy
from penbal.pool import BackendPool
from penbal.relay.config import RelayConfig
from penbal.relay.legs import BackendLeg, FrontLeg
from penbal.relay.listener import RelayFactory


class HalfCloseTransport(StringTransport):
    """A memory transport that records half-closes and reports full closes to its protocol."""

    write_closed = False
    protocol: Any = None

    def loseWriteConnection(self) -> None:
        self.write_closed = True


class FakePort:
    """A listening port that records whether it is accepting."""

    def __init__(self) -> None:
        self.reading = True

    def stopReading(self) -> None:
        self.reading = False

    def startReading(self) -> None:
        self.reading = True


class RelayHarness:
    """A RelayFactory over two (or more) backends on a MemoryReactorClock."""

    def __init__(
        self, backends: int = 2, config: RelayConfig | None = None, **settings: Any
    ) -> None:
        self.reactor = MemoryReactorClock()
        specs = [BackendSpec("127.0.0.1", 4000 + i) for i in range(backends)]
        self.pool = BackendPool(self.reactor, specs)
        self.settings = Settings(**settings)
        self.balancer = Balancer(self.pool, RoundRobinPolicy(), self.settings)
        self.connlog = ConnectionLog()
        self.factory = RelayFactory(
            self.reactor, self.reactor, self.balancer, self.connlog, config
        )
        self.port = FakePort()
        self.factory.attach(self.port)

    def emergency(self, port: int) -> Backend:
        """Configure an emergency server."""
        self.settings.emergency = Backend(BackendSpec("127.0.0.1", port), -1)
        return self.settings.emergency

    def client(
        self, host: str = "127.0.0.2", port: int = 5000
    ) -> tuple[FrontLeg, HalfCloseTransport]:
        """Accept a client; it is paused while its backend is dialled."""
        front = self.factory.buildProtocol(IPv4Address("TCP", host, port))
        assert isinstance(front, FrontLeg)
        transport = HalfCloseTransport()
        transport.protocol = front
        front.makeConnection(transport)
        return front, transport

    def last_dial(self) -> tuple[str, int, ClientFactory, float]:
        """Host, port, factory (it reports to the dial) and timeout of the last connect
        attempt."""
        host, port, factory, timeout, _ = self.reactor.tcpClients[-1]
        assert isinstance(factory, ClientFactory)
        return host, port, factory, timeout

    def connect_backend(self) -> tuple[BackendLeg, HalfCloseTransport]:
        """Let the last connect attempt succeed."""
        _, _, dial, _ = self.last_dial()
        leg = dial.buildProtocol(None)
        assert isinstance(leg, BackendLeg)
        transport = HalfCloseTransport()
        transport.protocol = leg
        leg.makeConnection(transport)
        return leg, transport
