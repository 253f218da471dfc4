# -*- test-case-name: tests.udp.test_sockets -*-
"""
The UDP balancer's two kinds of socket, read by the reactor as plain file descriptors.

The front socket receives every client's datagrams; when bound to every address it learns
the address each client sent to (IP_PKTINFO) and replies from that address.  An upstream
socket is connected to one backend, so an ICMP port unreachable comes back as an error on it.
Twisted's C{udp.Port} offers neither the local address nor quiet per-session sockets (it logs
two lines per port), hence these small descriptors.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Callable
from typing import Protocol

from twisted.internet.interfaces import IHalfCloseableDescriptor, IReactorFDSet, IReadDescriptor
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

log = Logger()

MAX_DATAGRAM = 65535
READ_BUDGET = 256 * 1024
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
_CMSG_SPACE = 64
UNREACHABLE = frozenset(
    {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}
)
# The socket is fine but this datagram could not go: drop it (UDP may lose datagrams).
_DROP = frozenset({errno.EAGAIN, errno.ENOBUFS, errno.EMSGSIZE, errno.EINTR, errno.EPERM})

Address = tuple[str, int] | tuple[str, int, int, int]


class BackendUnreachableError(Exception):
    """The backend's host told us (ICMP) that nothing listens there, or it cannot be reached."""


class UpstreamReceiver(Protocol):
    """What an upstream socket reports to."""

    def datagram(self, data: bytes) -> None: ...

    def unreachable(self, why: str) -> None: ...


class UpstreamLink(Protocol):
    """A session's connected socket towards its backend."""

    def send(self, data: bytes) -> bool: ...

    def close(self) -> None: ...


#: Opens a session's socket towards a backend (host, port), reporting to a receiver.
Opener = Callable[[str, int, UpstreamReceiver], UpstreamLink]


def family_of(host: str) -> socket.AddressFamily:
    """The address family of an IP literal."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


@implementer(IReadDescriptor, IHalfCloseableDescriptor)
class _DatagramSocket:
    """
    A non-blocking datagram socket the reactor reads.

    An ICMP error on a socket with no datagram waiting makes epoll report an error alone,
    which the reactor takes for an end of stream: it calls L{readConnectionLost}, where the
    error is read and the socket goes back to reading.
    """

    def __init__(self, reactor: IReactorFDSet, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._reactor = reactor
        self.socket = sock
        self._fileno = sock.fileno()
        self.closed = False

    def fileno(self) -> int:
        return -1 if self.closed else self._fileno

    def logPrefix(self) -> str:
        return "penbal-udp"

    def start_reading(self) -> None:
        """Have the reactor call L{doRead} when datagrams wait."""
        self._reactor.addReader(self)

    def close(self) -> None:
        """Stop reading and close the socket (idempotent)."""
        if self.closed:
            return
        self._reactor.removeReader(self)
        self.closed = True
        self.socket.close()

    def connectionLost(self, reason: Failure) -> None:
        """The reactor is shutting down or dropped us."""
        self.close()

    def readConnectionLost(self, reason: Failure) -> None:
        """The poller reported an error and nothing to read: take the error, read on."""
        if self.closed:
            return
        code = self.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        self.socket_error(code)
        if not self.closed:
            self.start_reading()

    def writeConnectionLost(self, reason: Failure) -> None:
        pass

    def socket_error(self, code: int) -> None:
        """A pending error was read from the socket (0 if there was none)."""
        if code:
            log.debug("UDP socket error: {error}", error=os.strerror(code))

    def doRead(self) -> None:
        raise NotImplementedError


class FrontSocket(_DatagramSocket):
    """The socket clients send to; replies leave from the address each client used."""

    def __init__(
        self,
        reactor: IReactorFDSet,
        interface: str,
        port: int,
        received: Callable[[bytes, Address, str | None], None],
        receive_buffer: int = 4 * 1024 * 1024,
    ) -> None:
        """
        Bind at once; C{OSError} if the address is taken or not local.

        @param received: called with each datagram, the client's address and the local
            address it was sent to (None when the socket is bound to one address).
        """
        family = family_of(interface) if interface else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.wildcard = interface in ("", "0.0.0.0", "::")
            if family == socket.AF_INET6 and self.wildcard:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                try:
                    sock.setsockopt(socket.SOL_SOCKET, option, receive_buffer)
                except OSError:
                    pass
            if self.wildcard:
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
                sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
            sock.bind((interface or "0.0.0.0", port))
        except OSError:
            sock.close()
            raise
        super().__init__(reactor, sock)
        self.family = family
        self._received = received
        self.errors = 0

    def address(self) -> tuple[str, int]:
        """The bound address and port."""
        host, port = self.socket.getsockname()[:2]
        return str(host), int(port)

    def doRead(self) -> None:
        budget = READ_BUDGET
        while budget > 0 and not self.closed:
            local: str | None = None
            try:
                if self.wildcard:
                    data, ancillary, _, addr = self.socket.recvmsg(MAX_DATAGRAM, _CMSG_SPACE)
                    local = _local_address(ancillary)
                else:
                    data, addr = self.socket.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self.errors += 1
                log.debug("UDP front socket error: {error}", error=e)
                return
            budget -= len(data) + 64
            self._received(data, addr, local)

    def send(self, data: bytes, addr: Address, local: str | None) -> bool:
        """Send a reply to C{addr} from C{local}; False if it had to be dropped."""
        try:
            if local is None:
                self.socket.sendto(data, addr)
            else:
                self.socket.sendmsg([data], [_pktinfo(self.family, local)], 0, addr)
            return True
        except OSError as e:
            if e.errno not in _DROP:
                log.debug("reply to {addr} dropped: {error}", addr=addr, error=e)
            self.errors += 1
            return False


def _local_address(ancillary: list[tuple[int, int, bytes]]) -> str | None:
    """The address the client sent to, from IP_PKTINFO or IPV6_PKTINFO."""
    for level, kind, payload in ancillary:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(payload) >= 12:
            return socket.inet_ntop(socket.AF_INET, payload[4:8])
        if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO and len(payload) >= 16:
            return socket.inet_ntop(socket.AF_INET6, payload[:16])
    return None


def _pktinfo(family: socket.AddressFamily, local: str) -> tuple[int, int, bytes]:
    """Ancillary data that makes a reply leave from C{local}."""
    if family == socket.AF_INET6:
        if ":" not in local:
            local = "::ffff:" + local
        packed = socket.inet_pton(socket.AF_INET6, local)
        return socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, struct.pack("=16sI", packed, 0)
    packed = socket.inet_pton(socket.AF_INET, local)
    return socket.IPPROTO_IP, IP_PKTINFO, struct.pack("=i4s4s", 0, packed, bytes(4))


class UpstreamSocket(_DatagramSocket):
    """A socket connected to one backend, for one session or one probe."""

    def __init__(
        self, reactor: IReactorFDSet, host: str, port: int, receiver: UpstreamReceiver
    ) -> None:
        """
        Create and connect at once; C{OSError} when out of descriptors, L{BackendUnreachableError}
        when the kernel already knows there is no route.
        """
        sock = socket.socket(family_of(host), socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.connect((host, port))
        except OSError as e:
            sock.close()
            if e.errno in UNREACHABLE:
                raise BackendUnreachableError(e.strerror or str(e)) from None
            raise
        super().__init__(reactor, sock)
        self._receiver = receiver
        self.start_reading()

    def doRead(self) -> None:
        """
        Read one datagram: a session's socket mostly holds one reply, and a second C{recv}
        that fails with EAGAIN costs more than another turn of the (level-triggered) poller.
        """
        try:
            data = self.socket.recv(MAX_DATAGRAM)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self.socket_error(e.errno or 0)
            return
        self._receiver.datagram(data)

    def socket_error(self, code: int) -> None:
        if code in UNREACHABLE:
            self._receiver.unreachable(_describe(code))
        else:
            super().socket_error(code)

    def send(self, data: bytes) -> bool:
        """
        Send one datagram; False if it was dropped (buffer full, too big).

        @raise BackendUnreachableError: a previous datagram was answered by an ICMP error.
        """
        try:
            self.socket.send(data)
            return True
        except OSError as e:
            if e.errno in UNREACHABLE:
                raise BackendUnreachableError(_describe(e.errno)) from None
            return False


def _describe(code: int) -> str:
    if code == errno.ECONNREFUSED:
        return "ICMP port unreachable"
    return f"ICMP: {os.strerror(code)}"


def open_upstream(reactor: IReactorFDSet) -> Callable[[str, int, UpstreamReceiver], UpstreamSocket]:
    """The opener the relay and the probe use on a real reactor."""

    def open_socket(host: str, port: int, receiver: UpstreamReceiver) -> UpstreamSocket:
        return UpstreamSocket(reactor, host, port, receiver)

    return open_socket
