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

from penbal.relay.legs import WRITE_THROUGH, Leg
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
        self.assertEqual(send_now(transport, b"hello"), b"")
        self.assertEqual(sock.sent, b"hello")

    def test_rest_is_returned(self) -> None:
        """What the socket does not take is returned, to be queued in order."""
        transport, sock = tcp_transport(room=3)
        self.assertEqual(send_now(transport, b"hello"), b"lo")
        self.assertEqual(sock.sent, b"hel")

    def test_would_block_returns_everything(self) -> None:
        """A full socket buffer leaves the whole message to be queued."""
        transport, _ = tcp_transport(room=0)
        self.assertEqual(send_now(transport, b"hello"), b"hello")

    def test_queued_data_keeps_order(self) -> None:
        """When bytes are already queued, new ones queue behind them."""
        transport, sock = tcp_transport(room=100)
        transport.dataBuffer = b"earlier"
        self.assertEqual(send_now(transport, b"later"), b"later")
        self.assertEqual(sock.sent, b"")

    def test_closing_transport_queues(self) -> None:
        """A transport that is closing or half-closing gets the data through write()."""
        for attribute in ("disconnecting", "_writeDisconnecting"):
            transport, sock = tcp_transport(room=100)
            setattr(transport, attribute, True)
            self.assertEqual(send_now(transport, b"x"), b"x", attribute)
            self.assertEqual(sock.sent, b"", attribute)


class LazyProducerTests(SynchronousTestCase):
    """On the write-through path a leg becomes its peer's producer only when bytes queue."""

    def leg(self, room: int) -> tuple[Leg, Any]:
        out, _ = tcp_transport(room=room)
        leg = Leg()
        leg.transport = StringTransport()
        leg.out, leg.direct = out, WRITE_THROUGH
        return leg, out

    def test_idle_pair_registers_nothing(self) -> None:
        """Bytes the socket takes at once leave no producer behind."""
        leg, out = self.leg(room=100)
        leg.forward(b"hello")
        self.assertIsNone(out.producer)
        self.assertFalse(leg.producing)

    def test_queued_bytes_register_backpressure(self) -> None:
        """The first bytes that must wait make this leg's transport the peer's producer."""
        leg, out = self.leg(room=3)
        leg.forward(b"hello")
        self.assertIs(out.producer, leg.transport)
        self.assertTrue(out.streamingProducer)
        self.assertEqual(out.queued, [b"lo"])
        leg.forward(b"!")
        self.assertEqual(out.queued, [b"lo", b"!"])

    def test_closing_peer_not_registered(self) -> None:
        """A peer that is already closing gets the bytes but never a producer."""
        leg, out = self.leg(room=100)
        out.disconnecting = True
        leg.forward(b"late")
        self.assertIsNone(out.producer)
        self.assertEqual(out.queued, [b"late"])
