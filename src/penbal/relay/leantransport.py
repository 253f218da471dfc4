# -*- test-case-name: tests.relay.test_leantransport -*-
"""
The lean TCP transport: penbal's own transport for a plain TCP relay leg (C{--relay-path lean}).

Twisted's C{tcp.Server} spends about 450 Python calls per relayed connection on set-up and
teardown (log contexts, Failures, deferred writes and closes, a second C{shutdown}).  This
transport does what a relay leg needs: it sends at once when nothing is queued
(write-through), closes with one C{close(2)}, half-closes with C{shutdown(SHUT_WR)} once its
buffer is flushed, grows its reads with the traffic, and is a streaming producer and consumer
(backpressure both ways).  It sets the socket options a relay leg wants (C{TCP_NODELAY}, and
C{SO_KEEPALIVE} when asked) as it is made.  It touches no Twisted internals: it registers
with the reactor through L{penbal.reactor}'s shortcuts (the reactor's C{addReader} and kin
given the descriptor, or those public calls themselves on any other reactor).

Its socket is the C socket type (C{_socket.socket}, which C{socket.socket} extends): the
relay uses none of what the Python subclass adds (C{makefile}, enum-typed C{family}, I/O
reference counting) and so skips its C{__init__} and C{close} frames, two per socket; a
C{socket.socket} works as well (tests, other callers).

Errors found while writing surface on the next write event, never inside C{write()}; a close
tells the protocol at once (C{connectionLost} runs inside C{loseConnection} when nothing is
left to send), which the relay legs allow for.
"""

from __future__ import annotations

import _socket
import socket
import struct
from typing import Any

from twisted.internet import error
from twisted.internet.interfaces import (
    IConsumer,
    IHalfCloseableProtocol,
    IPushProducer,
    IReactorFDSet,
    IReadWriteDescriptor,
    ITCPTransport,
)
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer

from penbal.reactor import DescriptorShortcuts, keeps_descriptor, shortcuts
from penbal.relay import readbuffer
from penbal.relay.producing import Producing
from penbal.relay.socketfacts import SocketFacts

#: The first read size, and the size reads go back to after large ones (Twisted's own): every
#: recv allocates its full size, so large reads pay only while a read fills the buffer.
SMALL_READ = 65536
#: Queued bytes above which the registered producer is paused (Twisted's C{bufferSize}).
WRITE_LIMIT = 65536

_aborted = Failure(error.ConnectionAborted())
#: struct linger {l_onoff = 1, l_linger = 0}: close(2) sends a reset.
_RESET = struct.pack("ii", 1, 0)
#: What a closed transport's C{protocol} becomes: the transport and its protocol refer to each
#: other while open, and dropping the protocol at close lets reference counting free both at
#: once instead of leaving the pair to the cyclic garbage collector.
_GONE = Protocol()
#: Whether instances of a protocol class are half-closeable (asked once per class, not per
#: connection; penbal's legs declare it on the class).
_half_closeable: dict[type, bool] = {}


def _lost(err: OSError) -> Failure:
    return Failure(error.ConnectionLost(str(err)))


@keeps_descriptor  # fileno() is the socket's descriptor until the end, even after close
@implementer(ITCPTransport, IPushProducer, IConsumer, IReadWriteDescriptor)
class LeanTCPTransport(Producing, SocketFacts):
    """One connected TCP socket, relayed on the reactor (see the module docstring)."""

    __slots__ = (
        "_buffer",
        "_buffered",
        "_closed",
        "_eof_pending",
        "_half_close",
        "_read_eof",
        "_write_closed",
        "connected",
        "max_read",
        "peer",
        "pipe",
        "piped",
        "protocol",
        "reactor",
        "read_size",
        "socket",
    )

    def __init__(
        self,
        sock: _socket.socket,
        protocol: Protocol,
        reactor: IReactorFDSet,
        peer: tuple[Any, ...],
        max_read: int = SMALL_READ,
        nodelay: bool = False,
        handed_over_from: Any = None,
        fds: DescriptorShortcuts | None = None,
        keepalive: bool = False,
    ) -> None:
        if sock.gettimeout() != 0.0:
            sock.setblocking(False)  # an accepted socket; a connected one already is
        self.socket = sock
        #: The descriptor, which the reactor is told with each (un)registration.
        self._fd = fd = sock.fileno()
        self.protocol = protocol
        #: Whether the protocol hears of each half of the close (else an end of stream closes).
        kind = type(protocol)
        try:
            half_close = _half_closeable[kind]
        except KeyError:  # the first of its class
            half_close = _half_closeable[kind] = IHalfCloseableProtocol.providedBy(protocol)
        self._half_close = half_close
        self.reactor = reactor
        #: How it (un)registers with the reactor: given by its maker, who asked once.
        self._fds: DescriptorShortcuts = fds if fds is not None else shortcuts(reactor)
        #: The peer's (host, port[, flowinfo, scope]) as accept() or connect() had it.
        self.peer = peer
        self.max_read = max_read if max_read > SMALL_READ else SMALL_READ
        self.read_size = SMALL_READ
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._reading = self._writing = False
        self._read_eof = self._write_closed = self._eof_pending = False
        self._closed = False
        # The socket options a relay leg wants, set here so that its legs need not ask:
        # TCP_NODELAY (unless known on: inherited from the listening socket), and SO_KEEPALIVE
        # when asked (a backend's).  Not every socket has them (a unix socket pair in tests).
        if not nodelay:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        if keepalive:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            except OSError:
                pass
        #: Whether this transport paused its producer because too much was queued.
        self._paused = False
        self.producer: Any = None
        #: Where reads go straight to, past the protocol (see L{pipe_to}); None: the protocol.
        self.pipe: LeanTCPTransport | None = None
        #: Bytes read and written straight to the pipe.
        self.piped = 0
        self._streaming = True
        self.connected = True
        self.disconnecting = False
        self._reading = True
        if handed_over_from is not None:
            # A connect in progress (its descriptor registered for writing) becomes this.
            self._fds.hand_over(handed_over_from, self, fd)
        else:
            self._fds.start_reading(self, fd)

    # The reactor's side (IReadWriteDescriptor).

    def fileno(self) -> int:
        """The descriptor, kept after close so the reactor's check after an event holds."""
        return self._fd

    def logPrefix(self) -> str:
        return self.protocol.__class__.__name__

    def doRead(self) -> None:
        """Readable: hand one read to the protocol (or straight to the pipe), or the end of
        the peer's stream."""
        size = self.read_size
        pipe = self.pipe
        try:
            if pipe is not None:
                view = readbuffer.view if readbuffer.size >= size else readbuffer.scratch(size)
                got = self.socket.recv_into(view, size)
            else:
                data = self.socket.recv(size)
                got = len(data)
        except BlockingIOError:
            return
        except OSError as e:
            self._close(_lost(e))
            return
        if got:
            if got == size:
                self.read_size = self.max_read
            elif got < SMALL_READ < size:
                self.read_size = SMALL_READ
            if pipe is not None:
                self.piped += got
                chunk = view[:got]
                if pipe._buffer or pipe._closed or pipe._write_closed or pipe._eof_pending:
                    pipe.write_scratch(chunk)  # behind what waits there (or closed: dropped)
                    return
                # write_scratch()'s common case, in line (nothing waits, the peer is open): a
                # kept-alive request's two reads are the relay's hottest path.
                try:
                    sent = pipe.socket.send(chunk)
                except OSError:
                    sent = 0  # would block, or an error the peer's next write event reports
                if sent != got:
                    pipe._hold(chunk[sent:])
                return
            self.protocol.dataReceived(data)
            return
        self._read_eof = True
        if self._half_close:
            self.protocol.readConnectionLost()  # type: ignore[attr-defined]
        else:
            self.loseConnection()
        # Stop reading only now: when the end of stream closed the connection (the other
        # side had ended too), the close already took the descriptor out of the poll set.
        # (stopReading, inline: at the end of every connection.)
        if self._reading:
            self._reading = False
            self._fds.stop_reading(self, self._fd)

    def doWrite(self) -> None:
        """Writable: send what is queued; once empty, resume the producer and finish any
        half-close or close that waited for it."""
        if self._closed:
            return
        if self._buffer:
            data = b"".join(self._buffer) if len(self._buffer) > 1 else self._buffer[0]
            try:
                sent = self.socket.send(data)
            except BlockingIOError:
                sent = 0
            except OSError as e:
                self._close(_lost(e))
                return
            if sent < len(data):
                self._buffer = [data[sent:]]
                self._buffered = len(data) - sent
                return
            self._buffer = []
            self._buffered = 0
        self.stopWriting()
        self._drained()

    def connectionLost(self, reason: Failure) -> None:
        """The reactor saw a hang-up or error (or is shutting down)."""
        self._reading = self._writing = False
        self._close(reason)

    # The protocol's side (ITransport, ITCPTransport).

    def write(self, data: bytes) -> None:
        """Send C{data} now if nothing waits before it, else queue it (pausing the producer
        above L{WRITE_LIMIT})."""
        if not data or self._closed or self._write_closed or self._eof_pending:
            return
        if not self._buffer:
            try:
                sent = self.socket.send(data)
            except OSError:
                sent = 0  # would block, or an error the next write event reports
            if sent == len(data):
                return
            data = data[sent:]
            self.startWriting()
        self._queue(data)

    def _queue(self, data: bytes) -> None:
        """Queue C{data} behind what waits (pausing the producer above L{WRITE_LIMIT})."""
        self._buffer.append(data)
        self._buffered += len(data)
        producer = self.producer
        full = self._buffered > WRITE_LIMIT
        if full and producer is not None and self._streaming and not self._paused:
            self._paused = True
            producer.pauseProducing()

    def write_scratch(self, view: memoryview) -> None:
        """L{write} for bytes in the shared read buffer (a pipe's read, see L{readbuffer}):
        what is not sent at once is copied out before the next read reuses the buffer.  It
        repeats L{write}'s few lines rather than sharing a helper with it: both are the
        relay's hot path, where a call per write shows."""
        if self._closed or self._write_closed or self._eof_pending:
            return
        if not self._buffer:
            try:
                sent = self.socket.send(view)
            except OSError:
                sent = 0  # would block, or an error the next write event reports
            if sent == len(view):
                return
            self._hold(view[sent:])
            return
        self._queue(bytes(view))

    def _hold(self, view: memoryview) -> None:
        """What a write from the shared read buffer could not send at once (nothing was
        queued): copy it into the queue, and send it on the next write event."""
        self.startWriting()
        self._queue(bytes(view))

    def writeSequence(self, data: Any) -> None:
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        """Close once what is queued is sent."""
        if self._closed:
            return
        self.disconnecting = True
        if not self._buffer:
            self._close(connectionDone)  # which takes the descriptor out of the poll set
            return
        self.stopReading()

    def loseWriteConnection(self) -> None:
        """Half-close (C{shutdown(SHUT_WR)}) once what is queued is sent."""
        if self._closed or self._write_closed:
            return
        self._eof_pending = True
        if not self._buffer:
            self._shut_write()

    def abortConnection(self) -> None:
        """Close now, dropping what is queued, with a reset (C{SO_LINGER} 0), so that the
        other end learns the close was not clean, as with Twisted's TCP transports."""
        if not self._closed:
            try:
                self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
            except OSError:
                pass  # not a TCP socket (a socket pair in tests): a plain close
        self._close(_aborted)

    # Producer and consumer (backpressure; the rest in producing.py).

    def pair(self, other: LeanTCPTransport, pipe: bool) -> None:
        """C{other.registerProducer(self, True)} and C{self.registerProducer(other, True)} in
        one call (the two transports of a relayed connection: backpressure both ways); with
        C{pipe}, each also writes its reads straight to the other (L{pipe})."""
        if self.producer is not None or other.producer is not None:
            raise RuntimeError(f"{self!r} or {other!r} already has a producer")
        self.producer, other.producer = other, self
        self._streaming = other._streaming = True
        self._paused = other._paused = False
        if pipe:
            self.pipe, other.pipe = other, self

    def _drained(self) -> None:
        """The queue is empty: what waited for it may go on."""
        producer = self.producer
        if self._paused and producer is not None:
            self._paused = False
            producer.resumeProducing()
        elif not self._streaming and producer is not None:
            producer.resumeProducing()
        if self.disconnecting:
            self._close(connectionDone)
        elif self._eof_pending and not self._buffer:
            self._shut_write()

    def _shut_write(self) -> None:
        self._eof_pending = False
        self._write_closed = True
        try:
            self.socket.shutdown(socket.SHUT_WR)
        except OSError as e:
            self._close(_lost(e))
            return
        if self._half_close:
            self.protocol.writeConnectionLost()  # type: ignore[attr-defined]

    def _close(self, reason: Failure) -> None:
        """Unregister, close the socket, and tell the protocol (once)."""
        if self._closed:
            return
        if self._reading or self._writing:
            self._reading = self._writing = False
            self._fds.forget(self, self._fd)  # the close below takes it out of the poll set
        self._closed = True
        self.connected = False
        self.disconnecting = True
        self._buffer = []
        self._buffered = 0
        self.socket.close()
        self.pipe = None
        producer, self.producer = self.producer, None
        if producer is not None:
            producer.stopProducing()
        protocol, self.protocol = self.protocol, _GONE
        protocol.connectionLost(reason)

    def __repr__(self) -> str:
        return f"<{self.protocol.__class__.__name__} lean TCP {self.peer[0]}:{self.peer[1]}>"
