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
from penbal.relay.config import RelayConfig
from penbal.relay.leanport import LeanTCPPort
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
    """--relay-path lean: a plain TCP port is penbal's own (LeanTCPPort)."""

    def port(self, harness: RelayHarness) -> Any:
        port: Any = tcp.Port(0, harness.factory, interface="127.0.0.1", reactor=MemoryReactor())
        port.startListening()
        self.addCleanup(port.socket.close)
        return port

    def test_lean_accept(self) -> None:
        """Lean ports on the lean path, whatever edge features are on (a control port's ACLs,
        -H, an idle timeout, PROXY headers to read); not on the stock path."""
        harness = RelayHarness()
        factory = harness.factory
        self.assertFalse(factory.lean_accept)
        factory.config = RelayConfig(lean=True)
        self.assertTrue(factory.lean_accept)
        factory.edges = Edges(harness.reactor, harness.reactor, forwarded=True, idle_timeout=30)
        self.assertTrue(factory.lean_accept)
        factory.edges = Edges(harness.reactor, harness.reactor, proxy_networks=AccessList())
        self.assertTrue(factory.lean_accept)
        factory.config = RelayConfig(lean=False)
        self.assertFalse(factory.lean_accept)

    def proxy_port(self, **settings: Any) -> tuple[RelayHarness, MemoryReactor, LeanTCPPort]:
        """A lean relay whose clients send a PROXY header first (5 s for it), listening on a
        real lean port on 127.0.0.1 whose reactor is a MemoryReactor."""
        harness = RelayHarness(**settings)
        harness.factory.config = RelayConfig(lean=True)
        harness.factory.edges = Edges(harness.reactor, harness.reactor,
                                      proxy_networks=AccessList(), proxy_header_timeout=5.0)
        fds = MemoryReactor()
        port = LeanTCPPort(fds, harness.factory, 0, "127.0.0.1")
        port.startListening()
        self.addCleanup(port.stopListening)
        return harness, fds, port

    def test_proxy_header_on_a_lean_transport(self) -> None:
        """--accept-proxy on the lean port: the header is read on the client's lean transport,
        here across two reads; then the client's leg runs on that same transport, for the
        header's client, with the bytes behind the header kept for its backend.  A client
        that sends no header is reset at the header timeout."""
        harness, fds, port = self.proxy_port()
        factory = harness.factory
        proxied, silent = (socket.create_connection(("127.0.0.1", port.getHost().port),
                                                    timeout=10) for _ in range(2))
        self.addCleanup(proxied.close)
        self.addCleanup(silent.close)
        port.doRead()
        by_port = {t.peer[1]: t for t in fds.readers if isinstance(t, LeanTCPTransport)}
        transport = by_port[proxied.getsockname()[1]]
        header = b"PROXY TCP4 127.0.9.7 127.0.0.1 40123 3306\r\n"
        proxied.sendall(header[:9])
        transport.doRead()
        self.assertEqual(factory.fronts, set())  # half a header: no client yet
        proxied.sendall(header[9:] + b"hi")
        transport.doRead()
        (front,) = factory.fronts
        self.assertEqual((front.client.host, front.client.port), ("127.0.9.7", 40123))
        self.assertIs(front.transport, transport)
        self.assertEqual(front.pending, [b"hi"])
        self.assertIn(harness.last_dial()[:2], [("127.0.0.1", 4000), ("127.0.0.1", 4001)])
        harness.reactor.advance(5.0)
        with self.assertRaises(ConnectionResetError):
            silent.recv(10)
        self.assertEqual(len(factory.fronts), 1)  # the proxied client is still relayed

    def test_proxy_clients_count_toward_the_limit(self) -> None:
        """-x under a burst of PROXY clients: a client still sending its header holds a slot,
        so the port accepts no more than -x; a client refused before its header frees its
        slot, and the port accepts the next."""
        harness, fds, port = self.proxy_port(max_connections=2)
        factory = harness.factory
        factory.attach(port)
        first = socket.create_connection(("127.0.0.1", port.getHost().port), timeout=10)
        self.addCleanup(first.close)
        port.doRead()
        clients = [socket.create_connection(("127.0.0.1", port.getHost().port), timeout=10)
                   for _ in range(3)]
        for client in clients:
            self.addCleanup(client.close)
        port.doRead()
        self.assertEqual((factory.arrivals, factory.fronts), (2, set()))
        self.assertTrue(factory.accept_paused)
        self.assertNotIn(port, fds.readers)
        self.assertEqual(factory.free_slots(), 0)
        (transport,) = [t for t in fds.readers if isinstance(t, LeanTCPTransport)
                        and t.peer[1] == first.getsockname()[1]]
        first.sendall(b"PROXY TCP4 127.0.9.7 127.0.0.1 40123 3306\r\n")
        transport.doRead()  # its leg starts: it counts as a connection now, not an arrival
        self.assertEqual((factory.arrivals, len(factory.fronts)), (1, 1))
        self.assertTrue(factory.accept_paused)
        harness.reactor.advance(5.0)  # the other one sent no header: refused, slot freed
        self.assertEqual((factory.arrivals, len(factory.fronts)), (0, 1))
        self.assertIn(port, fds.readers)
        port.doRead()  # one more, the free slot; the last waits in the backlog
        self.assertEqual(factory.arrivals, 1)
        self.assertTrue(factory.accept_paused)

    def test_lean_port_paused_at_limit(self) -> None:
        """A lean port accepts the free slots only (its own cap, not Twisted's), onto lean
        transports; at the limit it leaves the reactor, and comes back when a client ends."""
        harness = RelayHarness(max_connections=1)
        harness.factory.config = RelayConfig(lean=True)
        fds = MemoryReactor()
        port = LeanTCPPort(fds, harness.factory, 0, "127.0.0.1")
        port.startListening()
        self.addCleanup(port.stopListening)
        read = port.doRead
        harness.factory.attach(port)
        self.assertEqual(port.doRead, read)
        clients = [socket.create_connection(("127.0.0.1", port.getHost().port), timeout=10)
                   for _ in range(2)]
        for client in clients:
            self.addCleanup(client.close)
        port.doRead()
        (front,) = harness.factory.fronts
        self.assertIsInstance(front.transport, LeanTCPTransport)
        self.assertTrue(harness.factory.accept_paused)
        self.assertNotIn(port, fds.readers)
        front.connectionLost(Failure(ConnectionDone()))
        self.assertIn(port, fds.readers)

    def test_twisted_ports_capped(self) -> None:
        """Twisted's own TCP port (PROXY headers to read, another relay path) keeps its
        transports, with its accept batches capped."""
        proxied = Edges(MemoryReactor(), MemoryReactor(),  # type: ignore[arg-type]
                        proxy_networks=AccessList())
        for lean, edges in ((False, None), (True, proxied)):
            harness = RelayHarness()
            harness.factory.config = RelayConfig(lean=lean)
            harness.factory.edges = edges
            port = self.port(harness)
            read = port.doRead
            harness.factory.attach(port)
            self.assertIs(port.transport, tcp.Server)
            self.assertEqual(port.doRead.__name__, "capped_read")
            self.assertIsNot(port.doRead, read)
