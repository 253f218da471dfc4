# -*- test-case-name: tests.test_service -*-
"""
The balancer as a Twisted service: listen on start, close connections and stop on SIGTERM.
"""

from __future__ import annotations

import signal
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, TimeoutError, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IReactorCore, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from penbal.address import ListenSpec
from penbal.relay.listener import RelayFactory

log = Logger()


class StartupError(SystemExit):
    """Start-up failed for a reason the user can fix; the message is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(f"penbal: error: {message}")


class TCPBalancerService(Service):
    """Listen on one endpoint and relay every client through a L{RelayFactory}."""

    def __init__(
        self, reactor: Any, listen: ListenSpec, factory: RelayFactory, stop_timeout: float = 5.0
    ) -> None:
        self._reactor = reactor
        self._listen = listen
        self.factory = factory
        self._stop_timeout = stop_timeout
        self.port: IListeningPort | None = None

    def privilegedStartService(self) -> None:
        self._start_listening()
        super().privilegedStartService()

    def startService(self) -> None:
        self._start_listening()
        super().startService()
        install_stop_signals(self._reactor)

    def _start_listening(self) -> None:
        if self.port is not None:
            return
        try:
            endpoint = serverFromString(self._reactor, self._listen.endpoint)
        except (ValueError, TypeError, KeyError) as e:
            raise StartupError(f"invalid listen endpoint {self._listen.endpoint!r}: {e}") from None
        result: list[Any] = []
        endpoint.listen(self.factory).addBoth(result.append)
        if not result:
            raise StartupError(f"listening on {self._listen.endpoint!r} did not complete at once")
        outcome = result[0]
        if isinstance(outcome, Failure):
            raise StartupError(
                f"cannot listen on {self._listen.endpoint!r}: {outcome.getErrorMessage()}"
            )
        self.port = outcome
        self.factory.attach(outcome)
        log.info("penbal listening on {address}", address=outcome.getHost())

    def stopService(self) -> Deferred[None]:
        """Stop accepting, close live connections, wait for them (bounded)."""
        super().stopService()
        stopped: Deferred[Any] = succeed(None)
        if self.port is not None:
            stopped = Deferred.fromCoroutine(_stop_port(self.port))
            self.port = None
        self.factory.close_all()
        clock: IReactorTime = self._reactor

        async def wait() -> None:
            await stopped
            idle = self.factory.when_idle()
            idle.addTimeout(self._stop_timeout, clock)
            try:
                await idle
            except TimeoutError:
                for front in list(self.factory.fronts):
                    front.transport.abortConnection()  # type: ignore[attr-defined]

        return Deferred.fromCoroutine(wait())


async def _stop_port(port: IListeningPort) -> None:
    await port.stopListening()  # type: ignore[misc]


def install_stop_signals(reactor: IReactorCore) -> None:
    """SIGTERM and SIGINT stop the reactor cleanly (exit 0, not "killed by signal")."""

    def handler(signum: int, frame: object) -> None:
        reactor.callFromThread(reactor.stop)  # type: ignore[attr-defined]

    def install() -> None:
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    reactor.callWhenRunning(install)
