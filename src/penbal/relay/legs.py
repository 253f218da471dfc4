# -*- test-case-name: tests.relay.test_legs -*-
"""
The two legs of a relayed TCP connection: the client's and the backend's.

Each leg writes what it reads into its peer, each transport is a streaming producer of the
other (backpressure both ways), and an end of stream on one side becomes a half-close of the
other, so a client that shuts down its sending side still receives the whole reply.

This is the bottom of the relay: the legs import nothing else of it.  What they call is
declared here, as small interfaces: L{Relay} (the listener: a connection started, got its
backend, ended), L{Readiness} (the dial: the backend leg connected, finished its handshake,
spoke, or closed before it was ready) and L{RequestRewriter} (HTTP mode, an edge feature).
"""

from __future__ import annotations

from typing import Any
from typing import Protocol as TypingProtocol

from twisted.internet.interfaces import IHalfCloseableProtocol, IHandshakeListener, ITransport
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer

from penbal.backend import Backend
from penbal.interfaces import ClientInfo
from penbal.relay.leantransport import LeanTCPTransport
from penbal.relay.waiting import Pending, RequestRewriter


class Relay(TypingProtocol):
    """What a client's leg tells the relay that accepted it (the listener)."""

    def connection_started(self, front: FrontLeg) -> None:
        """The client is connected: count it, and dial (or hold) its backend."""

    def backend_connected(self, front: FrontLeg, backend: Backend) -> None:
        """The client's backend is up and relayed."""

    def connection_ended(self, front: FrontLeg, reason: Failure) -> None:
        """The client's connection is over."""

    def arriving(self, change: int) -> None:
        """A client is read before it has a leg (its PROXY header): 1 when it is accepted, -1
        when its leg starts or it closes first.  It counts toward C{--max-connections}
        meanwhile."""


class Readiness(TypingProtocol):
    """What a backend leg tells the dial that made it, until it is handed to the client."""

    def connected(self, leg: BackendLeg) -> None:
        """The connection is up."""

    def handshake(self, leg: BackendLeg) -> None:
        """Its TLS handshake completed."""

    def spoke(self, leg: BackendLeg) -> None:
        """The backend sent its first byte."""

    def lost(self, leg: BackendLeg, reason: Failure) -> None:
        """It closed before it was ready."""


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
        "has_producer",
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
    #: This leg's transport has a producer to drop before it half-closes or closes (the
    #: peer's transport, registered once the legs are paired: see L{FrontLeg.backend_connected}).
    has_producer: bool
    transport: ITransport

    def __init__(self) -> None:
        self.peer = None
        self.out = None
        self.read_closed = False
        self.write_closed = False
        self.closed = False
        self.has_producer = False
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
        if self.has_producer:
            self.has_producer = False
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
        if self.has_producer:
            self.has_producer = False
            _unregister(transport)
        transport.loseConnection()

    def readConnectionLost(self) -> None:
        self.read_closed = True
        peer = self.peer
        if peer is not None:
            peer.send_eof()
        if self.write_closed and not self.closed:  # (the peer's close may have closed it)
            self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        self.write_closed = True
        if self.read_closed:
            self.transport.loseConnection()


@implementer(IHandshakeListener)
class BackendLeg(Leg):
    """The balancer's connection to a backend.

    Until the dial that made it finds it ready (connected; with TLS, its handshake done;
    with C{--first-byte-timeout}, its first byte received: server-speaks-first protocols such
    as MySQL) C{dial} is set, and the leg reports to it; a backend that closes meanwhile is
    one more failed attempt.  Once ready, the dial hands it to the client.
    """

    __slots__ = ("abandoned", "backend", "dial", "front", "watched")

    def __init__(self, front: FrontLeg, backend: Backend, dial: Readiness) -> None:
        super().__init__()
        self.peer = self.front = front
        self.backend = backend
        #: The dial this leg reports to until it is ready (then None: the client's).
        self.dial: Readiness | None = dial
        #: The dial gave up on this leg: its end concerns nobody.
        self.abandoned = False
        #: Reads need more than relaying (see L{watched_data}).
        self.watched = True

    def makeConnection(self, transport: ITransport) -> None:
        """Twisted's C{makeConnection} and this leg's C{connectionMade} in one call: TCP
        options (a lean transport set them when it was made), then tell the dial."""
        self.connected = 1
        self.transport = transport
        if not isinstance(transport, LeanTCPTransport):
            tune_socket(transport, keepalive=True)
        dial = self.dial
        if dial is not None:
            dial.connected(self)

    def handshakeCompleted(self) -> None:
        """TLS (C{--backend-tls}): the handshake completed and the certificate was checked."""
        dial = self.dial
        if dial is not None:
            dial.handshake(self)

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
            dial.spoke(self)
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
        if not self.watched and rewriter is None:
            self.pipe_to_client()

    def pipe_to_client(self) -> None:
        """Once nothing but relaying is left to do with the backend's bytes, let its lean
        transport write them straight to the client's (see L{FrontLeg.settle})."""
        mine, theirs = self.transport, self.front.transport
        if isinstance(mine, LeanTCPTransport) and isinstance(theirs, LeanTCPTransport):
            mine.pipe = theirs

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.closed = True
        if self.abandoned:
            return
        dial = self.dial
        if dial is not None:
            # Closed before it sent anything: the client has seen nothing, try the next one.
            self.dial = None
            dial.lost(self, reason)
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

    def __init__(self, factory: Relay, client: ClientInfo) -> None:
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

    def makeConnection(self, transport: ITransport) -> None:
        """Twisted's C{makeConnection} and this leg's C{connectionMade} in one call: TCP
        options (a lean transport set them when it was made), then tell the relay."""
        self.connected = 1
        self.transport = transport
        if not isinstance(transport, LeanTCPTransport):
            tune_socket(transport, keepalive=False)
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
        # The leg is the client's now: its reads need watching only in HTTP mode.
        plain = self.rewriter is None
        leg.watched = not plain
        # Backpressure: each transport produces for the other.  On lean transports, with
        # plain relaying (no HTTP rewriting, no first byte awaited), each also writes its
        # reads straight to the other, past the legs (see settle(); the backend's side as in
        # BackendLeg.pipe_to_client).
        if isinstance(front, LeanTCPTransport) and isinstance(back, LeanTCPTransport):
            front.pair(back, pipe=plain)
        else:
            back.registerProducer(front, True)
            front.registerProducer(back, True)
        self.has_producer = leg.has_producer = True
        if self.read_closed:
            rewriter = self.rewriter
            if rewriter is not None and rewriter.holding:
                self.eof_held = True
            else:
                leg.send_eof()
        elif self.early < 0:
            front.resumeProducing()
        self.factory.backend_connected(self, leg.backend)

    def settle(self) -> None:
        """Count the bytes the transports' pipes relayed since the last call: into this
        connection's C{bytes_in}/C{bytes_out} and its backend's counters.

        Piped bytes go from one lean transport to the other without a call into the legs
        (a kept-alive request costs four Python calls instead of eight); the transports count
        them, and whoever reads the figures settles first (the end of the connection, the
        status views, the idle watch: see L{penbal.backend.settle})."""
        backend = self.backend
        if backend is None:
            return
        front: Any = self.transport
        up = getattr(front, "piped", 0)
        if up:
            front.piped = 0
            self.bytes_in += up
            backend.counters.bytes_to_backend += up
        peer = self.peer
        back: Any = peer.transport if peer is not None else None
        down = getattr(back, "piped", 0)
        if down:
            back.piped = 0
            self.bytes_out += down
            backend.counters.bytes_from_backend += down

    def close(self) -> None:
        """Close the client; a dial still in progress is stopped now, not when the close
        completes (at shutdown the reactor would otherwise report it as a failed backend)."""
        if self.dial is not None:
            self.dial.cancel()
            self.dial = None
        super().close()

    def readConnectionLost(self) -> None:
        """L{Leg.readConnectionLost}, except that in HTTP mode an end of stream that comes
        while the rewriter holds bytes is held too."""
        self.read_closed = True
        rewriter = self.rewriter
        peer = self.peer
        if rewriter is not None and rewriter.holding:
            self.eof_held = True  # sent after the held bytes (see BackendLeg.dataReceived)
        elif peer is not None:
            peer.send_eof()
        if self.write_closed and not self.closed:  # (the peer's close may have closed it)
            self.transport.loseConnection()

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
