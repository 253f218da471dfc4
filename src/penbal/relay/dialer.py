# -*- test-case-name: tests.relay.test_dialer -*-
"""
Dialling a backend for one client: try the policy's choices in order, blacklist each one that
refuses or does not answer within the connect timeout (or, with C{--first-byte-timeout},
connects but sends nothing), then try the emergency server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IConnector, IDelayedCall, IReactorTCP, IReactorTime
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from penbal.backend import Backend
from penbal.relay.config import RelayConfig
from penbal.relay.directconnect import DirectAttempt, ip_family
from penbal.relay.legs import BackendLeg, FrontLeg

if TYPE_CHECKING:
    from penbal.balancer import Balancer

log = Logger()


class Dial(ClientFactory):
    """One client's search for a backend; the factory of each connect attempt."""

    noisy = False

    def __init__(
        self,
        reactor: IReactorTCP,
        clock: IReactorTime,
        balancer: Balancer,
        config: RelayConfig,
        front: FrontLeg,
        order: Sequence[Backend],
    ) -> None:
        self._reactor = reactor
        self._clock = clock
        self._balancer = balancer
        self._config = config
        self._front = front
        self._order = list(order)
        self._tried_emergency = False
        self._backend: Backend | None = None
        self._connector: IConnector | DirectAttempt | None = None
        self._cancelled = False
        #: A connected backend whose first byte is awaited (C{--first-byte-timeout}).
        self._silent: BackendLeg | None = None
        self._silent_timer: IDelayedCall | None = None

    def start(self) -> None:
        """Try the first choice."""
        self._next()

    def cancel(self) -> None:
        """The client went away: stop connecting."""
        self._cancelled = True
        if self._connector is not None:
            self._connector.stopConnecting()
        leg = self._stop_waiting()
        if leg is not None:
            self._abandon(leg)

    def wait_for_first_byte(self, leg: BackendLeg) -> bool:
        """C{leg} is connected: if C{--first-byte-timeout} is on, hold it back from the client
        until the backend speaks (L{first_byte}) and return True."""
        seconds = self._config.first_byte_timeout
        if seconds <= 0 or self._cancelled:
            return False
        self._silent = leg
        self._silent_timer = self._clock.callLater(seconds, self._no_first_byte, leg, seconds)
        return True

    def first_byte(self, leg: BackendLeg) -> None:
        """The backend of C{leg} spoke: stop the clock."""
        self._stop_waiting()

    def closed_silent(self, leg: BackendLeg, why: str) -> None:
        """The backend closed before it sent anything: a failed attempt."""
        self._stop_waiting()
        self.attempt_failed(f"closed before sending anything ({why})")

    def _no_first_byte(self, leg: BackendLeg, seconds: float) -> None:
        self._stop_waiting()
        self._abandon(leg)
        self.attempt_failed(f"connected but sent nothing within {seconds:g}s")

    def _stop_waiting(self) -> BackendLeg | None:
        leg, self._silent = self._silent, None
        timer, self._silent_timer = self._silent_timer, None
        if timer is not None and timer.active():
            timer.cancel()
        return leg

    @staticmethod
    def _abandon(leg: BackendLeg) -> None:
        leg.abandoned = True
        leg.dial = None
        transport: Any = leg.transport
        transport.abortConnection()

    def _next(self) -> None:
        settings = self._balancer.settings
        if self._order:
            backend = self._order.pop(0)
        elif settings.emergency is not None and not self._tried_emergency:
            self._tried_emergency = True
            backend = settings.emergency
        else:
            if not self._front.factory.hold(self._front):  # --queue-timeout, or close
                self._front.no_backend("no backend available")
            return
        self._backend = backend
        spec = backend.spec
        factory: ClientFactory = self
        relay = self._front.factory
        edges = relay.edges
        if edges is not None:
            factory = edges.backend_factory(self, self._front, backend)  # TLS, if on
        if factory is self and relay.direct_connect and self._config.lean:
            family = ip_family(spec.host)
            if family is not None:
                attempt = DirectAttempt(
                    relay.fd_reactor, self._clock, family, spec.host, spec.port, self,
                    settings.timeout, lean_read=self._config.read_size,
                )
                # An attempt that failed at once (its socket is gone) has already started the
                # next one from its constructor: that one is what cancel() must stop.
                if attempt.fileno() >= 0:
                    self._connector = attempt
                return
        self._connector = self._reactor.connectTCP(
            spec.host, spec.port, factory, timeout=settings.timeout
        )

    def buildProtocol(self, addr: object) -> Protocol:
        assert self._backend is not None
        self._connector = None
        self._backend.counters.total += 1
        return BackendLeg(self._front, self._backend, self)

    def clientConnectionFailed(self, connector: IConnector, reason: Failure) -> None:
        self._connector = None
        self.attempt_failed(reason.getErrorMessage())

    def attempt_failed(self, why: str) -> None:
        """The attempt failed: refused, timed out, or (TLS) its handshake or check failed."""
        if self._cancelled:
            return
        backend = self._backend
        assert backend is not None
        settings = self._balancer.settings
        if backend is not settings.emergency:
            backend.blacklist(self._clock.seconds(), settings.blacklist, why)
            log.warn(
                "backend {backend} failed ({why}): blacklisted for {seconds}s",
                backend=backend.address,
                why=why,
                seconds=settings.blacklist,
            )
        else:
            backend.counters.failures += 1
            log.warn("emergency server {backend} failed ({why})", backend=backend.address, why=why)
        if settings.stubborn:
            self._front.no_backend("first choice failed (stubborn)")
            return
        self._next()

    def clientConnectionLost(self, connector: IConnector, reason: Failure) -> None:
        pass
