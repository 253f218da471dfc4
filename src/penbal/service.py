# -*- test-case-name: tests.test_service_shutdown,tests.test_service_listen -*-
"""
The balancer as a Twisted service: listen on start; on SIGTERM stop accepting, let live
connections finish (bounded by --shutdown-timeout), close the rest and exit 0.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable, Iterable
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.internet.defer import CancelledError, Deferred, TimeoutError
from twisted.internet.endpoints import (
    AdoptedStreamServerEndpoint,
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
    serverFromString,
)
from twisted.internet.error import ReactorNotRunning
from twisted.internet.interfaces import (
    IListeningPort,
    IReactorCore,
    IReactorTime,
    IStreamServerEndpoint,
)
from twisted.logger import Logger
from twisted.python.failure import Failure

from penbal.address import ListenSpec, tcp_listen
from penbal.relay.leanport import LeanAdoptedEndpoint, LeanTCPServerEndpoint
from penbal.relay.listener import RelayFactory

log = Logger()

#: Makes the server endpoint of a LISTEN endpoint string (Twisted's C{serverFromString}).
EndpointFor = Callable[[Any, str], IStreamServerEndpoint]

#: After the shutdown timeout, closed connections get this long to flush before an abort.
CLOSE_BOUND = 5.0


class StartupError(SystemExit):
    """Start-up failed for a reason the user can fix; the message is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(f"penbal: error: {message}")
        self.message = message


def endpoint_error(what: str, description: str, error: Exception) -> StartupError:
    """One line for an endpoint string Twisted could not turn into an endpoint.

    A C{systemd:} endpoint whose socket was not passed (no socket at that index or name)
    ends in Twisted's parser in an C{IndexError} or C{KeyError}: say what systemd passes.
    """
    if "systemd:" in description and isinstance(error, IndexError | KeyError):
        return StartupError(
            f"{what} {description!r}: no such socket was inherited from systemd (LISTEN_FDS,"
            " LISTEN_FDNAMES); start penbal from a systemd socket unit (penbal@.socket), or"
            " pass the listening socket as fd 3 with LISTEN_FDS=1, LISTEN_FDNAMES=a name and"
            " LISTEN_PID=its pid (Twisted needs all three, as systemd sets them)")
    return StartupError(f"invalid {what} endpoint {description!r}: {error}")


class DaemonStartupError(Exception):
    """A L{StartupError} under C{twistd}, which reports only an C{Exception} to the process
    that started it (a C{SystemExit} left that process waiting forever on its status pipe)."""


class DaemonServices(MultiService):
    """penbal's services under C{twistd}: a start-up error becomes a L{DaemonStartupError},
    so that C{twistd} removes its pid file, says what went wrong and exits 1."""

    def privilegedStartService(self) -> None:
        try:
            super().privilegedStartService()
        except StartupError as e:
            raise DaemonStartupError(e.message) from None


def relay_endpoints(factory: RelayFactory, other: EndpointFor = serverFromString) -> EndpointFor:
    """The endpoints of C{factory}'s LISTEN: penbal's own lean port for a plain C{tcp:} or
    C{tcp6:} address, or a TCP socket passed by systemd (C{systemd:}, found by Twisted's
    endpoint), when its clients run on lean transports (L{RelayFactory.lean_accept});
    C{other}'s endpoint for every other one (unix sockets, TLS, plugins), and for all of them
    on the stock path (C{--relay-path twisted}).  (A C{haproxy:} prefix never gets here: the
    options turn it into C{--accept-proxy} on the address after it.)"""

    def endpoint_for(reactor: Any, description: str) -> IStreamServerEndpoint:
        endpoint = other(reactor, description)  # its checks and errors, whichever listens
        if not factory.lean_accept:
            return endpoint
        tcp = tcp_listen(description)
        if tcp is not None and isinstance(endpoint, TCP4ServerEndpoint | TCP6ServerEndpoint):
            return LeanTCPServerEndpoint(reactor, tcp.port, tcp.backlog, tcp.interface)
        if (isinstance(endpoint, AdoptedStreamServerEndpoint)  # systemd:domain=INET[6]
                and endpoint.addressFamily in (socket.AF_INET, socket.AF_INET6)):
            return LeanAdoptedEndpoint(reactor, endpoint.fileno)
        return endpoint

    return endpoint_for


class TCPBalancerService(Service):
    """Listen on one endpoint and relay every client through a L{RelayFactory}; the
    endpoint is C{endpoint_for}'s, L{relay_endpoints} by default."""

    def __init__(
        self,
        reactor: Any,
        listen: ListenSpec,
        factory: RelayFactory,
        stop_timeout: float = 30.0,
        endpoint_for: EndpointFor | None = None,
    ) -> None:
        self._reactor = reactor
        self._endpoint_for = endpoint_for or relay_endpoints(factory)
        self._listen = listen
        self.factory = factory
        self._stop_timeout = stop_timeout
        self._waiting: Deferred[None] | None = None
        self.port: IListeningPort | None = None

    def privilegedStartService(self) -> None:
        self._start_listening()
        super().privilegedStartService()

    def startService(self) -> None:
        # Signals first: once the port listens, a client (or a supervisor) may act at once.
        install_stop_signals(self._reactor, self.hurry)
        self._start_listening()
        super().startService()

    def _start_listening(self) -> None:
        if self.port is not None:
            return
        try:
            endpoint = self._endpoint_for(self._reactor, self._listen.endpoint)
        except (ValueError, TypeError, KeyError, IndexError) as e:
            raise endpoint_error("listen", self._listen.endpoint, e) from None
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
        log.info("penbal listening on {address} ({reactor})", address=outcome.getHost(),
                 reactor=type(self._reactor).__name__)

    def stopService(self) -> Deferred[None]:
        """Graceful stop: stop accepting, let live connections end on their own for up to the
        shutdown timeout, then close the rest (flushing), and abort what still remains."""
        super().stopService()
        port, self.port = self.port, None
        factory = self.factory
        clock: IReactorTime = self._reactor

        async def stop() -> None:
            if port is not None:
                await _stop_port(port)
            if not factory.fronts:
                return
            log.info("penbal stopping: {count} live connections get up to {seconds}s to end",
                     count=len(factory.fronts), seconds=self._stop_timeout)
            if await self._idle_within(self._stop_timeout, clock):
                return
            log.info("penbal stopping: closing the {count} connections left",
                     count=len(factory.fronts))
            factory.close_all()
            if await self._idle_within(CLOSE_BOUND, clock):
                return
            for front in list(factory.fronts):
                front.transport.abortConnection()  # type: ignore[attr-defined]

        return Deferred.fromCoroutine(stop())

    async def _idle_within(self, seconds: float, clock: IReactorTime) -> bool:
        """Wait until no connection is live (True), or C{seconds} or a L{hurry} (False)."""
        idle = self.factory.when_idle()
        idle.addTimeout(seconds, clock)
        self._waiting = idle
        try:
            await idle
        except (TimeoutError, CancelledError):
            return False
        finally:
            self._waiting = None
        return True

    def hurry(self) -> None:
        """Stop waiting for live connections (a second SIGTERM): close them now."""
        if self._waiting is not None and not self._waiting.called:
            self._waiting.cancel()


async def _stop_port(port: IListeningPort) -> None:
    await port.stopListening()  # type: ignore[misc]


def install_stop_signals(reactor: IReactorCore, hurry: Callable[[], object] | None = None) -> None:
    """SIGTERM and SIGINT stop the reactor cleanly (exit 0, not "killed by signal"); a second
    one, while live connections are given time to end, closes them at once."""

    def stop() -> None:
        try:
            reactor.stop()
        except ReactorNotRunning:
            if hurry is not None:
                hurry()

    def handler(signum: int, frame: object) -> None:
        reactor.callFromThread(stop)  # type: ignore[attr-defined]

    def install() -> None:
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    # Now (we listen before the reactor runs, so a SIGTERM may come early), and again once the
    # reactor has installed its own handlers at start-up.
    install()
    reactor.callWhenRunning(install)

    def forget_exit_signal() -> None:
        # A SIGTERM that lands while the reactor starts meets Twisted's own handler, which
        # records it so that twist exits "killed by SIGTERM"; a stop is a stop: exit 0.
        if getattr(reactor, "_exitSignal", None) in (signal.SIGTERM, signal.SIGINT):
            reactor._exitSignal = None  # type: ignore[attr-defined]

    reactor.addSystemEventTrigger("after", "shutdown", forget_exit_signal)


#: Signals that came while held (see L{hold_signals}), for L{install_signal} to act on.
_held: set[int] = set()


def hold_signals(signums: Iterable[int]) -> None:
    """Until L{install_signal} installs their handlers, remember these signals instead of
    dying of them (the default action of SIGHUP and SIGUSR1 is to exit).

    Called first thing while penbal is assembled, before the config file is read.
    """

    def remember(signum: int, frame: object) -> None:
        _held.add(signum)

    for signum in signums:
        signal.signal(signum, remember)


def install_signal(reactor: IReactorCore, signum: int, action: Callable[[], object]) -> None:
    """Run C{action} in the reactor thread on signal C{signum} (SIGHUP reload, SIGUSR1 status).

    Installed now, so that the signal's default action (for SIGHUP and SIGUSR1: exit) cannot
    end penbal while it starts, and again once the reactor runs.  A signal that came before
    (held, or caught before the reactor runs) is acted on once it does.
    """

    def handler(signum: int, frame: object) -> None:
        reactor.callFromThread(action)  # type: ignore[attr-defined]

    signal.signal(signum, handler)
    if signum in _held:
        _held.discard(signum)
        reactor.callWhenRunning(action)
    reactor.callWhenRunning(signal.signal, signum, handler)
