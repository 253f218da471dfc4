# -*- test-case-name: tests.relay.test_listener -*-
"""
The listening side of the TCP balancer: accepts clients, enforces C{--max-connections} by
pausing accept (clients wait in the listen backlog), and keeps the table of live connections.

A connection's whole story, in the order it happens:

  1. L{RelayFactory.buildProtocol}: a L{FrontLeg} for the client (reading at once; what it
     sends before its backend is up waits in the leg);
  2. L{RelayFactory.connection_started}: counted; the edge features admit it (or deny it, or
     send it to the abuse server); the policy orders the backends (none: it is held,
     C{--queue-timeout});
  3. a L{Dial} over that order, with the L{Connector} chosen at assembly: it fails over until
     a backend leg is ready (the balancer blacklists each one that failed), then hands the
     leg to the client (L{FrontLeg.backend_connected}): bytes flow both ways;
  4. L{RelayFactory.backend_connected}: the backend's live set (its active count) and the
     policy learn where the client went;
  5. L{RelayFactory.connection_ended}: the leg's close, uncounted, logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IAddress, IReactorTCP, IReactorTime
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.python.failure import Failure

from penbal.backend import Backend
from penbal.balancer import Balancer
from penbal.connlog import ConnectionLog, ConnectionRecord
from penbal.interfaces import ClientInfo
from penbal.relay import leanport
from penbal.relay.config import RelayConfig
from penbal.relay.connect import Connector, TwistedConnector
from penbal.relay.dialer import AbuseDial, Dial
from penbal.relay.hooks import Admission, EdgeHooks
from penbal.relay.legs import FrontLeg
from penbal.relay.waitqueue import ClientQueue


def client_info(addr: IAddress | None) -> ClientInfo:
    """The client's address as policies see it (a unix socket client has host "unix")."""
    host = getattr(addr, "host", None)
    if isinstance(host, str):
        return ClientInfo(host, int(getattr(addr, "port", 0)))
    return ClientInfo("unix", 0)


class RelayFactory(ServerFactory):
    """Builds a L{FrontLeg} per client and dials a backend for it.

    It implements what the legs (L{penbal.relay.legs.Relay}) and the dial
    (L{penbal.relay.dialer.DialSite}) call.
    """

    noisy = False
    #: The edge features (ACL, abuse server, PROXY, HTTP mode, hygiene); None when all off.
    edges: EdgeHooks | None = None
    #: Clients held while no backend is usable (C{--queue-timeout}); None: closed at once.
    queue: ClientQueue | None = None

    def __init__(
        self,
        reactor: IReactorTCP,
        clock: IReactorTime,
        balancer: Balancer,
        connlog: ConnectionLog,
        config: RelayConfig | None = None,
        connector: Connector | None = None,
    ) -> None:
        self._reactor = reactor
        self._clock = clock
        #: How backends are reached (chosen at assembly; connectTCP by default), and how the
        #: abuse server is (plain TCP, never TLS).
        self.connector: Connector = connector if connector is not None else TwistedConnector(
            reactor
        )
        self._abuse_connector = TwistedConnector(reactor)
        self.fd_reactor: Any = reactor
        self.balancer = balancer
        self.connlog = connlog
        #: The relay's settings fixed at start-up (the run-time ones are the balancer's).
        self.config = config = config if config is not None else RelayConfig()
        self.fronts: set[FrontLeg] = set()
        self.accepted = 0
        #: Clients accepted whose leg does not exist yet (a PROXY header being read).
        self.arrivals = 0
        self._ports: list[Any] = []
        self.accept_paused = False
        self._idle_waiters: list[Deferred[None]] = []
        if config.queue_timeout > 0:
            self.enable_queue(config.queue_timeout, config.queue_max)

    @property
    def lean(self) -> bool:
        """Whether plain TCP legs run on penbal's own transport (L{RelayConfig.lean})."""
        return self.config.lean

    @property
    def read_size(self) -> int:
        """The lean transport's largest read (L{RelayConfig.read_size})."""
        return self.config.read_size

    @property
    def lean_accept(self) -> bool:
        """Whether a plain TCP port of this factory is penbal's own (L{leanport.LeanTCPPort},
        accepting onto lean transports): on the lean path, whatever edge features are on (a
        control port, ACLs, -H, an idle timeout, PROXY headers to read first: the header
        reader hands the same lean transport to the client's leg).  The service chooses the
        port with it (penbal.service.relay_endpoints)."""
        return self.lean

    def attach(self, port: Any) -> None:
        """Remember a listening port, to pause it at C{--max-connections}.  A lean port caps
        its accept batches at L{free_slots} itself; Twisted's TCP port accepts up to
        C{numberAccepts} clients per readiness event, 100 and growing, before pausing could
        take effect, so its batches are capped here."""
        self._ports.append(port)
        if self.accept_paused:
            self._set_accepting(False)
        if not isinstance(port, leanport.LeanTCPPort):
            leanport.cap_batches(port, self.free_slots)

    def free_slots(self) -> int:
        """How many more clients C{--max-connections} lets in now (clients still sending
        their PROXY header count: L{arriving})."""
        return self.balancer.settings.max_connections - len(self.fronts) - self.arrivals

    def buildProtocol(self, addr: IAddress | None) -> Protocol:
        """A client's front leg (or what the edges put first)."""
        client = client_info(addr)
        edges = self.edges
        if edges is not None and not edges.plain_fronts:
            return edges.build_front(self, client)
        return FrontLeg(self, client)

    def build_client(self, host: str, port: int) -> Protocol:
        """C{buildProtocol} for a TCP client at C{host}:C{port}, without the address object
        (what penbal's own port calls: L{leanport.LeanTCPPort})."""
        client = ClientInfo(host, port)
        edges = self.edges
        if edges is not None and not edges.plain_fronts:
            return edges.build_front(self, client)
        return FrontLeg(self, client)

    def connection_started(self, front: FrontLeg) -> None:
        """A client is in: count it, maybe stop accepting, and dial its backend."""
        self.fronts.add(front)
        self.accepted += 1
        front.started = self._clock.seconds()
        if (len(self.fronts) + self.arrivals >= self.balancer.settings.max_connections
                and not self.accept_paused):
            self._set_accepting(False)
        edges = self.edges
        if edges is not None:
            admission = edges.admit(front)
            if admission is not Admission.DIAL:
                if admission is Admission.ABUSE and edges.abuse is not None:
                    self._dial_abuse(front, edges.abuse)
                return  # denied (closed, or sent to the abuse server), or over its cap
        order = self.balancer.order(front.client)
        if not order and self.hold(front):
            return  # no usable backend: it waits (see waitqueue.py)
        self.start_dial(front, order)

    def start_dial(self, front: FrontLeg, order: Sequence[Backend]) -> None:
        """Dial the backends of C{order} for C{front}, then the emergency server."""
        dial = Dial(self, self._clock, self.balancer, self.connector,
                    self.config.first_byte_timeout, front, order)
        front.dial = dial
        dial.start()

    def _dial_abuse(self, front: FrontLeg, abuse: Backend) -> None:
        """A denied client goes to the abuse server: a dial of its own, over that one."""
        dial = AbuseDial(self, self._clock, self.balancer, self._abuse_connector, 0.0, front,
                         (abuse,))
        front.dial = dial
        dial.start()

    def hold(self, front: FrontLeg) -> bool:
        """No backend could take C{front}: hold it until one can (C{--queue-timeout}), or
        return False (the caller closes it)."""
        queue = self.queue
        return queue is not None and queue.hold(front)

    def enable_queue(self, timeout: float, limit: int) -> ClientQueue:
        """Hold clients up to C{timeout} seconds, at most C{limit} at once, while no backend
        is usable."""
        self.queue = ClientQueue(self._clock, self.balancer, self.start_dial, timeout, limit)
        return self.queue

    def backend_connected(self, front: FrontLeg, backend: Backend) -> None:
        """The client's backend is up."""
        backend.live.add(front)  # its active count (see penbal.backend.Counters)
        if self.edges is None or backend is not self.edges.abuse:
            self.balancer.connected(front.client, backend)

    def connection_ended(self, front: FrontLeg, reason: Failure) -> None:
        """A client connection is over: uncount it, log it, maybe accept again."""
        self.fronts.discard(front)
        if self.queue is not None:
            self.queue.ended(front)
        if self.edges is not None:
            self.edges.ended(front)
        front.settle()  # what the pipes relayed, into the figures below
        backend = front.backend
        if backend is not None and front in backend.live:
            backend.live.discard(front)
            self.balancer.pool.released(backend)  # a removed backend leaves once drained
        now = self._clock.seconds()
        self.connlog.ended(
            ConnectionRecord(
                client=f"{front.client.host}:{front.client.port}",
                backend=backend.address if backend is not None else "-",
                bytes_in=front.bytes_in,
                bytes_out=front.bytes_out,
                started=front.started,
                duration=now - front.started,
                ended_by=front.ended_by,
                clean=isinstance(reason.value, ConnectionDone),  # Failure.check walks the MRO
            )
        )
        if (self.accept_paused
                and len(self.fronts) + self.arrivals < self.balancer.settings.max_connections):
            self._set_accepting(True)
        if not self.fronts:
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                if not waiter.called:
                    waiter.callback(None)

    def arriving(self, change: int) -> None:
        """A client is (1) or no longer (-1) read before its leg exists (its PROXY header):
        it counts toward C{--max-connections}, as the accept batches are capped."""
        self.arrivals += change
        live = len(self.fronts) + self.arrivals
        limit = self.balancer.settings.max_connections
        if change > 0 and live >= limit and not self.accept_paused:
            self._set_accepting(False)
        elif change < 0 and self.accept_paused and live < limit:
            self._set_accepting(True)

    def limits_changed(self) -> None:
        """conn_max changed at run time (penbal.control): accept again if now below it."""
        if (self.accept_paused
                and len(self.fronts) + self.arrivals < self.balancer.settings.max_connections):
            self._set_accepting(True)

    def when_idle(self) -> Deferred[None]:
        """A Deferred that fires once no connection is live."""
        if not self.fronts:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._idle_waiters.append(waiter)
        return waiter

    def _set_accepting(self, accepting: bool) -> None:
        self.accept_paused = not accepting
        for port in self._ports:
            method = getattr(port, "startReading" if accepting else "stopReading", None)
            if method is not None:
                method()

    def close_all(self) -> None:
        """Close every relayed connection (flushing what is buffered)."""
        for front in list(self.fronts):
            front.ended_by = front.ended_by or "balancer shutdown"
            front.close()
