# -*- test-case-name: tests.relay.test_leanport -*-
"""
penbal's own listening TCP port (L{LeanTCPPort}, served by L{LeanTCPServerEndpoint}): it
accepts clients straight onto L{LeanTCPTransport}s, and caps each accept batch at the free
connection slots, so that C{-x} holds exactly under a burst of clients.

Why not Twisted's C{tcp.Port}: its C{doRead} wraps each batch in a log buffer, builds a
C{tcp.Server} per client, and accepts up to C{numberAccepts} clients (100 and growing) before
pausing the port could take effect.  This port does what a plain TCP listener of the relay
needs with the reactor's public C{IReactorFDSet}: it is an C{IListeningPort} and the
reactor's C{IReadDescriptor}, binds its socket (or adopts a listening one: a C{--workers}
worker's, a socket passed by systemd), and its accept loop builds a lean transport per
client, with no Deferred and no log context per client.  TCP_NODELAY is set once on the
listening socket (Linux gives it to every accepted socket).  Out of descriptors, it sheds the
waiting clients with a reserved descriptor, as Twisted's port does, so that the poll loop
does not spin on a readable listener it cannot accept from.

L{cap_batches} caps the accept batches of Twisted's own ports (unix sockets, TLS, the stock
C{--relay-path twisted}); it is the one function of penbal that
touches C{tcp.Port} internals (see its docstring).
"""

from __future__ import annotations

import _socket
import errno
import os
import socket
from collections.abc import Callable
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import AlreadyListened, CannotListenError
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IReactorFDSet,
    IReadDescriptor,
    IStreamServerEndpoint,
)
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from penbal.reactor import shortcuts
from penbal.relay.leantransport import SMALL_READ, LeanTCPTransport

log = Logger()

#: Most clients accepted per readiness event (the poll loop comes back for the rest).
BATCH = 64
#: Accept errors that mean the process (or the system) is out of descriptors or memory.
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: Of those, the ones that closing the reserved descriptor can help with.
_OUT_OF_FDS = frozenset({errno.EMFILE, errno.ENFILE})
_NUMERIC = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV

#: accept(2) on a listening socket: the new descriptor and the client's address.
Accept = Callable[[], tuple[int, Any]]


def _unlimited() -> int:
    return BATCH


def raw_accept(listening: socket.socket) -> Accept:
    """The accept function of C{listening}: C{socket._accept}, which returns the bare
    descriptor, when this Python has it; else C{accept()} and the descriptor taken from it.

    C{socket.accept()} is C{_accept()} plus a C{socket} built from the listener's
    C{family}, C{type} and C{proto}, the first two converted to enums on every call; the port
    builds that socket itself from integers read once (same descriptor, same flags, same
    blocking mode: see the tests)."""
    bare = getattr(listening, "_accept", None)
    if callable(bare):
        return bare  # type: ignore[no-any-return]

    def accept() -> tuple[int, Any]:
        sock, addr = listening.accept()
        return sock.detach(), addr

    return accept


@implementer(IListeningPort, IReadDescriptor)
class LeanTCPPort:
    """A listening TCP socket whose clients are accepted onto lean transports (see the module
    docstring).  A factory with a C{free_slots()} method (L{RelayFactory}) has each accept
    batch capped at it, a C{read_size} sets the lean transports' largest read, and a
    C{build_client(host, port)} method is called instead of C{buildProtocol(address)} (no
    address object per client for a factory that wants only the host and port)."""

    def __init__(
        self,
        reactor: IReactorFDSet,
        factory: IProtocolFactory,
        port: int = 0,
        interface: str = "",
        backlog: int = 50,
        adopted: socket.socket | None = None,
    ) -> None:
        self.reactor = reactor
        #: How its clients' transports (un)register with the reactor (asked once, here).
        self._fds = shortcuts(reactor)
        self.factory = factory
        self.port = port
        self.interface = interface
        self.backlog = backlog
        #: The listening socket: bound in L{startListening}, or given (already listening).
        self.socket: socket.socket | None = adopted
        self._fd = -1
        self._reading = False
        self._listening = False
        self._closed = False
        self._nodelay = False
        self._reserved: int | None = None
        self._family = self._type = self._proto = 0
        self._address: type[IPv4Address] | type[IPv6Address] = IPv4Address
        #: accept(2) of the listening socket (tests put a failing one here).
        self.accept: Accept = lambda: (-1, None)
        self.max_read = int(getattr(factory, "read_size", SMALL_READ))
        self.free_slots: Callable[[], int] = getattr(factory, "free_slots", _unlimited)
        self.build_client: Callable[[str, int], Any] | None = getattr(
            factory, "build_client", None)

    @classmethod
    def adopt(cls, reactor: IReactorFDSet, fd: int, factory: IProtocolFactory) -> LeanTCPPort:
        """A port on a duplicate of C{fd}, a listening TCP socket (the caller keeps C{fd})."""
        sock = socket.socket(fileno=os.dup(fd))
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            sock.close()
            raise ValueError(f"descriptor {fd} is not a TCP socket")
        return cls(reactor, factory, adopted=sock)

    # IListeningPort

    def startListening(self) -> None:
        """Bind and listen (unless the socket was adopted), and start accepting."""
        if self._listening or self._closed:
            return
        sock = self.socket if self.socket is not None else self._bind()
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._nodelay = bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        except OSError:
            self._nodelay = False
        self.socket = sock
        self._fd = sock.fileno()
        self._family, self._type, self._proto = int(sock.family), int(sock.type), sock.proto
        self._address = IPv6Address if self._family == socket.AF_INET6 else IPv4Address
        self.accept = raw_accept(sock)
        self._reserved = _reserve()
        self._listening = True
        self.factory.doStart()
        self.startReading()

    def _bind(self) -> socket.socket:
        ipv6 = ":" in self.interface
        family = socket.AF_INET6 if ipv6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if ipv6:  # the scope id of a link-local address, as Twisted resolves it
                where = socket.getaddrinfo(self.interface, self.port, family, socket.SOCK_STREAM,
                                           0, socket.AI_NUMERICHOST | socket.AI_PASSIVE)[0][4]
            else:
                where = (self.interface, self.port)
            sock.bind(where)
            sock.listen(self.backlog)
        except OSError as e:
            sock.close()
            raise CannotListenError(self.interface, self.port, e) from e
        return sock

    def stopListening(self) -> Deferred[None]:
        """Stop accepting and close the socket; the Deferred fires once it is closed (at
        once: nothing is left to wait for)."""
        self._close()
        return succeed(None)

    loseConnection = stopListening

    def getHost(self) -> IPv4Address | IPv6Address:
        """The address listened on (the real port when bound to port 0)."""
        assert self.socket is not None, "not listening"
        return self._address("TCP", *self.socket.getsockname())

    # Pausing (C{-x}): the names of Twisted's own ports, which RelayFactory calls on any port.

    def startReading(self) -> None:
        """Accept clients (again)."""
        if self._listening and not self._reading:
            self._reading = True
            self.reactor.addReader(self)

    def stopReading(self) -> None:
        """Leave clients in the listen backlog."""
        if self._reading:
            self._reading = False
            self.reactor.removeReader(self)

    # IReadDescriptor

    def fileno(self) -> int:
        """The descriptor, kept after close so the reactor's check after an event holds."""
        return self._fd

    def logPrefix(self) -> str:
        return type(self.factory).__name__

    def connectionLost(self, reason: Failure) -> None:
        """The reactor gave up on the socket: close it."""
        self._close()

    def doRead(self) -> None:
        """Accept the waiting clients, at most C{min(BATCH, free_slots())} (at least one: a
        port still registered must not spin), each onto a lean transport."""
        free = self.free_slots()
        accept, build, build_client = self.accept, self.factory.buildProtocol, self.build_client
        family, kind, proto, address = self._family, self._type, self._proto, self._address
        reactor, max_read, nodelay, fds = self.reactor, self.max_read, self._nodelay, self._fds
        for _ in range(BATCH if free >= BATCH else free if free > 1 else 1):
            try:
                fd, addr = accept()
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno in _EXHAUSTED:
                    self._shed(e)
                    return
                continue  # the client gave up before it was accepted (ECONNABORTED, EPERM...)
            sock = transport = None
            try:
                sock = _socket.socket(family, kind, proto, fd)  # see LeanTCPTransport
                if len(addr) == 4:  # IPv6: the scope id, as Twisted gives it
                    addr = (socket.getnameinfo(addr, _NUMERIC)[0], *addr[1:])
                if build_client is not None:
                    protocol = build_client(addr[0], addr[1])
                else:
                    protocol = build(address("TCP", addr[0], addr[1]))
                if protocol is None:  # the factory refused it
                    sock.close()
                    continue
                transport = LeanTCPTransport(sock, protocol, reactor,
                                             addr, max_read, nodelay, fds=fds)
                protocol.makeConnection(transport)
            except Exception:
                log.failure("accepting a client from {addr}", addr=addr)
                _discard(fd, sock, transport)

    def _shed(self, error: OSError) -> None:
        """Out of descriptors: free the reserved one, accept and close the clients waiting
        (else the listener stays readable and the poll loop spins), reserve it again; one log
        line.  Out of memory, there is nothing to free: log, and let the next event retry."""
        shed = 0
        if error.errno in _OUT_OF_FDS and self._reserved is not None:
            os.close(self._reserved)
            self._reserved = None
            try:
                for _ in range(BATCH):
                    fd, _addr = self.accept()
                    os.close(fd)
                    shed += 1
            except OSError:
                pass  # none waiting (EAGAIN), or still none to spare
            self._reserved = _reserve()
        log.warn("cannot accept clients ({error}): closed {shed} waiting clients",
                 error=errno.errorcode.get(error.errno or 0, str(error)), shed=shed)

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.stopReading()
        if self.socket is not None:
            self.socket.close()  # never shutdown(): an adopted socket is shared
        if self._reserved is not None:
            os.close(self._reserved)
            self._reserved = None
        if self._listening:
            self._listening = False
            self.factory.doStop()

    def __repr__(self) -> str:
        state = "listening" if self._listening else "not listening"
        return f"<LeanTCPPort of {type(self.factory).__name__} ({state}, fd {self._fd})>"


@implementer(IStreamServerEndpoint)
class LeanTCPServerEndpoint:
    """A TCP server endpoint (as C{tcp:}/C{tcp6:}) that listens with a L{LeanTCPPort}."""

    def __init__(
        self, reactor: IReactorFDSet, port: int, backlog: int = 50, interface: str = ""
    ) -> None:
        self._reactor = reactor
        self._port = port
        self._backlog = backlog
        self._interface = interface

    def listen(self, factory: IProtocolFactory) -> Deferred[IListeningPort]:
        """A started L{LeanTCPPort}, or C{CannotListenError}."""
        port = LeanTCPPort(self._reactor, factory, self._port, self._interface, self._backlog)
        try:
            port.startListening()
        except CannotListenError:
            return fail()
        return succeed(port)


@implementer(IStreamServerEndpoint)
class LeanAdoptedEndpoint:
    """A listening TCP socket made elsewhere (systemd's, found by Twisted's C{systemd:}
    endpoint) as an endpoint that listens with a L{LeanTCPPort}.  As with Twisted's
    C{AdoptedStreamServerEndpoint}, the descriptor is closed once the port has its
    duplicate, and it listens once."""

    def __init__(self, reactor: IReactorFDSet, fd: int) -> None:
        self._reactor = reactor
        self.fd = fd
        self._used = False

    def listen(self, factory: IProtocolFactory) -> Deferred[IListeningPort]:
        """A started L{LeanTCPPort} on the socket."""
        if self._used:
            return fail(AlreadyListened())
        self._used = True
        try:
            port = LeanTCPPort.adopt(self._reactor, self.fd, factory)
            port.startListening()
            os.close(self.fd)
        except Exception:
            return fail()
        return succeed(port)


def cap_batches(port: Any, free_slots: Callable[[], int]) -> None:
    """Cap each accept batch of a Twisted TCP port at C{free_slots()}: Twisted accepts up to
    C{numberAccepts} clients per readiness event (100 and growing) before pausing the port
    could take effect, so C{-x} would overshoot under a burst.

    The one place penbal touches C{tcp.Port} internals: it reads and sets C{numberAccepts}
    (read by C{doRead} at each readiness event) and replaces C{doRead} on the instance, as
    C{tcp.Port} and the ports built on it (C{unix.Port}, TLS listeners) have them in Twisted
    26.10, the version checked (penbal requires 24.7 or later).  L{supported} is the check,
    made when the port is attached: a port without them is left to Twisted's own loop
    (uncapped), paused and resumed through its public C{stopReading}/C{startReading} only."""
    if not supported(port):
        return
    read = port.doRead

    def capped_read() -> None:
        free = free_slots()
        if free < port.numberAccepts:
            port.numberAccepts = max(1, free)
        read()

    port.doRead = capped_read


def supported(port: object) -> bool:
    """Whether C{port} has the C{tcp.Port} attributes L{cap_batches} uses."""
    return callable(getattr(port, "doRead", None)) and isinstance(
        getattr(port, "numberAccepts", None), int)


def _reserve() -> int | None:
    """One descriptor held back, to be freed when accepting runs out of descriptors."""
    try:
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        log.warn("cannot reserve a descriptor for running out of them: {error}", error=e)
        return None


def _discard(fd: int, sock: _socket.socket | None, transport: LeanTCPTransport | None) -> None:
    """A client whose set-up failed: close it without leaving it registered."""
    try:
        if transport is not None:
            transport.abortConnection()
        elif sock is not None:
            sock.close()
        else:
            os.close(fd)
    except Exception:
        log.failure("closing a client whose set-up failed")
