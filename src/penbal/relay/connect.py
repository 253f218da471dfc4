# -*- test-case-name: tests.relay.test_connect -*-
"""
How the relay reaches a backend: one L{Connector}, chosen once at assembly (L{penbal.tap}).

A dial (L{penbal.relay.dialer.Dial}) asks the connector for one connection at a time and hears
back through the small L{Attempt} interface: C{made} (the connection is up: the protocol to
run on it) or C{failed} (why not).  The dial never knows how the connection was made:

  - L{DirectConnector}: IP-literal backends with one non-blocking socket, on penbal's lean
    transport (see directconnect.py); host names go to the connector it falls back on;
  - L{TwistedConnector}: C{connectTCP} (host names, the stock C{--relay-path twisted}, test
    reactors);
  - C{penbal.edges.tls.TLSConnector}: TLS around either (C{--backend-tls}); its connections
    are ready only once their handshake completes (L{Connector.handshake}).
"""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet.interfaces import IReactorFDSet, IReactorTCP, IReactorTime
from twisted.internet.protocol import ClientFactory
from twisted.python.failure import Failure

from penbal.backend import Backend
from penbal.reactor import shortcuts
from penbal.relay.attempt import Attempt, Connecting
from penbal.relay.directconnect import DirectAttempt, deadlines_for, ip_family

__all__ = ["Attempt", "Connecting", "Connector", "DirectConnector", "Handshake",
           "TwistedConnector"]


class Handshake(Protocol):
    """What makes a connected backend ready beyond TCP (TLS), in words for when it fails."""

    def failed(self, transport: Any, reason: Failure) -> str:
        """Why the connection on C{transport} closed before its handshake completed."""

    def too_slow(self, seconds: float) -> str:
        """Why a handshake not done after C{seconds} failed."""


class Connector(Protocol):
    """Makes connections to backends."""

    #: None: a connection is ready once connected; else it is ready once the handshake
    #: completes (the protocol's C{handshakeCompleted}), and these are its failures' words.
    handshake: Handshake | None

    def connect(self, backend: Backend, attempt: Attempt, timeout: float) -> Connecting:
        """Start connecting to C{backend}, giving up after C{timeout} seconds; C{attempt}
        hears how it went (possibly before this returns)."""


class _Reporting(ClientFactory):
    """C{connectTCP}'s factory for one attempt: tells the attempt as it goes."""

    noisy = False

    def __init__(self, attempt: Attempt) -> None:
        self.attempt = attempt

    def buildProtocol(self, addr: object) -> Any:
        return self.attempt.made()

    def clientConnectionFailed(self, connector: object, reason: Failure) -> None:
        self.attempt.failed(reason.getErrorMessage())

    def clientConnectionLost(self, connector: object, reason: Failure) -> None:
        pass


class TwistedConnector:
    """Connects with the reactor's C{connectTCP}: any host, any reactor."""

    handshake: Handshake | None = None

    def __init__(self, reactor: IReactorTCP) -> None:
        self._reactor = reactor

    def connect(self, backend: Backend, attempt: Attempt, timeout: float) -> Connecting:
        spec = backend.spec
        connector: Connecting = self._reactor.connectTCP(
            spec.host, spec.port, _Reporting(attempt), timeout=timeout
        )
        return connector


class DirectConnector:
    """Connects to IP literals with one socket and runs them on the lean transport (see
    directconnect.py); a host name goes to C{fallback}."""

    handshake: Handshake | None = None

    def __init__(
        self,
        reactor: IReactorFDSet,
        clock: IReactorTime,
        fallback: Connector,
        read_size: int = 65536,
    ) -> None:
        self._reactor = reactor
        self._clock = clock
        self._fallback = fallback
        self._read_size = read_size
        # What every attempt uses, asked for once: the reactor's shortcuts, the connect timers.
        self._fds = shortcuts(reactor)
        self._deadlines = deadlines_for(clock)

    def connect(self, backend: Backend, attempt: Attempt, timeout: float) -> Connecting:
        spec = backend.spec
        family = ip_family(spec.host)  # cached, and capped (a control port may add hosts)
        if family is None:
            return self._fallback.connect(backend, attempt, timeout)
        return DirectAttempt(
            self._reactor, self._clock, family, spec.host, spec.port, attempt, timeout,
            lean_read=self._read_size, fds=self._fds, deadlines=self._deadlines,
        )
