# -*- test-case-name: tests.relay.test_directconnect -*-
"""
Direct connect: reach a backend at an IP literal with one non-blocking socket, then wrap it in
penbal's lean transport, skipping C{connectTCP}'s per-connection connector, address
"resolution" Deferreds, timers and second C{connect()} (new connections: +30 % in the notes).
It uses the reactor's public C{IReactorFDSet} only.  Host names, TLS to backends, the stock
path (C{--relay-path twisted}) and test reactors use C{connectTCP}.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import Any

from twisted.internet import error
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IDelayedCall, IReactorFDSet, IReactorTime
from twisted.internet.protocol import ClientFactory
from twisted.python.failure import Failure

from penbal.relay.leantransport import LeanTCPTransport

_PENDING = (0, errno.EINPROGRESS, errno.EALREADY, errno.EWOULDBLOCK)
_families: dict[str, int | None] = {}


def ip_family(host: str) -> int | None:
    """AF_INET or AF_INET6 for an IP literal, None for a host name (cached)."""
    family = _families.get(host, -1)
    if family != -1:
        return family
    found: int | None = None
    for candidate in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(candidate, host)
        except OSError:
            continue
        found = candidate
        break
    if len(_families) < 4096:
        _families[host] = found
    return found


class DirectAttempt:
    """One connect attempt; tells C{factory} as C{connectTCP} would (build, or failed)."""

    def __init__(
        self,
        reactor: IReactorFDSet,
        clock: IReactorTime,
        family: int,
        host: str,
        port: int,
        factory: ClientFactory,
        timeout: float,
        lean_read: int = 1 << 20,
    ) -> None:
        self._reactor = reactor
        #: Wrap the connected socket in a L{LeanTCPTransport} reading up to this.
        self._lean_read = lean_read
        self._factory = factory
        self._address = (host, port)
        self._family = family
        # Non-blocking from its creation: no ioctl of its own.
        self._sock: socket.socket | None = socket.socket(
            family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK
        )
        self._timer: IDelayedCall | None = None
        err = self._sock.connect_ex(self._address)
        if err not in _PENDING:
            self._fail(error.getConnectError((err, os.strerror(err))))
            return
        self._timer = clock.callLater(timeout, self._timed_out)
        reactor.addWriter(self)  # type: ignore[arg-type]

    def fileno(self) -> int:
        return self._sock.fileno() if self._sock is not None else -1

    def logPrefix(self) -> str:
        return "penbal.relay.directconnect"

    def doWrite(self) -> None:
        """Writable: the connect finished, one way or the other."""
        sock = self._sock
        if sock is None:
            return
        self._stop_waiting()
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._fail(error.getConnectError((err, os.strerror(err))))
            return
        self._sock = None
        self._adopt(sock)

    doRead = doWrite

    def connectionLost(self, reason: Failure) -> None:
        """The reactor saw an error or hang-up while connecting (a refusal, on epoll)."""
        sock = self._sock
        if sock is not None:
            self._stop_waiting()
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self._fail(error.getConnectError((err, os.strerror(err))))
            else:
                self._fail(error.ConnectError(string=reason.getErrorMessage()))

    def stopConnecting(self) -> None:
        """The client went away: drop the attempt quietly."""
        if self._sock is not None:
            self._stop_waiting()
            self._sock.close()
            self._sock = None

    def _timed_out(self) -> None:
        self._timer = None
        if self._sock is not None:
            self._stop_waiting()
            self._fail(error.TimeoutError())

    def _stop_waiting(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._sock is not None:
            self._reactor.removeWriter(self)  # type: ignore[arg-type]

    def _fail(self, reason: Exception) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._factory.clientConnectionFailed(self, Failure(reason))  # type: ignore[arg-type]

    def _adopt(self, sock: socket.socket) -> None:
        peer = self._address
        address_type: Any = IPv6Address if self._family == socket.AF_INET6 else IPv4Address
        protocol = self._factory.buildProtocol(address_type("TCP", *peer))
        assert protocol is not None
        lean: Any = protocol
        lean.makeConnection(LeanTCPTransport(sock, lean, self._reactor, peer, self._lean_read))
