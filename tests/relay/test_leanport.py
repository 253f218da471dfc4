# -*- test-case-name: tests.relay.test_leanport -*-
"""
Tests of penbal's own listening port, on real sockets and a reactor that records what is
registered (the tests call C{doRead} as the poll loop would).
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import socket
from collections.abc import Callable
from typing import Any, cast

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import AlreadyListened, CannotListenError
from twisted.internet.interfaces import IListeningPort, IReadDescriptor
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactor
from twisted.logger import ILogObserver, LogEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from penbal.relay import leanport
from penbal.relay.leanport import LeanAdoptedEndpoint, LeanTCPPort, LeanTCPServerEndpoint
from penbal.relay.leantransport import LeanTCPTransport


class Accepted(Protocol):
    """Remembers its address."""

    def __init__(self, addr: Any) -> None:
        self.addr = addr


class Relay(Factory):
    """A factory with what RelayFactory gives the port: free slots and a read size."""

    read_size = 1 << 20

    def __init__(self, free: int = 10) -> None:
        self.free = free
        self.built: list[Accepted] = []
        self.started = self.stopped = 0

    def free_slots(self) -> int:
        return self.free

    def buildProtocol(self, addr: Any) -> Protocol | None:
        self.built.append(Accepted(addr))
        return self.built[-1]

    def doStart(self) -> None:
        self.started += 1

    def doStop(self) -> None:
        self.stopped += 1


class PortTestCase(SynchronousTestCase):
    def listen(self, factory: Factory | None = None, interface: str = "127.0.0.1"
               ) -> tuple[LeanTCPPort, Relay, MemoryReactor]:
        fds = MemoryReactor()
        relay = factory if factory is not None else Relay()
        port = LeanTCPPort(fds, relay, 0, interface)
        port.startListening()
        self.addCleanup(port.stopListening)
        return port, relay, fds  # type: ignore[return-value]

    def connect(self, port: LeanTCPPort, count: int) -> list[socket.socket]:
        host = port.getHost()
        clients = [socket.create_connection((host.host, host.port), timeout=10)
                   for _ in range(count)]
        for client in clients:
            self.addCleanup(client.close)
        return clients

    def fail_first(self, port: LeanTCPPort, code: int) -> None:
        """Make the port's next accept(2) fail with C{code}; the later ones are real."""
        real = port.accept
        failures = [code]

        def accept() -> tuple[int, Any]:
            if failures:
                raise OSError(failures.pop(), os.strerror(code))
            return real()

        port.accept = accept

    def warnings(self) -> list[LogEvent]:
        events: list[LogEvent] = []

        def observe(event: LogEvent) -> None:
            if event.get("log_namespace") == "penbal.relay.leanport":
                events.append(event)

        observer = cast(ILogObserver, observe)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        return events


class ListeningTests(PortTestCase):
    """The port as an IListeningPort: listening, getHost, stopping, pausing."""

    def test_interfaces(self) -> None:
        """It is a listening port and the reactor's read descriptor."""
        port, _, _ = self.listen()
        self.assertTrue(verifyObject(IListeningPort, port))
        self.assertTrue(verifyObject(IReadDescriptor, port))

    def test_listens_on_port_zero(self) -> None:
        """Bound to port 0, it listens on a real port, which getHost gives; it is registered
        with the reactor and has started its factory."""
        port, relay, fds = self.listen()
        host = port.getHost()
        self.assertIsInstance(host, IPv4Address)
        self.assertEqual(host.host, "127.0.0.1")
        self.assertNotEqual(host.port, 0)
        self.assertIn(port, fds.readers)
        self.assertEqual(relay.started, 1)
        self.connect(port, 1)  # the kernel accepts it into the backlog

    def test_stop_listening(self) -> None:
        """stopListening fires once the socket is closed and unregistered; the factory is
        stopped; connecting is refused; a second stop and a resume do nothing."""
        port, relay, fds = self.listen()
        address = port.getHost()
        assert port.socket is not None
        self.assertIsNone(self.successResultOf(port.stopListening()))
        self.assertNotIn(port, fds.readers)
        self.assertEqual(port.socket.fileno(), -1)
        self.assertEqual(relay.stopped, 1)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection((address.host, address.port), timeout=10).close()
        self.successResultOf(port.stopListening())
        port.startReading()
        self.assertNotIn(port, fds.readers)
        self.assertEqual(relay.stopped, 1)

    def test_fileno_kept_after_close(self) -> None:
        """The descriptor is still reported after the close (the reactor checks it after the
        event that closed the port)."""
        port, _, _ = self.listen()
        fd = port.fileno()
        self.assertGreaterEqual(fd, 0)
        port.connectionLost(None)  # type: ignore[arg-type]
        self.assertEqual(port.fileno(), fd)

    def test_cannot_listen(self) -> None:
        """A port in use is a CannotListenError, and nothing is left open or registered."""
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        fds = MemoryReactor()
        port = LeanTCPPort(fds, Relay(), taken.getsockname()[1], "127.0.0.1")
        with self.assertRaises(CannotListenError):
            port.startListening()
        self.assertEqual(fds.readers, set())

    def test_pause_and_resume(self) -> None:
        """stopReading leaves clients in the backlog, unregistered; startReading registers the
        port again and they are accepted."""
        port, relay, fds = self.listen()
        port.stopReading()
        self.assertNotIn(port, fds.readers)
        self.connect(port, 2)
        port.startReading()
        port.startReading()  # twice: still once
        self.assertIn(port, fds.readers)
        port.doRead()
        self.assertEqual(len(relay.built), 2)

    def test_ipv6(self) -> None:
        """On ::1, getHost is an IPv6 address, and so is each client's."""
        port, relay, _ = self.listen(interface="::1")
        host = port.getHost()
        self.assertIsInstance(host, IPv6Address)
        self.assertEqual(host.host, "::1")
        (client,) = self.connect(port, 1)
        port.doRead()
        (accepted,) = relay.built
        self.assertEqual(accepted.addr, IPv6Address("TCP", "::1", client.getsockname()[1]))


class AcceptTests(PortTestCase):
    """The accept loop."""

    def test_accepts_onto_lean_transports(self) -> None:
        """Each client gets a lean transport, registered for reading, with its address and
        the factory's read size."""
        port, relay, fds = self.listen()
        clients = self.connect(port, 2)
        port.doRead()
        self.assertEqual(len(relay.built), 2)
        for protocol, client in zip(relay.built, clients, strict=True):
            transport = protocol.transport
            assert isinstance(transport, LeanTCPTransport)
            self.assertIn(transport, fds.readers)
            self.assertEqual(protocol.addr.port, client.getsockname()[1])
            self.assertEqual(transport.max_read, 1 << 20)
            # TCP_NODELAY came from the listening socket (set once there, inherited).
            self.assertTrue(transport.getTcpNoDelay())
            self.assertEqual(transport.socket.gettimeout(), 0.0)

    def test_build_client(self) -> None:
        """A factory with build_client(host, port) gets the client's host and port instead
        of buildProtocol's address object."""

        class ByHost(Relay):
            def build_client(self, host: str, port: int) -> Protocol:
                self.built.append(Accepted((host, port)))
                return self.built[-1]

        port, relay, fds = self.listen(ByHost())
        [client] = self.connect(port, 1)
        port.doRead()
        [protocol] = relay.built
        self.assertEqual(protocol.addr, client.getsockname())
        self.assertIsInstance(protocol.transport, LeanTCPTransport)
        self.assertIn(protocol.transport, fds.readers)

    def test_batch_capped_at_free_slots(self) -> None:
        """No more clients are accepted in one batch than there are free slots, and at least
        one (a port still reading must not spin)."""
        port, relay, _ = self.listen(Relay(free=2))
        self.connect(port, 4)
        port.doRead()
        self.assertEqual(len(relay.built), 2)
        relay.free = 0
        port.doRead()
        self.assertEqual(len(relay.built), 3)
        relay.free = 5
        port.doRead()
        self.assertEqual(len(relay.built), 4)
        port.doRead()  # nothing waiting: no error
        self.assertEqual(len(relay.built), 4)

    def test_batch_capped_at_batch(self) -> None:
        """Without a limit a batch is BATCH clients; the rest wait for the next event."""
        self.patch(leanport, "BATCH", 3)
        port, relay, _ = self.listen(Relay(free=100))
        self.connect(port, 4)
        port.doRead()
        self.assertEqual(len(relay.built), 3)

    def test_factory_without_slots(self) -> None:
        """Any protocol factory will do: its clients get 64 KiB reads and no slot limit."""
        port, _, _ = self.listen(Factory.forProtocol(Protocol))
        self.connect(port, 1)
        port.doRead()
        self.assertEqual(port.max_read, 65536)
        self.assertEqual(port.free_slots(), leanport.BATCH)

    def test_refused_by_factory(self) -> None:
        """A factory that builds no protocol has the client closed."""
        class Refusing(Relay):
            def buildProtocol(self, addr: Any) -> Protocol | None:
                return None

        port, _, fds = self.listen(Refusing())
        (client,) = self.connect(port, 1)
        port.doRead()
        self.assertEqual(client.recv(10), b"")
        self.assertEqual(fds.readers, {port})

    def test_failed_set_up_closes_that_client_only(self) -> None:
        """A client whose protocol cannot be built is closed (and logged); the next is
        served."""
        class Broken(Relay):
            def buildProtocol(self, addr: Any) -> Protocol | None:
                if not self.built:
                    self.built.append(Accepted(addr))
                    raise ValueError("broken policy")
                return super().buildProtocol(addr)

        port, relay, _ = self.listen(Broken())
        first, second = self.connect(port, 2)
        port.doRead()
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        self.assertEqual(first.recv(10), b"")
        self.assertIsInstance(relay.built[1].transport, LeanTCPTransport)
        second.sendall(b"x")  # still open

    def test_client_gone_before_accept_skipped(self) -> None:
        """A client that gave up before it was accepted (ECONNABORTED) is skipped: the next
        one is served in the same batch, and nothing is logged."""
        port, relay, _ = self.listen()
        events = self.warnings()
        self.connect(port, 1)
        self.fail_first(port, errno.ECONNABORTED)
        port.doRead()
        self.assertEqual((len(relay.built), events), (1, []))


class ExhaustionTests(PortTestCase):
    """Out of descriptors or memory: shed, log once, never crash, never spin."""

    def test_emfile_sheds_waiting_clients(self) -> None:
        """At EMFILE the reserved descriptor is freed to accept and close the waiting
        clients (the listener is then no longer readable: the poll loop does not spin), it
        is reserved again, and one line is logged."""
        port, relay, fds = self.listen()
        events = self.warnings()
        reserved = port._reserved
        assert reserved is not None
        clients = self.connect(port, 3)
        self.fail_first(port, errno.EMFILE)
        port.doRead()
        self.assertEqual(relay.built, [])
        for client in clients:
            self.assertEqual(client.recv(10), b"")
        readable, _, _ = select.select([port.fileno()], [], [], 0)
        self.assertEqual(readable, [])
        self.assertIsNotNone(port._reserved)
        os.fstat(port._reserved)  # type: ignore[arg-type]
        self.assertEqual(len(events), 1)
        self.assertEqual((events[0]["error"], events[0]["shed"]), ("EMFILE", 3))
        self.assertIn(port, fds.readers)
        self.connect(port, 1)  # served again afterwards
        port.doRead()
        self.assertEqual(len(relay.built), 1)

    def test_out_of_memory_logged(self) -> None:
        """At ENOMEM there is nothing to free: one line, the clients wait, no crash."""
        port, relay, _ = self.listen()
        events = self.warnings()
        self.connect(port, 2)
        self.fail_first(port, errno.ENOMEM)
        port.doRead()
        self.assertEqual((relay.built, len(events)), ([], 1))
        self.assertEqual((events[0]["error"], events[0]["shed"]), ("ENOMEM", 0))
        port.doRead()
        self.assertEqual(len(relay.built), 2)

    def test_emfile_without_reserve(self) -> None:
        """Without a reserved descriptor (none could be had), EMFILE is logged only."""
        port, relay, _ = self.listen()
        events = self.warnings()
        assert port._reserved is not None
        os.close(port._reserved)
        port._reserved = None
        self.connect(port, 1)
        self.fail_first(port, errno.EMFILE)
        port.doRead()
        self.assertEqual((relay.built, events[0]["shed"]), ([], 0))


class RawAcceptTests(SynchronousTestCase):
    """The port accepts with C{socket._accept} and builds the socket itself."""

    def listening(self) -> socket.socket:
        sock = socket.socket()
        self.addCleanup(sock.close)
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.setblocking(False)
        for _ in range(2):
            client = socket.create_connection(sock.getsockname(), timeout=10)
            self.addCleanup(client.close)
        return sock

    def describe(self, sock: socket.socket) -> tuple[Any, ...]:
        self.addCleanup(sock.close)
        fd = sock.fileno()
        return (sock.family, sock.type, sock.proto, sock.gettimeout(),
                fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK,
                fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)

    def built(self, accept: Callable[[], tuple[int, Any]], listening: socket.socket
              ) -> socket.socket:
        fd, _ = accept()
        return socket.socket(int(listening.family), int(listening.type), listening.proto, fd)

    def test_same_socket_as_accept(self) -> None:
        """The socket built from C{_accept}'s descriptor is the one C{accept()} builds:
        same family, type, protocol, timeout, blocking mode and close-on-exec."""
        listening = self.listening()
        by_accept, _ = listening.accept()
        ours = self.built(leanport.raw_accept(listening), listening)
        self.assertEqual(self.describe(ours), self.describe(by_accept))

    def test_fallback_without_raw_accept(self) -> None:
        """A socket without C{_accept} is accepted through C{accept()}, its descriptor
        detached."""
        listening = self.listening()

        class Plain:
            def accept(self) -> tuple[socket.socket, Any]:
                return listening.accept()

        accept = leanport.raw_accept(Plain())  # type: ignore[arg-type]
        by_accept, _ = listening.accept()
        ours = self.built(accept, listening)
        self.assertEqual(self.describe(ours), self.describe(by_accept))


class AdoptTests(PortTestCase):
    """A listening socket handed over (a --workers worker's)."""

    def test_adopt(self) -> None:
        """The port listens on a duplicate: the caller's descriptor stays open, and closing
        the port does not shut the shared socket down."""
        shared = socket.socket()
        self.addCleanup(shared.close)
        shared.bind(("127.0.0.1", 0))
        shared.listen(8)
        fds = MemoryReactor()
        relay = Relay()
        port = LeanTCPPort.adopt(fds, shared.fileno(), relay)
        port.startListening()
        self.assertEqual(port.getHost().port, shared.getsockname()[1])
        self.connect(port, 1)
        port.doRead()
        self.assertEqual(len(relay.built), 1)
        self.successResultOf(port.stopListening())
        client = socket.create_connection(shared.getsockname(), timeout=10)
        self.addCleanup(client.close)
        shared.settimeout(10)
        shared.accept()[0].close()  # the shared socket still listens

    def test_adopt_refuses_unix_sockets(self) -> None:
        """Only a TCP socket can be adopted."""
        one, other = socket.socketpair()
        self.addCleanup(one.close)
        self.addCleanup(other.close)
        with self.assertRaises(ValueError):
            LeanTCPPort.adopt(MemoryReactor(), one.fileno(), Relay())


class EndpointTests(SynchronousTestCase):
    """LeanTCPServerEndpoint."""

    def test_listen_on_port_zero(self) -> None:
        """listen fires with a started port; getHost gives the real port."""
        fds = MemoryReactor()
        endpoint = LeanTCPServerEndpoint(fds, 0, 10, "127.0.0.1")
        port = self.successResultOf(endpoint.listen(Relay()))
        self.addCleanup(port.stopListening)
        assert isinstance(port, LeanTCPPort)
        self.assertEqual(port.backlog, 10)
        self.assertIn(port, fds.readers)
        self.assertNotEqual(port.getHost().port, 0)

    def test_listen_ipv6(self) -> None:
        """On ::1, an IPv6 port."""
        endpoint = LeanTCPServerEndpoint(MemoryReactor(), 0, 50, "::1")
        port = self.successResultOf(endpoint.listen(Relay()))
        self.addCleanup(port.stopListening)
        self.assertIsInstance(port.getHost(), IPv6Address)

    def test_cannot_listen(self) -> None:
        """A port in use fails the Deferred with CannotListenError."""
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        endpoint = LeanTCPServerEndpoint(MemoryReactor(), taken.getsockname()[1], 50,
                                         "127.0.0.1")
        self.failureResultOf(endpoint.listen(Relay()), CannotListenError)


class CapBatchesTests(SynchronousTestCase):
    """cap_batches on Twisted's ports (see also tests.relay.test_listener)."""

    def test_unsupported_port_left_alone(self) -> None:
        """A port without numberAccepts keeps its doRead."""
        class Other:
            def doRead(self) -> None:
                pass

        port = Other()
        read = port.doRead
        self.assertFalse(leanport.supported(port))
        leanport.cap_batches(port, lambda: 1)
        self.assertEqual(port.doRead, read)


class AdoptedEndpointTests(SynchronousTestCase):
    """LeanAdoptedEndpoint (a socket passed by systemd)."""

    def socket_fd(self) -> tuple[socket.socket, int]:
        shared = socket.socket()
        self.addCleanup(shared.close)
        shared.bind(("127.0.0.1", 0))
        shared.listen(8)
        return shared, os.dup(shared.fileno())

    def test_listen_once(self) -> None:
        """It listens on a duplicate and closes the descriptor it was given; a second listen
        is AlreadyListened."""
        shared, fd = self.socket_fd()
        fds = MemoryReactor()
        endpoint = LeanAdoptedEndpoint(fds, fd)
        port = self.successResultOf(endpoint.listen(Relay()))
        self.addCleanup(port.stopListening)
        assert isinstance(port, LeanTCPPort)
        self.assertIn(port, fds.readers)
        self.assertEqual(port.getHost().port, shared.getsockname()[1])
        with self.assertRaises(OSError):
            os.fstat(fd)
        self.failureResultOf(endpoint.listen(Relay()), AlreadyListened)

    def test_not_a_socket(self) -> None:
        """A descriptor that is no TCP socket fails the Deferred."""
        one, other = socket.socketpair()
        self.addCleanup(one.close)
        self.addCleanup(other.close)
        self.failureResultOf(LeanAdoptedEndpoint(MemoryReactor(), one.fileno()).listen(Relay()),
                             ValueError)
