# -*- test-case-name: tests.relay.test_garbage -*-
"""
A relayed connection leaves no reference cycle behind: once it ends, reference counting frees
its legs and transports, so the cyclic garbage collector has nothing of it to find (it cost
about 13 µs per new connection when every connection was cyclic garbage).
"""

from __future__ import annotations

import gc
import weakref
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
from penbal.relay.listener import RelayFactory


class Echo(Protocol):
    """The backend: echoes, and closes when the client has finished."""

    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)
        self.transport.loseConnection()


class Client(Protocol):
    """Sends one message and collects the answer until the connection ends."""

    def __init__(self) -> None:
        self.received = b""
        self.ended: Deferred[bytes] = Deferred()

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(b"hello")

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.ended.callback(self.received)


class NoCycleTests(TestCase):
    """Real sockets, the lean path, the cyclic collector off."""

    async def test_connection_freed_by_reference_counting(self) -> None:
        """After a relayed connection ends, its front leg, backend leg and both lean
        transports are gone without a garbage collection."""
        echo: Any = ServerFactory.forProtocol(Echo)
        backend: Any = reactor.listenTCP(0, echo, interface="127.0.0.1")
        self.addCleanup(backend.stopListening)
        pool = BackendPool(reactor, [BackendSpec("127.0.0.1", backend.getHost().port)])
        balancer = Balancer(pool, RoundRobinPolicy(), Settings())
        factory = RelayFactory(
            reactor, reactor, balancer, ConnectionLog(), RelayConfig(lean=True),
            DirectConnector(reactor, reactor, TwistedConnector(reactor)),
        )
        made: list[weakref.ref[Any]] = []
        build = factory.build_client  # what the lean port calls for each client

        def watched(host: str, port: int) -> Protocol:
            front = build(host, port)
            made.append(weakref.ref(front))
            return front

        factory.build_client = watched  # type: ignore[method-assign]
        port = LeanTCPPort(reactor, factory, 0, "127.0.0.1")
        port.startListening()
        self.addCleanup(port.stopListening)
        factory.attach(port)

        gc.collect()
        before = lean_transports()
        gc.disable()
        self.addCleanup(gc.enable)
        client = Client()
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port),
                              client)
        self.assertEqual(await client.ended, b"hello")
        front = made[0]()
        assert front is not None
        back = front.peer
        self.assertIsNotNone(back)
        self.assertIsInstance(front.transport, LeanTCPTransport)
        self.assertIsInstance(back.transport, LeanTCPTransport)
        legs = [made[0], weakref.ref(back)]
        del front, back
        await factory.when_idle()
        d: Deferred[None] = Deferred()
        reactor.callLater(0, d.callback, None)
        await d  # let the last close finish its turn
        self.assertEqual([leg() for leg in legs], [None, None])
        self.assertEqual(lean_transports(), before)


def lean_transports() -> int:
    """How many lean transports exist (they have slots, and no weak references)."""
    return sum(1 for o in gc.get_objects() if isinstance(o, LeanTCPTransport))
