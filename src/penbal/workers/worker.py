# -*- test-case-name: tests.workers.test_worker -*-
"""
A worker process (started by the main process with C{--worker-fds LISTEN,CHANNEL}): it adopts
its listening socket and relays, as a single penbal does, with the state the main process
pushes over the AMP channel; it reports its figures back every L{REPORT_INTERVAL} seconds.

A spare worker (C{--worker-fds -,CHANNEL}) is started without a socket: it keeps up with the
pushes and waits to be handed the socket of a worker that ended (L{Serve}), so replacing a
worker costs no process start.

A worker starts listening once the first push is applied and it has its socket (so it never
relays on a table older than the main process's), and stops gracefully when the main process
goes away.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.protocols import amp
from twisted.python.failure import Failure
from zope.interface import implementer

from penbal.backend import Backend
from penbal.config.file import ConfigError
from penbal.config.reconcile import ReconcileError, remove_now
from penbal.relay.leanport import LeanTCPPort
from penbal.relay.listener import RelayFactory
from penbal.runtime import Runtime
from penbal.workers.channel import (
    OneProtocolFactory,
    PushState,
    RemoveNow,
    ReopenAccessLog,
    Report,
    Serve,
)
from penbal.workers.state import apply_state, worker_figures

log = Logger(namespace="penbal.workers")

#: Seconds between two reports of a worker's figures (sent only when they changed).
REPORT_INTERVAL = 0.1


@implementer(IStreamServerEndpoint)
class AdoptedPortEndpoint:
    """The listening socket a worker was started with, as an endpoint."""

    def __init__(self, reactor: Any, fd: int | None = None) -> None:
        self._reactor = reactor
        #: The descriptor: given at start, or handed over later (a spare worker).
        self.fd = fd

    def listen(self, factory: Any) -> Deferred[IListeningPort]:
        """Listen on a duplicate of the socket: with penbal's own lean port when the relay's
        clients run on lean transports (L{RelayFactory.lean_accept}), else Twisted's."""
        fd = self.fd
        assert fd is not None, "no listening socket yet"
        port: IListeningPort
        if isinstance(factory, RelayFactory) and factory.lean_accept:
            port = LeanTCPPort.adopt(self._reactor, fd, factory)
            port.startListening()
        else:
            with socket.socket(fileno=os.dup(fd)) as probe:
                family = probe.family
            port = self._reactor.adoptStreamPort(fd, family, factory)
        os.close(fd)  # adopted as a duplicate; the main process keeps the socket open
        return succeed(port)


class WorkerLink(amp.AMP):
    """The worker's end of the AMP channel."""

    def __init__(self, runtime: Runtime, relay: RelayFactory, endpoint: AdoptedPortEndpoint,
                 ready: Callable[[], object], lost: Callable[[], object],
                 close_unfit: bool = False) -> None:
        super().__init__()
        self._close_unfit = close_unfit
        self._runtime = runtime
        self._relay = relay
        self._endpoint = endpoint
        self._ready: Callable[[], object] | None = ready
        self._lost = lost
        self._pushed_once = False
        self._pushed: dict[Backend, float] = {}
        self._last: dict[str, Any] | None = None
        #: How many connections had ended when the last report was made (see L{report}).
        self._ended_seen = 0
        self._reporter = LoopingCall(self.report)
        self._reporter.clock = runtime.clock

    @PushState.responder
    def push(self, config: str, state: list[dict[str, Any]]) -> dict[str, Any]:
        """Apply the main process's state; the first one lets the worker listen."""
        try:
            changes = apply_state(self._runtime, config, state, self._pushed,
                                  self._close_unfit)
        except (ConfigError, ReconcileError) as e:
            log.error("worker: the main process's state was refused: {error}", error=str(e))
        else:
            if changes:
                log.debug("worker: {changes}", changes="; ".join(changes))
        self._pushed_once = True
        self._start_when_ready()
        return {}

    @Serve.responder
    def serve(self, listen: int) -> dict[str, Any]:
        """A spare worker is handed its listening socket."""
        if self._endpoint.fd is None:
            self._endpoint.fd = listen
            log.info("spare worker: serving a listening socket from now on")
            self._start_when_ready()
        else:
            os.close(listen)
        return {}

    @RemoveNow.responder
    def remove_now(self, index: int, address: str) -> dict[str, Any]:
        """The main process took a backend out with its connections (C{remove N now}): so
        does this worker, with its own (the backend numbered C{index} if that is still
        C{address}, else the first with that address)."""
        pool = self._runtime.balancer.pool
        backend = pool[index] if index < len(pool) else None
        if backend is None or backend.address != address:
            backend = pool.find(address)
        if backend is not None:
            log.info("worker: {change}", change=remove_now(self._runtime, backend))
        return {}

    @ReopenAccessLog.responder
    def reopen_access_log(self) -> dict[str, Any]:
        """The main process was told to reopen the access log: so is this worker's."""
        self._runtime.connlog.reopen()
        return {}

    def _start_when_ready(self) -> None:
        if self._ready is not None and self._pushed_once and self._endpoint.fd is not None:
            ready, self._ready = self._ready, None
            ready()
            if self.transport is not None and not self._reporter.running:
                self._reporter.start(REPORT_INTERVAL, now=False)  # a spare has nothing to say

    def report(self) -> None:
        """Send the worker's figures, if they changed since the last report (connections
        that ended since then always do)."""
        relay = self._relay
        connlog = self._runtime.connlog
        ended = connlog.since(self._ended_seen)
        self._ended_seen = connlog.ended_count
        figures = worker_figures(self._runtime.balancer.pool, len(relay.fronts),
                                 relay.accepted, self._pushed, relay.fronts, ended,
                                 self._runtime.queue)
        if ended or figures != self._last:
            self._last = figures
            self.callRemote(Report, figures=figures)

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        super().connectionLost(reason)
        if self._reporter.running:
            self._reporter.stop()
        self._lost()


class WorkerChannelService(Service):
    """Adopts the AMP channel to the main process when the worker starts."""

    def __init__(self, reactor: Any, fd: int, link: WorkerLink) -> None:
        self._reactor = reactor
        self._fd = fd
        self.link = link

    def startService(self) -> None:
        super().startService()
        self._reactor.adoptStreamConnection(self._fd, socket.AF_UNIX, OneProtocolFactory(self.link))
        os.close(self._fd)
