# -*- test-case-name: tests.relay.test_listener -*-
"""
Tests of the listening side: max-connections pause and resume, live-connection table.
"""

import socket
from typing import Any

from twisted.internet import tcp
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactor
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from penbal.edges.acl import AccessList
from penbal.edges.gate import Edges
from penbal.relay.leantransport import LeanTCPTransport
from tests.relay.fixtures import RelayHarness


class BatchPort:
    """A TCP port's accept loop, reduced to recording how many it would accept per batch."""

    def __init__(self) -> None:
        self.numberAccepts = 100
        self.batches: list[int] = []

    def doRead(self) -> None:
        self.batches.append(self.numberAccepts)

    def stopReading(self) -> None:
        pass

    def startReading(self) -> None:
        pass


class MaxConnectionsTests(SynchronousTestCase):
    """--max-connections pauses accepting; nobody accepted is dropped for it."""

    def test_pause_at_limit(self) -> None:
        """Reaching the limit stops accepting (clients wait in the backlog)."""
        harness = RelayHarness(max_connections=2)
        harness.client()
        self.assertTrue(harness.port.reading)
        harness.client()
        self.assertFalse(harness.port.reading)
        self.assertTrue(harness.factory.accept_paused)

    def test_resume_when_one_ends(self) -> None:
        """Accepting resumes as soon as a connection ends."""
        harness = RelayHarness(max_connections=2)
        first, _ = harness.client()
        harness.client()
        first.connectionLost(Failure(ConnectionDone()))
        self.assertTrue(harness.port.reading)

    def test_accept_batch_capped_at_free_slots(self) -> None:
        """Each accept batch of a TCP port takes at most the free slots, so a burst of
        clients cannot overshoot --max-connections before accepting pauses."""
        harness = RelayHarness(max_connections=3)
        port = BatchPort()
        harness.factory.attach(port)
        port.doRead()
        self.assertEqual(port.batches, [3])
        harness.client()
        port.numberAccepts = 120  # Twisted grows it after a full batch
        port.doRead()
        self.assertEqual(port.batches, [3, 2])
        harness.client()
        harness.client()
        port.doRead()  # no free slot (accepting is paused): never below one
        self.assertEqual(port.batches, [3, 2, 1])

    def test_over_limit_client_still_served(self) -> None:
        """A client accepted in the same batch beyond the limit is dialled, not dropped."""
        harness = RelayHarness(max_connections=1)
        harness.client()
        _, transport = harness.client()
        self.assertFalse(transport.disconnecting)
        self.assertEqual(len(harness.reactor.tcpClients), 2)

    def test_when_idle(self) -> None:
        """when_idle fires once the last live connection ends."""
        harness = RelayHarness()
        front, _ = harness.client()
        idle = harness.factory.when_idle()
        self.assertNoResult(idle)
        front.connectionLost(Failure(ConnectionDone()))
        self.successResultOf(idle)


class LeanPathTests(SynchronousTestCase):
    """--relay-path lean: a plain TCP port's clients get the lean accept loop."""

    def port(self, harness: RelayHarness) -> Any:
        port: Any = tcp.Port(0, harness.factory, interface="127.0.0.1", reactor=MemoryReactor())
        port.startListening()
        self.addCleanup(port.socket.close)
        return port

    def test_lean_port(self) -> None:
        """With the lean path on, the port's accept loop is the lean one, capped at the free
        slots; the clients reach the relay on lean transports."""
        harness = RelayHarness(max_connections=1)
        harness.factory.lean = True
        port = self.port(harness)
        harness.factory.attach(port)
        clients = [socket.create_connection(("127.0.0.1", port.getHost().port), timeout=10)
                   for _ in range(2)]
        for client in clients:
            self.addCleanup(client.close)
        port.doRead()
        (front,) = harness.factory.fronts
        self.assertIsInstance(front.transport, LeanTCPTransport)
        self.assertTrue(harness.factory.accept_paused)

    def test_edges_without_proxy_go_lean(self) -> None:
        """Edge features that leave the client a plain front leg (a control port's ACLs, -H,
        an idle timeout) keep the lean accept loop."""
        harness = RelayHarness()
        harness.factory.lean = True
        harness.factory.edges = Edges(harness.reactor, harness.reactor, forwarded=True,
                                      idle_timeout=30)
        port = self.port(harness)
        harness.factory.attach(port)
        self.assertEqual(port.doRead.__name__, "lean_read")

    def test_proxy_or_path_off_keep_twisted(self) -> None:
        """PROXY headers to read, or another relay path, leave the port as it is."""
        proxied = Edges(MemoryReactor(), MemoryReactor(),  # type: ignore[arg-type]
                        proxy_networks=AccessList())
        for lean, edges in ((False, None), (True, proxied)):
            harness = RelayHarness()
            harness.factory.lean = lean
            harness.factory.edges = edges
            port = self.port(harness)
            read = port.doRead
            harness.factory.attach(port)
            self.assertIs(port.transport, tcp.Server)
            self.assertEqual(port.doRead.__name__, "capped_read")
            self.assertIsNot(port.doRead, read)
