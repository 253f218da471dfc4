# -*- test-case-name: tests.relay.test_legs -*-
"""
The two legs of a relayed TCP connection: the client's and the backend's.

Each leg writes what it reads into its peer, each transport is a streaming producer of the
other (backpressure both ways), and an end of stream on one side becomes a half-close of the
other, so a client that shuts down its sending side still receives the whole reply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from typing import Protocol as TypingProtocol

from twisted.internet.interfaces import IHalfCloseableProtocol, ITransport
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer

from penbal.backend import Backend
from penbal.interfaces import ClientInfo
from penbal.relay.hooks import RequestRewriter

if TYPE_CHECKING:
    from penbal.relay.dialer import Dial
    from penbal.relay.listener import RelayFactory


class Pending(TypingProtocol):
    """What a client without a backend waits on: a dial, or its place in the wait queue."""

    def cancel(self) -> None:
        """The client went away: stop."""


def _unregister(transport: Any) -> None:
    """Drop the transport's producer, if it has one (transports differ on an empty one)."""
    try:
        transport.unregisterProducer()
    except RuntimeError:
        pass


def tune_socket(transport: Any, keepalive: bool) -> None:
    """TCP_NODELAY (and SO_KEEPALIVE) where the transport is TCP; a no-op elsewhere."""
    try:
        transport.setTcpNoDelay(True)
        if keepalive:
            transport.setTcpKeepAlive(True)
    except (AttributeError, OSError):
        pass


@implementer(IHalfCloseableProtocol)
class Leg(Protocol):
    """What both legs share: relaying, half-close and closing.

    The per-connection state lives in slots (an idle relayed pair is mostly these objects);
    instances keep a C{__dict__} from L{Protocol} for rarer attributes set by other modules.
    """

    __slots__ = (
        "closed",
        "connected",
        "out",
        "peer",
        "read_closed",
        "transport",
        "write_closed",
    )
    peer: Leg | None
    #: The peer's transport, where this leg's bytes go.
    out: Any
    read_closed: bool
    write_closed: bool
    closed: bool
    transport: ITransport

    def __init__(self) -> None:
        self.peer = None
        self.out = None
        self.read_closed = False
        self.write_closed = False
        self.closed = False
        self.connected = 0
        self.transport = None  # type: ignore[assignment]  # until makeConnection

    def forward(self, data: bytes) -> None:
        """Write C{data} to the peer (its transport sends at once when nothing waits: the lean
        transport does, Twisted's on its next turn)."""
        self.out.write(data)

    def send_eof(self) -> None:
        """The peer will send nothing more: half-close our sending side once flushed (or,
        if this side has ended its stream too, close: one system call instead of two)."""
        if self.closed or self.write_closed:
            return
        if self.read_closed:
            self.close()
            return
        transport: Any = self.transport
        _unregister(transport)
        if hasattr(transport, "loseWriteConnection"):
            transport.loseWriteConnection()
        else:
            transport.loseConnection()

    def close(self) -> None:
        """Flush what is buffered for this leg, then close it."""
        if self.closed:
            return
        transport: Any = self.transport
        _unregister(transport)
        transport.loseConnection()

    def readConnectionLost(self) -> None:
        self.read_closed = True
        peer = self.peer
        if peer is not None:
            peer.send_eof()
        if self.write_closed:
            self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        self.write_closed = True
        if self.read_closed:
            self.transport.loseConnection()


class BackendLeg(Leg):
    """The balancer's connection to a backend.

    With C{--first-byte-timeout}, a leg made by a L{Dial} is handed to the client only once
    the backend has sent its first byte (server-speaks-first protocols such as MySQL): until
    then C{dial} is set, and a backend that stays silent or closes is one more failed attempt.
    """

    __slots__ = ("abandoned", "backend", "dial", "front", "watched")

    def __init__(self, front: FrontLeg, backend: Backend, dial: Dial | None = None) -> None:
        super().__init__()
        self.peer = self.front = front
        self.backend = backend
        #: The dial that waits for this backend's first byte (None: the leg is the client's).
        self.dial = dial
        #: The dial gave up on this leg: its end concerns nobody.
        self.abandoned = False
        #: Reads need more than relaying (see L{watched_data}).
        self.watched = dial is not None or front.rewriter is not None

    def connectionMade(self) -> None:
        tune_socket(self.transport, keepalive=True)
        edges = self.front.factory.edges
        if edges is not None:
            edges.backend_leg_made(self)  # the PROXY header, if one is sent
        dial = self.dial
        if dial is not None and dial.wait_for_first_byte(self):
            return
        self.dial = None
        self.front.backend_connected(self)

    def dataReceived(self, data: bytes) -> None:
        if self.watched:
            self.watched_data(data)
            return
        size = len(data)
        self.backend.counters.bytes_from_backend += size
        self.front.bytes_out += size
        self.forward(data)

    def watched_data(self, data: bytes) -> None:
        """C{dataReceived} while the first byte is awaited or HTTP mode follows the answers
        (the common case above stays as short as it can be)."""
        front = self.front
        dial = self.dial
        if dial is not None:
            # The backend spoke: the attempt succeeded, the client gets this leg.
            self.dial = None
            dial.first_byte(self)
            front.backend_connected(self)
            if self.closed or self.out is None:
                return
        size = len(data)
        self.backend.counters.bytes_from_backend += size
        front.bytes_out += size
        self.forward(data)
        rewriter = front.rewriter
        if rewriter is not None and not rewriter.tunnel:
            # HTTP mode (-H): the rewriter follows the answers, to know whether an Upgrade or
            # CONNECT was agreed to (see penbal.edges.forwarded).
            rewriter.response(data)
            if front.eof_held and not rewriter.holding:
                front.eof_held = False
                self.send_eof()  # the client's end of stream, after what was held
        self.watched = self.dial is not None or (rewriter is not None and not rewriter.tunnel)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.closed = True
        if self.abandoned:
            return
        dial = self.dial
        if dial is not None:
            # Closed before it sent anything: the client has seen nothing, try the next one.
            self.dial = None
            dial.closed_silent(self, reason.getErrorMessage())
            return
        front = self.front
        self.peer = self.out = None
        if not front.closed:
            if front.ended_by == "":
                front.ended_by = "backend"
            front.close()


class FrontLeg(Leg):
    """A client's connection to the balancer; it dials a backend and relays."""

    rewriter: RequestRewriter | None = None
    #: HTTP mode: the client ended its stream while the rewriter held bytes; the end goes to
    #: the backend once they are released.
    eof_held = False
    #: Bytes kept from a client before its backend is up; past this, reading pauses until it
    #: is (a client that floods while penbal dials stays bounded).
    early_limit = 65536

    __slots__ = (
        "backend",
        "bytes_in",
        "bytes_out",
        "client",
        "dial",
        "early",
        "ended_by",
        "factory",
        "pending",
        "started",
    )

    def __init__(self, factory: RelayFactory, client: ClientInfo) -> None:
        super().__init__()
        self.factory = factory
        self.client = client
        self.backend: Backend | None = None
        self.dial: Pending | None = None
        self.pending: list[bytes] | None = None
        #: Bytes in C{pending}, or -1 once reading was paused for them.
        self.early = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.started = 0.0
        self.ended_by = ""

    def connectionMade(self) -> None:
        tune_socket(self.transport, keepalive=False)
        # The client is read at once (pausing and resuming would cost two epoll calls per
        # connection); what it sends before the backend is up waits in C{pending}.
        self.factory.connection_started(self)

    def dataReceived(self, data: bytes) -> None:
        self.bytes_in += len(data)
        if self.rewriter is not None:  # HTTP mode (-H): X-Forwarded-For on each request
            data = self.rewriter.feed(data)
        peer = self.peer
        if peer is None:
            if self.pending is None:
                self.pending = []
            self.pending.append(data)
            if self.early >= 0:
                self.early += len(data)
                if self.early > self.early_limit:
                    self.early = -1
                    self.transport.pauseProducing()  # type: ignore[attr-defined]
            return
        assert self.backend is not None
        self.backend.counters.bytes_to_backend += len(data)
        self.forward(data)

    def backend_connected(self, leg: BackendLeg) -> None:
        """The dial succeeded: relay what waited, wire backpressure, start reading."""
        self.dial = None
        self.peer = leg
        self.backend = leg.backend
        if self.closed:
            leg.close()
            return
        if self.pending:
            data = b"".join(self.pending)
            self.pending = None
            leg.backend.counters.bytes_to_backend += len(data)
            leg.transport.write(data)
        front: Any = self.transport
        back: Any = leg.transport
        self.out, leg.out = back, front
        # Backpressure: each transport produces for the other.
        back.registerProducer(front, True)
        front.registerProducer(back, True)
        if self.read_closed:
            rewriter = self.rewriter
            if rewriter is not None and rewriter.holding:
                self.eof_held = True
            else:
                leg.send_eof()
        elif self.early < 0:
            front.resumeProducing()
        self.factory.backend_connected(self, leg.backend)

    def close(self) -> None:
        """Close the client; a dial still in progress is stopped now, not when the close
        completes (at shutdown the reactor would otherwise report it as a failed backend)."""
        if self.dial is not None:
            self.dial.cancel()
            self.dial = None
        super().close()

    def readConnectionLost(self) -> None:
        rewriter = self.rewriter
        if rewriter is not None and rewriter.holding:
            self.read_closed = True
            self.eof_held = True  # sent after the held bytes (see BackendLeg.dataReceived)
            if self.write_closed:
                self.transport.loseConnection()
            return
        super().readConnectionLost()

    def no_backend(self, why: str) -> None:
        """Every backend (and the emergency server) failed: close the client."""
        self.dial = None
        self.ended_by = why
        self.close()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.closed = True
        if self.ended_by == "":
            self.ended_by = "client"
        if self.dial is not None:
            self.dial.cancel()
            self.dial = None
        peer = self.peer
        if peer is not None and not peer.closed:
            peer.close()
        self.factory.connection_ended(self, reason)
        self.peer = self.out = None
