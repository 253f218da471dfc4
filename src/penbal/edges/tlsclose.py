# -*- test-case-name: tests.edges.test_tlsclose,tests.integration.test_edges_tls -*-
"""
Ending a half-closed TLS connection without an error.

When penbal has shut down its sending side of a TLS connection (the other leg ended) and the
peer's close_notify then arrives, Twisted's C{TLSMemoryBIOProtocol._flushReceiveBIO} closes
the TCP transport, whose C{loseConnection} runs C{connectionLost} at once (its write side is
already gone), which drops C{_tlsConnection}; the receive loop's final C{_flushSendBIO} then
raises AttributeError, logged as an "Unhandled Error" for every such connection.  The
subclass here skips that flush once the connection is gone.  It overrides a private method:
checked against Twisted 24.7 to 26.10, and L{install} leaves Twisted alone if the method is
not there.
"""

from __future__ import annotations

from typing import Any

from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol


class QuietFlush:
    """Mixed in before Twisted's TLS protocol: no flush once the connection is gone."""

    _tlsConnection: Any

    def _flushSendBIO(self) -> None:
        if self._tlsConnection is None:
            return  # the connection is over: nothing more can be sent
        super()._flushSendBIO()  # type: ignore[misc]


_guarded: dict[type, type] = {}


def guarded(base: type) -> type:
    """C{base} (Twisted's TLS protocol class, or a subclass) with L{QuietFlush} mixed in."""
    if issubclass(base, QuietFlush):
        return base
    found = _guarded.get(base)
    if found is None:
        found = _guarded[base] = type(f"HalfClosed{base.__name__}", (QuietFlush, base), {})
    return found


def install() -> bool:
    """Make every TLS connection of this process (C{ssl:}/C{tls:} listening sockets, which
    Twisted builds itself) use a guarded protocol; False if Twisted is not as expected."""
    base = TLSMemoryBIOFactory.protocol
    if not (isinstance(base, type) and issubclass(base, TLSMemoryBIOProtocol)
            and callable(getattr(base, "_flushSendBIO", None))):
        return False
    TLSMemoryBIOFactory.protocol = guarded(base)
    return True
