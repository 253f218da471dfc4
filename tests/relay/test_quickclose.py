"""
Tests for L{penbal.relay.quickclose}: closing relayed sockets without shutdown(2).
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet import tcp
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from penbal.relay.quickclose import SUPPORTED, without_shutdown


class RecordingSocket:
    """Just enough of a socket for Twisted's C{_closeSocket}: records the calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def shutdown(self, how: int) -> None:
        self.calls.append(f"shutdown({how})")

    def close(self) -> None:
        self.calls.append("close")


class QuickCloseTests(SynchronousTestCase):
    def test_twisted_as_expected(self) -> None:
        """The installed Twisted has the attribute (else the module would do nothing)."""
        self.assertTrue(SUPPORTED)

    def closed_calls(self, skip: bool) -> list[str]:
        connection: Any = tcp.Connection.__new__(tcp.Server)
        connection.socket = RecordingSocket()
        if skip:
            without_shutdown(connection)
        connection._closeSocket(True)
        calls: list[str] = connection.socket.calls
        return calls

    def test_close_only(self) -> None:
        """A transport marked closes its socket with close() alone; others shut down first."""
        self.assertEqual(self.closed_calls(skip=False), ["shutdown(2)", "close"])
        self.assertEqual(self.closed_calls(skip=True), ["close"])

    def test_other_transports_untouched(self) -> None:
        """A transport that is not Twisted's TCP transport is left as it is."""
        transport = StringTransport()
        without_shutdown(transport)
        self.assertFalse(hasattr(transport, "_shouldShutdown"))

    def test_real_socket_peer_sees_end(self) -> None:
        """On a real socket pair, close() alone still ends the stream for the peer."""
        ours, theirs = socket.socketpair()
        self.addCleanup(theirs.close)
        ours.sendall(b"last")
        ours.close()
        theirs.settimeout(5)
        self.assertEqual(theirs.recv(10), b"last")
        self.assertEqual(theirs.recv(10), b"")
