# -*- test-case-name: tests.health.test_tcpcheck -*-
"""
The C{--check tcp} health check: connect, then close.  It only proves that something accepts
connections (a frozen MariaDB does), so it is no Galera check.
"""

from __future__ import annotations

import contextlib

from twisted.internet.defer import Deferred
from twisted.internet.error import NotConnectingError
from twisted.internet.interfaces import IConnector, IReactorTCP, IReactorTime
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from penbal.backend import Backend
from penbal.health.result import CheckResult
from penbal.interfaces import IHealthCheck


class _Probe(Protocol):
    def __init__(self, factory: _ProbeFactory) -> None:
        self.factory = factory

    def connectionMade(self) -> None:
        self.factory.report(CheckResult(True, self.factory.elapsed()))
        self.transport.loseConnection()  # type: ignore[union-attr]


class _ProbeFactory(ClientFactory):
    noisy = False

    def __init__(self, clock: IReactorTime, result: Deferred[CheckResult]) -> None:
        self._clock = clock
        self._started = clock.seconds()
        self._result = result

    def elapsed(self) -> float:
        return self._clock.seconds() - self._started

    def report(self, result: CheckResult) -> None:
        if not self._result.called:
            self._result.callback(result)

    def buildProtocol(self, addr: object) -> Protocol:
        return _Probe(self)

    def clientConnectionFailed(self, connector: IConnector, reason: Failure) -> None:
        self.report(CheckResult(False, self.elapsed(), reason.getErrorMessage()))


@implementer(IHealthCheck)
class TCPCheck:
    """Connect to the backend within C{timeout} seconds; reachable if that worked."""

    name = "tcp"

    def __init__(self, reactor: IReactorTCP, clock: IReactorTime, timeout: float) -> None:
        self._reactor = reactor
        self._clock = clock
        self._timeout = timeout

    def check(self, backend: Backend) -> Deferred[CheckResult]:
        connector: list[IConnector] = []

        def cancel(d: Deferred[CheckResult]) -> None:
            if connector:
                with contextlib.suppress(NotConnectingError):
                    connector[0].stopConnecting()

        result: Deferred[CheckResult] = Deferred(cancel)
        factory = _ProbeFactory(self._clock, result)
        spec = backend.spec
        connector.append(
            self._reactor.connectTCP(spec.host, spec.port, factory, timeout=self._timeout)
        )
        return result
