# -*- test-case-name: tests.relay.test_writethrough -*-
"""
Tests of write-through: bytes leave at once when nothing is queued, order is kept otherwise.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet import reactor as global_reactor
from twisted.internet import tcp
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from penbal.relay.writethrough import send_now, supports_write_through


class FakeSocket:
    """Accepts at most C{room} bytes per send, recording them."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.sent = b""

    def send(self, data: bytes) -> int:
        if self.room == 0:
            raise BlockingIOError()
        taken = data[: self.room]
        self.room -= len(taken)
        self.sent += taken
        return len(taken)


def tcp_transport(room: int) -> tuple[Any, FakeSocket]:
    """A real tcp.Connection over a fake socket, its buffered writes captured."""
    pair = socket.socketpair()
    transport: Any = tcp.Connection(pair[0], None, global_reactor)  # type: ignore[arg-type]
    fake = FakeSocket(room)
    transport.socket = fake
    transport.connected = 1
    transport.queued = []
    transport.write = transport.queued.append
    for s in pair:
        s.close()
    return transport, fake


class WriteThroughTests(SynchronousTestCase):
    """send_now() on real TCP transports; other transports are not eligible."""

    def test_plain_transport_not_eligible(self) -> None:
        """A transport without Twisted's TCP internals is left to its own write()."""
        self.assertFalse(supports_write_through(StringTransport()))

    def test_tcp_transport_eligible(self) -> None:
        """Twisted's TCP connection has what write-through needs."""
        transport, _ = tcp_transport(room=1)
        self.assertTrue(supports_write_through(transport))

    def test_sends_at_once_when_empty(self) -> None:
        """With nothing queued, bytes go straight to the socket."""
        transport, sock = tcp_transport(room=100)
        send_now(transport, b"hello")
        self.assertEqual((sock.sent, transport.queued), (b"hello", []))

    def test_rest_is_queued(self) -> None:
        """What the socket does not take is handed to the transport, in order."""
        transport, sock = tcp_transport(room=3)
        send_now(transport, b"hello")
        self.assertEqual((sock.sent, transport.queued), (b"hel", [b"lo"]))

    def test_would_block_queues_everything(self) -> None:
        """A full socket buffer queues the whole message."""
        transport, _ = tcp_transport(room=0)
        send_now(transport, b"hello")
        self.assertEqual(transport.queued, [b"hello"])

    def test_queued_data_keeps_order(self) -> None:
        """When bytes are already queued, new ones queue behind them."""
        transport, sock = tcp_transport(room=100)
        transport.dataBuffer = b"earlier"
        send_now(transport, b"later")
        self.assertEqual((sock.sent, transport.queued), (b"", [b"later"]))

    def test_closing_transport_queues(self) -> None:
        """A transport that is closing or half-closing gets the data through write()."""
        for attribute in ("disconnecting", "_writeDisconnecting"):
            transport, sock = tcp_transport(room=100)
            setattr(transport, attribute, True)
            send_now(transport, b"x")
            self.assertEqual((sock.sent, transport.queued), (b"", [b"x"]), attribute)
