# -*- test-case-name: tests.relay.test_writethrough -*-
"""
Write-through: send relayed bytes at once when the peer's outgoing buffer is empty.

C{transport.write()} only buffers and sends on a later reactor turn; sending at once saves an
C{epoll_wait} and two C{epoll_ctl} per message (kept-alive queries: 0.82x -> 1.02x Pen).  This
reads private attributes of Twisted's C{FileDescriptor} (C{dataBuffer}, C{_tempDataLen},
C{_writeDisconnecting}, C{socket}); it was checked against Twisted 24.7 to 26.10.  Transports
without them (TLS, unix sockets of another shape, test doubles) get plain C{transport.write}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import tcp

_NEEDED = ("dataBuffer", "_tempDataLen", "_writeDisconnecting", "disconnecting", "socket")


def supports_write_through(transport: Any) -> bool:
    """True if C{transport} is a plain TCP transport with the internals we rely on."""
    return isinstance(transport, tcp.Connection) and all(hasattr(transport, a) for a in _NEEDED)


def send_now(transport: Any, data: bytes) -> bytes:
    """Send C{data} straight to the socket of a transport that L{supports_write_through}, when
    nothing is queued before it; return what is left for C{transport.write} (C{b""}: all sent).
    """
    if (
        transport.dataBuffer
        or transport._tempDataLen
        or transport.disconnecting
        or transport._writeDisconnecting
        or not transport.connected
    ):
        return data
    try:
        sent = transport.socket.send(data)
    except OSError:
        # Would block, or an error that Twisted meets on its own write path and reports.
        return data
    return data[sent:] if sent < len(data) else b""
