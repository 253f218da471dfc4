# -*- test-case-name: tests.relay.test_quickclose -*-
"""
Closing a relayed TCP socket with one system call instead of two.

Twisted calls C{shutdown(SHUT_RDWR)} before C{close()} on every orderly close, "just to be
safe" in its own words: its sockets are close-on-exec, so no other process holds them, and on
Linux C{close()} ends the connection the same way.  penbal never shares its sockets, so a leg
that closes its transport asks Twisted to skip the C{shutdown} (new connections: about +5 %
in one measurement).  This sets C{_shouldShutdown}, a private attribute of Twisted's
C{tcp._SocketCloser}, checked against Twisted 24.7 to 26.10; where it is missing nothing is
changed.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import tcp

#: Whether the installed Twisted has the attribute this relies on.
SUPPORTED = isinstance(getattr(tcp.Connection, "_shouldShutdown", None), bool)


def without_shutdown(transport: Any) -> None:
    """Let C{transport}, if it is Twisted's TCP transport, close without C{shutdown(2)}."""
    if SUPPORTED and isinstance(transport, tcp.Connection):
        transport._shouldShutdown = False
