# -*- test-case-name: tests.relay.test_leanport -*-
"""
Accepting clients of a plain TCP port straight onto L{LeanTCPTransport}s, and capping the
accept batches of Twisted's own ports at C{-x}: the one module of penbal that touches
C{tcp.Port} internals.

Twisted's C{tcp.Port.doRead} wraps each accept batch in a log buffer, and hands each client
to a C{tcp.Server}.  On a port that penbal's own L{RelayFactory} serves, this replaces the
port's C{doRead} with a plain accept loop (capped at the free connection slots) that builds a
lean transport per client.  It reads and sets attributes of C{twisted.internet.tcp.Port}
(C{socket}, C{factory}, C{doRead}, C{transport}), checked against Twisted 24.7 to 26.10;
L{supported} says whether a port has them, else the port is left as it is.  Out of
descriptors or memory, a batch goes to Twisted's own C{doRead}, which knows how to shed
clients without spinning.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from typing import Any

from twisted.internet import tcp
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IReactorFDSet
from twisted.internet.protocol import Protocol
from twisted.logger import Logger

from penbal.relay.leantransport import LeanTCPTransport

log = Logger()

#: Most clients accepted per readiness event (the poll loop comes back for the rest).
BATCH = 64
#: Accept errors that Twisted's own loop handles (it sheds clients with a reserved descriptor).
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_NUMERIC = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV


def supported(port: object, factory: object) -> bool:
    """Whether C{port} is Twisted's plain TCP port (not TLS, not unix) serving C{factory}."""
    return (
        type(port) is tcp.Port
        and getattr(port, "factory", None) is factory
        and isinstance(getattr(port, "socket", None), socket.socket)
        and callable(getattr(port, "doRead", None))
        and hasattr(port, "transport")
    )


def make_lean(
    port: Any,
    build: Callable[[IPv4Address | IPv6Address], Protocol],
    reactor: IReactorFDSet,
    max_read: int,
    free_slots: Callable[[], int],
) -> None:
    """Accept the clients of C{port} with a lean loop onto lean transports.  TCP_NODELAY is
    set once on the listening socket: Linux gives it to every accepted socket."""
    listening: socket.socket = port.socket
    try:
        listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        nodelay = bool(listening.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
    except OSError:
        nodelay = False

    def accepted(
        sock: socket.socket, protocol: Protocol, addr: tuple[Any, ...], _port: object,
        _session: int, _reactor: object,
    ) -> LeanTCPTransport:
        return LeanTCPTransport(sock, protocol, reactor, addr, max_read, nodelay)

    port.transport = accepted  # what Twisted's own doRead builds, when it runs
    twisted_read = port.doRead
    address = IPv6Address if listening.family == socket.AF_INET6 else IPv4Address

    def lean_read() -> None:
        for _ in range(max(1, min(BATCH, free_slots()))):
            try:
                sock, addr = listening.accept()
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno in _EXHAUSTED:
                    port.numberAccepts = 1
                    twisted_read()
                    return
                continue  # the client gave up before it was accepted (ECONNABORTED, ...)
            transport = None
            try:
                if len(addr) == 4:  # IPv6: the scope id, as Twisted gives it
                    addr = (socket.getnameinfo(addr, _NUMERIC)[0], *addr[1:])
                protocol = build(address("TCP", addr[0], addr[1]))
                transport = LeanTCPTransport(sock, protocol, reactor, addr, max_read, nodelay)
                protocol.makeConnection(transport)
            except Exception:
                log.failure("accepting a client from {addr}", addr=addr)
                _discard(sock, transport)

    port.doRead = lean_read


def cap_batches(port: Any, free_slots: Callable[[], int]) -> None:
    """Cap each accept batch of a Twisted TCP port at C{free_slots()}: Twisted accepts up to
    C{numberAccepts} clients per readiness event (100 and growing) before pausing the port
    could take effect, so C{-x} would overshoot under a burst.  Ports without a
    C{numberAccepts} (TLS wrappers, unix sockets of another shape) are left alone."""
    read = getattr(port, "doRead", None)
    if read is None or not isinstance(getattr(port, "numberAccepts", None), int):
        return

    def capped_read() -> None:
        free = free_slots()
        if free < port.numberAccepts:
            port.numberAccepts = max(1, free)
        read()

    port.doRead = capped_read


def _discard(sock: socket.socket, transport: LeanTCPTransport | None) -> None:
    """A client whose set-up failed: close it without leaving it registered."""
    try:
        if transport is not None:
            transport.abortConnection()
        elif sock.fileno() >= 0:
            sock.close()
    except Exception:
        log.failure("closing a client whose set-up failed")
