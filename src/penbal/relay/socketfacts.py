# -*- test-case-name: tests.relay.test_leantransport -*-
"""
What a lean transport tells about its TCP socket, and the options it sets on it: the
addresses (C{ITransport.getPeer}/C{getHost}) and C{ITCPTransport}'s C{TCP_NODELAY} and
C{SO_KEEPALIVE}.  Kept apart from the relaying itself (L{penbal.relay.leantransport}), which
sets both itself as it is made (a relay leg calls neither).
"""

from __future__ import annotations

import _socket
import socket
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address


class SocketFacts:
    """The addresses and options of C{self.socket} (a mixin of the lean transport)."""

    __slots__ = ()

    socket: _socket.socket
    #: The peer's (host, port[, flowinfo, scope]) as accept() or connect() had it.
    peer: tuple[Any, ...]

    def getPeer(self) -> IPv4Address | IPv6Address:
        return self._address(self.peer)

    def getHost(self) -> IPv4Address | IPv6Address:
        return self._address(self.socket.getsockname())

    def _address(self, pair: tuple[Any, ...]) -> IPv4Address | IPv6Address:
        kind = IPv6Address if self.socket.family == socket.AF_INET6 else IPv4Address
        return kind("TCP", pair[0], pair[1])

    def getTcpNoDelay(self) -> bool:
        return bool(self.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    def setTcpNoDelay(self, enabled: bool) -> None:
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, enabled)

    def getTcpKeepAlive(self) -> bool:
        return bool(self.socket.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))

    def setTcpKeepAlive(self, enabled: bool) -> None:
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, enabled)
