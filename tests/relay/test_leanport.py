# -*- test-case-name: tests.relay.test_leanport -*-
"""
Tests of the lean accept loop on a real Twisted TCP port (the tests call C{doRead} as the poll
loop would).
"""

from __future__ import annotations

import errno
import socket
from types import SimpleNamespace
from typing import Any

from twisted.internet import tcp
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SynchronousTestCase

from penbal.relay import leanport
from penbal.relay.leantransport import LeanTCPTransport


class Accepted(Protocol):
    """Remembers its address."""

    def __init__(self, addr: Any) -> None:
        self.addr = addr


class LeanPortTests(SynchronousTestCase):
    def listen(self, free: list[int]) -> tuple[Any, list[Accepted], MemoryReactor]:
        fds = MemoryReactor()
        factory = Factory()
        port: Any = tcp.Port(0, factory, interface="127.0.0.1", reactor=fds)
        port.startListening()
        self.addCleanup(port.socket.close)
        self.assertTrue(leanport.supported(port, factory))
        built: list[Accepted] = []

        def build(addr: IPv4Address | IPv6Address) -> Protocol:
            built.append(Accepted(addr))
            return built[-1]

        leanport.make_lean(port, build, fds, 1 << 20, lambda: free[0])
        return port, built, fds

    def connect(self, port: Any, count: int) -> list[socket.socket]:
        clients = [socket.create_connection(("127.0.0.1", port.getHost().port), timeout=10)
                   for _ in range(count)]
        for client in clients:
            self.addCleanup(client.close)
        return clients

    def test_accepts_onto_lean_transports(self) -> None:
        """Each client gets a lean transport, registered for reading, with its address."""
        port, built, fds = self.listen([10])
        clients = self.connect(port, 2)
        port.doRead()
        self.assertEqual(len(built), 2)
        for protocol, client in zip(built, clients, strict=True):
            self.assertIsInstance(protocol.transport, LeanTCPTransport)
            self.assertIn(protocol.transport, fds.readers)
            self.assertEqual(protocol.addr.port, client.getsockname()[1])
            self.assertEqual(protocol.transport.max_read, 1 << 20)  # type: ignore[union-attr]
            # TCP_NODELAY came from the listening socket (set once there, inherited).
            self.assertTrue(protocol.transport.getTcpNoDelay())  # type: ignore[union-attr]

    def test_batch_capped_at_free_slots(self) -> None:
        """No more clients are accepted in one batch than there are free slots."""
        free = [2]
        port, built, _ = self.listen(free)
        self.connect(port, 3)
        port.doRead()
        self.assertEqual(len(built), 2)
        free[0] = 5
        port.doRead()
        self.assertEqual(len(built), 3)
        port.doRead()  # nothing waiting: no error
        self.assertEqual(len(built), 3)

    def test_failed_set_up_closes_that_client_only(self) -> None:
        """A client whose protocol cannot be built is closed (and logged); the next is served."""
        fds = MemoryReactor()
        factory = Factory()
        port: Any = tcp.Port(0, factory, interface="127.0.0.1", reactor=fds)
        port.startListening()
        self.addCleanup(port.socket.close)
        built: list[Protocol] = []

        def build(addr: object) -> Protocol:
            if not built:
                built.append(Protocol())
                raise ValueError("broken policy")
            built.append(Protocol())
            return built[-1]

        leanport.make_lean(port, build, fds, 65536, lambda: 10)
        first, second = self.connect(port, 2)
        port.doRead()
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        self.assertEqual(first.recv(10), b"")
        self.assertIsInstance(built[1].transport, LeanTCPTransport)
        second.sendall(b"x")  # still open

    def test_exhausted_descriptors_go_to_twisted(self) -> None:
        """Out of descriptors, the batch is Twisted's own doRead (it sheds clients safely)."""
        calls: list[str] = []

        class Exhausted:
            family = socket.AF_INET

            def accept(self) -> tuple[socket.socket, Any]:
                raise OSError(errno.EMFILE, "Too many open files")

            def setsockopt(self, *args: object) -> None:
                raise OSError(errno.ENOPROTOOPT, "not TCP")  # TCP_NODELAY: set per client

        port = SimpleNamespace(socket=Exhausted(), doRead=lambda: calls.append("twisted"),
                               transport=None, numberAccepts=100)
        leanport.make_lean(port, Protocol, MemoryReactor(), 65536, lambda: 10)  # type: ignore[arg-type]
        port.doRead()
        self.assertEqual((calls, port.numberAccepts), (["twisted"], 1))
        self.assertIsNotNone(port.transport)  # Twisted's loop builds lean transports too

    def test_unsupported_ports(self) -> None:
        """Another factory's port, or a port of another type, is left alone."""
        fds = MemoryReactor()
        factory = Factory()
        port: Any = tcp.Port(0, factory, interface="127.0.0.1", reactor=fds)
        self.assertFalse(leanport.supported(port, Factory()))
        self.assertFalse(leanport.supported(SimpleNamespace(factory=factory), factory))
