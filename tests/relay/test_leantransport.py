# -*- test-case-name: tests.relay.test_leantransport -*-
"""
Tests of the lean TCP transport, on real connected sockets and a reactor that records what is
registered (the tests call C{doRead}/C{doWrite} as the poll loop would).
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IHalfCloseableProtocol, IPushProducer, ITCPTransport
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.testing import MemoryReactor
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from penbal.relay.leantransport import SMALL_READ, WRITE_LIMIT, LeanTCPTransport


@implementer(IHalfCloseableProtocol)
class Recording(Protocol):
    """Records what the transport tells it."""

    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.read_lost = self.write_lost = 0
        self.lost: list[Failure] = []

    def dataReceived(self, data: bytes) -> None:
        self.data.append(data)

    def readConnectionLost(self) -> None:
        self.read_lost += 1

    def writeConnectionLost(self) -> None:
        self.write_lost += 1

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.lost.append(reason)


class Producer:
    """A streaming producer that counts pauses and resumes."""

    def __init__(self) -> None:
        self.paused = self.resumed = self.stopped = 0

    def pauseProducing(self) -> None:
        self.paused += 1

    def resumeProducing(self) -> None:
        self.resumed += 1

    def stopProducing(self) -> None:
        self.stopped += 1


def poll_once(transport: LeanTCPTransport, peer: socket.socket) -> bytes:
    """One turn of a poll loop: a write event if the transport's socket can take bytes, then
    whatever the peer can read (a delayed ACK can leave both waiting for a moment)."""
    readable, writable, _ = select.select([peer], [transport.socket], [], 5)
    if writable:
        transport.doWrite()
    return peer.recv(1 << 16) if readable else b""


def turns(limit: int = 100_000, seconds: float = 30.0) -> Iterator[int]:
    """Bound a test's poll loop in count and time; running out is a failure."""
    deadline = time.monotonic() + seconds
    for turn in range(limit):
        if time.monotonic() > deadline:
            break
        yield turn
    raise AssertionError(f"no end after {limit} turns or {seconds:g}s")


def pump_until(
    transport: LeanTCPTransport, peer: socket.socket, done: Callable[[bytearray], bool]
) -> bytearray:
    """Run poll turns (bounded) until C{done(what the peer received so far)}; return that."""
    got = bytearray()
    for _ in turns():
        if done(got):
            return got
        got += poll_once(transport, peer)
    return got  # not reached: turns() fails when it runs out


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """A connected TCP pair on loopback: (ours, the peer's)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        peer = socket.create_connection(server.getsockname())
        ours, _ = server.accept()
    peer.settimeout(10)
    return ours, peer


class LeanTransportTests(SynchronousTestCase):
    def make(
        self, protocol: Protocol | None = None, max_read: int = SMALL_READ
    ) -> tuple[LeanTCPTransport, Any, socket.socket, MemoryReactor]:
        ours, peer = tcp_pair()
        self.addCleanup(peer.close)
        self.addCleanup(ours.close)
        fds = MemoryReactor()
        proto: Any = protocol if protocol is not None else Recording()
        transport = LeanTCPTransport(ours, proto, fds, peer.getsockname(), max_read)
        proto.makeConnection(transport)
        return transport, proto, peer, fds

    def test_interfaces(self) -> None:
        """It is a TCP transport and a push producer, reading from the start."""
        transport, _, peer, fds = self.make()
        self.assertTrue(verifyObject(ITCPTransport, transport))
        self.assertTrue(verifyObject(IPushProducer, transport))
        self.assertIn(transport, fds.readers)
        self.assertEqual(transport.getPeer().port, peer.getsockname()[1])
        self.assertEqual(transport.getHost().port, peer.getpeername()[1])

    def test_write_sends_at_once(self) -> None:
        """With nothing queued a write goes straight to the socket; nothing is registered."""
        transport, _, peer, fds = self.make()
        transport.write(b"hello")
        self.assertEqual(peer.recv(100), b"hello")
        self.assertEqual(fds.writers, set())

    def test_read_and_end_of_stream(self) -> None:
        """Reads reach the protocol; the peer's EOF is a half-close, reading stops."""
        transport, proto, peer, fds = self.make()
        peer.sendall(b"abc")
        peer.shutdown(socket.SHUT_WR)
        transport.doRead()
        transport.doRead()
        self.assertEqual((proto.data, proto.read_lost), ([b"abc"], 1))
        self.assertNotIn(transport, fds.readers)
        self.assertEqual(proto.lost, [])
        transport.write(b"still open")  # the other direction is untouched
        self.assertEqual(peer.recv(100), b"still open")

    def test_eof_closes_a_protocol_without_half_close(self) -> None:
        """A protocol that cannot hear of half-closes is closed at the peer's EOF."""
        lost: list[Failure] = []

        class Plain(Protocol):
            def connectionLost(self, reason: Failure = connectionDone) -> None:
                lost.append(reason)

        transport, _, peer, _ = self.make(Plain())
        peer.shutdown(socket.SHUT_WR)
        transport.doRead()
        self.assertEqual(len(lost), 1)
        self.assertIsInstance(lost[0].value, ConnectionDone)
        self.assertEqual(peer.recv(10), b"")

    def test_backpressure(self) -> None:
        """Past the write limit the producer is paused; once drained, resumed."""
        transport, _, peer, fds = self.make()
        producer = Producer()
        transport.registerProducer(producer, True)
        chunk = b"x" * 65536
        sent = 0
        while not producer.paused and sent < 256 * len(chunk):
            transport.write(chunk)
            sent += len(chunk)
        self.assertEqual(producer.paused, 1)
        self.assertIn(transport, fds.writers)
        self.assertGreater(transport._buffered, WRITE_LIMIT)
        received = len(pump_until(transport, peer, lambda got: len(got) >= sent))
        self.assertEqual(received, sent)
        self.assertEqual((producer.resumed, fds.writers), (1, set()))

    def test_bytes_in_order(self) -> None:
        """Queued and direct writes reach the peer in order."""
        transport, _, peer, _ = self.make()
        transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        expected = b"".join(bytes([i]) * 5000 for i in range(200))
        for i in range(200):
            transport.write(bytes([i]) * 5000)
        got = pump_until(transport, peer, lambda got: len(got) >= len(expected))
        self.assertEqual(bytes(got), expected)

    def test_lose_write_connection_after_flush(self) -> None:
        """The half-close waits for the queue, then the protocol hears of it."""
        transport, proto, peer, _ = self.make()
        transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        payload = b"y" * 500_000
        transport.write(payload)
        transport.loseWriteConnection()
        self.assertEqual(proto.write_lost, 0)
        transport.write(b"ignored after the half-close")
        got = pump_until(transport, peer, lambda _: bool(proto.write_lost))
        while data := peer.recv(1 << 16):
            got += data
        self.assertEqual((bytes(got), proto.write_lost, proto.lost), (payload, 1, []))

    def test_lose_connection_after_flush(self) -> None:
        """loseConnection sends what is queued, then closes; connectionLost is clean."""
        transport, proto, peer, fds = self.make()
        transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        payload = b"z" * 300_000
        transport.write(payload)
        transport.loseConnection()
        self.assertEqual(proto.lost, [])
        got = pump_until(transport, peer, lambda _: bool(proto.lost))
        while data := peer.recv(1 << 16):
            got += data
        self.assertEqual(bytes(got), payload)
        self.assertIsInstance(proto.lost[0].value, ConnectionDone)
        self.assertEqual((fds.readers, fds.writers), (set(), set()))
        self.assertEqual(transport.fileno() >= 0, True)  # kept for the poll loop's check

    def test_lose_connection_with_empty_queue_is_immediate(self) -> None:
        """Nothing queued: the protocol hears of the close within loseConnection."""
        transport, proto, peer, _ = self.make()
        transport.loseConnection()
        transport.loseConnection()
        self.assertEqual(len(proto.lost), 1)
        self.assertEqual(peer.recv(10), b"")

    def test_abort_drops_the_queue(self) -> None:
        """abortConnection closes at once and says so."""
        transport, proto, _, fds = self.make()
        transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        transport.write(b"q" * 500_000)
        transport.abortConnection()
        self.assertIsInstance(proto.lost[0].value, ConnectionAborted)
        self.assertEqual(fds.writers, set())

    def test_abort_resets(self) -> None:
        """abortConnection tells the peer the close was not clean: a reset, not an end of
        stream (as Twisted's TCP transports do)."""
        transport, _, peer, _ = self.make()
        transport.abortConnection()
        with self.assertRaises(ConnectionResetError):
            peer.recv(10)

    def test_write_error_surfaces_on_the_write_event(self) -> None:
        """A reset peer: write() does not raise; the next write event closes with the error."""
        transport, proto, peer, _ = self.make()
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        peer.close()  # RST
        transport.write(b"a")
        transport.write(b"b")
        for _ in range(3):
            transport.doWrite()
        self.assertEqual(len(proto.lost), 1)
        self.assertIsInstance(proto.lost[0].value, ConnectionLost)

    def test_reads_grow_and_shrink(self) -> None:
        """A read that fills the buffer raises the read size to the maximum; a small one
        brings it back."""
        transport, proto, peer, _ = self.make(max_read=1 << 20)
        peer.sendall(b"b" * (3 * SMALL_READ))
        transport.doRead()
        self.assertEqual(transport.read_size, 1 << 20)
        for _ in turns():
            if sum(map(len, proto.data)) >= 3 * SMALL_READ:
                break
            transport.doRead()
        peer.sendall(b"small")
        transport.doRead()
        self.assertEqual(transport.read_size, SMALL_READ)

    def test_spurious_events_are_harmless(self) -> None:
        """A read event with nothing to read, or a write event with nothing queued, is ignored."""
        transport, proto, _, _ = self.make()
        transport.doRead()
        transport.doWrite()
        self.assertEqual((proto.data, proto.lost), ([], []))

    def test_pause_resume(self) -> None:
        """As a producer it stops and starts reading; not after the peer's EOF."""
        transport, _, peer, fds = self.make()
        transport.pauseProducing()
        self.assertNotIn(transport, fds.readers)
        transport.resumeProducing()
        self.assertIn(transport, fds.readers)
        peer.shutdown(socket.SHUT_WR)
        transport.doRead()
        transport.resumeProducing()
        self.assertNotIn(transport, fds.readers)

    def test_reactor_hang_up(self) -> None:
        """The poll loop's connectionLost (a hang-up) reaches the protocol once, and stops the
        registered producer, as Twisted's transports do."""
        transport, proto, _, _ = self.make()
        producer = Producer()
        transport.registerProducer(producer, True)
        transport.connectionLost(Failure(ConnectionLost()))
        transport.connectionLost(Failure(ConnectionLost()))
        self.assertEqual((len(proto.lost), producer.stopped), (1, 1))

    def test_socket_options(self) -> None:
        """TCP_NODELAY and SO_KEEPALIVE are set on the socket, and can be turned off."""
        transport, _, _, _ = self.make()
        transport.setTcpNoDelay(True)
        transport.setTcpKeepAlive(True)
        self.assertTrue(transport.getTcpNoDelay() and transport.getTcpKeepAlive())
        transport.setTcpNoDelay(False)
        self.assertFalse(transport.getTcpNoDelay())
        transport.setTcpNoDelay(True)
        self.assertTrue(transport.getTcpNoDelay())

    def test_socket_options_set_as_made(self) -> None:
        """A lean transport turns TCP_NODELAY on as it is made (unless told it is on), and
        SO_KEEPALIVE when asked (a backend's), so that its legs need not ask."""
        for keepalive in (False, True):
            ours, peer = tcp_pair()
            self.addCleanup(peer.close)
            self.addCleanup(ours.close)
            LeanTCPTransport(ours, Recording(), MemoryReactor(), peer.getsockname(),
                             keepalive=keepalive)
            self.assertTrue(ours.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            self.assertEqual(bool(ours.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)),
                             keepalive)
        ours, peer = tcp_pair()
        self.addCleanup(peer.close)
        self.addCleanup(ours.close)
        LeanTCPTransport(ours, Recording(), MemoryReactor(), peer.getsockname(), nodelay=True)
        self.assertFalse(ours.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))  # trusted

    def test_stop_producing_closes_on_the_next_write_event(self) -> None:
        """stopProducing (a Twisted transport closing) closes on a later write event, not
        inside the caller."""
        transport, proto, peer, fds = self.make()
        transport.stopProducing()
        self.assertEqual(proto.lost, [])
        self.assertIn(transport, fds.writers)
        self.assertNotIn(transport, fds.readers)
        transport.doWrite()
        self.assertIsInstance(proto.lost[0].value, ConnectionDone)
        self.assertEqual(peer.recv(10), b"")


class PipeTests(SynchronousTestCase):
    """A piped transport writes what it reads straight to its peer transport."""

    def pair(self) -> tuple[LeanTCPTransport, Recording, socket.socket, LeanTCPTransport,
                            Recording, socket.socket]:
        fds = self.fds = MemoryReactor()
        made = []
        for _ in range(2):
            ours, peer = tcp_pair()
            self.addCleanup(peer.close)
            self.addCleanup(ours.close)
            proto = Recording()
            transport = LeanTCPTransport(ours, proto, fds, peer.getsockname())
            proto.makeConnection(transport)
            made.append((transport, proto, peer))
        (a, pa, sa), (b, pb, sb) = made
        a.pipe, b.pipe = b, a
        return a, pa, sa, b, pb, sb

    def test_reads_go_to_the_peer_counted(self) -> None:
        """Bytes read by one transport leave by the other, counted in C{piped}, unseen by
        the protocol; the end of stream still reaches the protocol."""
        a, pa, sa, b, pb, sb = self.pair()
        sa.sendall(b"request")
        a.doRead()
        self.assertEqual(sb.recv(100), b"request")
        sb.sendall(b"answer!!")
        b.doRead()
        self.assertEqual(sa.recv(100), b"answer!!")
        self.assertEqual((a.piped, b.piped, pa.data, pb.data), (7, 8, [], []))
        sa.shutdown(socket.SHUT_WR)
        a.doRead()
        self.assertEqual(pa.read_lost, 1)

    def test_pair(self) -> None:
        """pair() makes each transport the other's streaming producer, and with pipe=True
        each one's pipe; a transport that already has a producer refuses (as
        registerProducer does)."""
        a, _, _, b, _, _ = self.pair()
        a.pipe = b.pipe = None
        a.pair(b, pipe=False)
        self.assertEqual((a.producer, b.producer, a.pipe, b.pipe), (b, a, None, None))
        self.assertRaises(RuntimeError, a.pair, b, True)
        a.unregisterProducer()
        b.unregisterProducer()
        a.pair(b, pipe=True)
        self.assertEqual((a.producer, b.producer, a.pipe, b.pipe), (b, a, b, a))
        # Streaming producers: a full queue pauses the other (see the backpressure test).
        b._queue(b"x" * 70000)
        self.assertNotIn(a, self.fds.readers)

    def test_piped_read_to_a_half_closing_peer(self) -> None:
        """A piped read reaching a peer whose half-close waits for its queue (or is done)
        adds nothing there: the queue is sent whole, then the end of stream."""
        a, _, sa, b, _, sb = self.pair()
        # 16 MiB: more than loopback's socket buffers take at once.  (Not smaller buffers: a
        # receive buffer below loopback's MSS leaves the sender waiting for zero-window
        # probes, hundreds of milliseconds each, while its socket stays writable.)
        queued = bytes(range(256)) * 65536
        b.write(queued)
        self.assertTrue(b._buffer)
        b.loseWriteConnection()  # waits for the queue
        waiting = b._buffered
        sa.sendall(b"late")
        a.doRead()
        self.assertEqual((a.piped, b._buffered), (4, waiting))
        got = pump_until(b, sb, lambda got: len(got) >= len(queued))
        self.assertEqual(bytes(got), queued)
        self.assertEqual(sb.recv(100), b"")  # the end of stream, after the queue
        sa.sendall(b"later")
        a.doRead()  # the half-close is done now
        self.assertEqual((a.piped, b._buffer), (9, []))
        self.assertEqual(sb.recv(100), b"")

    def test_close_drops_the_pipe(self) -> None:
        """A closed transport holds no pipe (no cycle between the two transports), and a
        write through a pipe to a closed transport is dropped, not raised."""
        a, _, sa, b, _, _ = self.pair()
        b.abortConnection()
        self.assertIsNone(b.pipe)
        sa.sendall(b"late")
        a.doRead()
        self.assertEqual(a.piped, 4)

    def test_backpressure_through_the_pipe(self) -> None:
        """A piped read that fills the peer's queue pauses the reading transport, its
        registered producer, as the protocol path does."""
        a, _, sa, b, _, sb = self.pair()
        b.registerProducer(a, True)
        b.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sb.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        chunk = b"x" * 65536
        for _ in turns(limit=200):
            if a not in self.fds.readers:
                break
            sa.sendall(chunk)
            a.doRead()
        self.assertNotIn(a, self.fds.readers)
        self.assertIn(b, self.fds.writers)  # its queue waits for the socket

    def test_unsent_rest_survives_the_next_read(self) -> None:
        """Piped reads share one buffer: a read that the peer cannot take at once is queued
        as a copy, so the next read, into the same buffer, changes nothing of it, and every
        byte arrives in order."""
        a, _, sa, b, _, sb = self.pair()
        b.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sb.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sent = bytearray()
        for i in range(8):  # each chunk a different byte: a view of the buffer would show it
            chunk = bytes([65 + i]) * 60000
            sa.sendall(chunk)
            sent += chunk
            for _ in turns(limit=1000):
                if a.piped == len(sent):
                    break
                a.doRead()
        self.assertIn(b, self.fds.writers)  # something waits in b's queue
        got = pump_until(b, sb, lambda got: len(got) >= len(sent))
        self.assertEqual(bytes(got), bytes(sent))
