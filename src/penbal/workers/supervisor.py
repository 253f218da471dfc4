# -*- test-case-name: tests.workers.test_supervisor -*-
"""
The main process of C{--workers N}: it binds one listening socket per worker (see
L{penbal.workers.sockets}), starts each worker with C{spawnProcess} (the socket and its end of
an AMP channel as child descriptors 3 and 4), pushes the balancer's state to every worker
within L{PUSH_INTERVAL} seconds of a change, sums their reports, replaces a worker that dies
and stops them all gracefully on SIGTERM.

A worker that dies leaves its socket to the main process: the clients queued on it wait for
the replacement, which adopts the same socket.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessExitedAlready
from twisted.internet.interfaces import IProcessTransport
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.protocols import amp
from twisted.python.failure import Failure

from penbal.control.runtime import Runtime
from penbal.service import CLOSE_BOUND, StartupError, install_stop_signals
from penbal.workers.channel import PushState, Report
from penbal.workers.sockets import TCPListenAddress, listening_group
from penbal.workers.state import WorkerTotals, state_message
from penbal.workers.worker import _Once

log = Logger(namespace="penbal.workers")

#: Seconds between two looks at the state to push (pushed only when it changed).
PUSH_INTERVAL = 0.05
#: A worker that ran at least this long is replaced at once; one that ended sooner (it
#: cannot start, say) after L{RETRY_DELAY}, so that a broken worker does not spin.
STEADY = 5.0
RETRY_DELAY = 1.0
#: The descriptors a worker is given: its listening socket and its end of the AMP channel.
LISTEN_FD, CHANNEL_FD = 3, 4


class MainLink(amp.AMP):
    """The main process's end of one worker's AMP channel."""

    def __init__(self, group: WorkerGroup, number: int) -> None:
        super().__init__()
        self._group = group
        self._number = number

    @Report.responder
    def report(self, figures: dict[str, Any]) -> dict[str, Any]:
        """A worker's figures: summed into the backends."""
        self._group.totals.reported(self._number, figures)
        return {}

    def push(self, message: tuple[str, list[dict[str, Any]]]) -> None:
        """Send the balancer's state."""
        config, state = message
        self.callRemote(PushState, config=config, state=state)

    def connectionMade(self) -> None:
        super().connectionMade()
        self.push(self._group.message())


class WorkerProcess(ProcessProtocol):
    """Tells the group when its worker ends."""

    def __init__(self, group: WorkerGroup, number: int) -> None:
        self._group = group
        self._number = number

    def processEnded(self, reason: Failure) -> None:
        self._group.worker_ended(self._number, reason)


@dataclass
class Worker:
    """A running worker process."""

    process: IProcessTransport
    link: MainLink
    started: float


class WorkerGroup(Service):
    """Starts, feeds, watches, replaces and stops the worker processes."""

    def __init__(self, reactor: Any, runtime: Runtime, address: TCPListenAddress, count: int,
                 command: Sequence[str], environment: Mapping[str, str],
                 stop_timeout: float = 30.0) -> None:
        self._reactor = reactor
        self._runtime = runtime
        self._address = address
        self._count = count
        self._command = list(command)
        self._environment = dict(environment)
        self._stop_timeout = stop_timeout
        self.totals = WorkerTotals(runtime.balancer.pool)
        self.sockets: list[socket.socket] = []
        self.workers: dict[int, Worker] = {}
        self._last: tuple[str, list[dict[str, Any]]] | None = None
        self._pusher = LoopingCall(self.push)
        self._pusher.clock = reactor
        self._stopping = False
        self._all_ended: Deferred[None] | None = None

    def privilegedStartService(self) -> None:
        self._bind()
        super().privilegedStartService()

    def startService(self) -> None:
        install_stop_signals(self._reactor, self.hurry)
        self._bind()
        super().startService()
        self._reactor.callWhenRunning(self._start_all)

    def _bind(self) -> None:
        if self.sockets:
            return
        try:
            self.sockets = listening_group(self._address, self._count)
        except OSError as e:
            raise StartupError(f"cannot listen on {self._address.describe()}: {e}") from None
        log.info("penbal listening on {address} with {count} worker processes",
                 address=self._address.describe(), count=self._count)

    def _start_all(self) -> None:
        for number in range(self._count):
            self._spawn(number)
        self._pusher.start(PUSH_INTERVAL, now=False)

    def _spawn(self, number: int) -> None:
        if self._stopping:
            return
        mine, theirs = socket.socketpair()
        link = MainLink(self, number)
        try:
            self._reactor.adoptStreamConnection(mine.fileno(), socket.AF_UNIX, _Once(link))
            process = self._reactor.spawnProcess(
                WorkerProcess(self, number), self._command[0], self._command,
                env=self._environment,
                childFDs={0: "w", 1: 1, 2: 2, LISTEN_FD: self.sockets[number].fileno(),
                          CHANNEL_FD: theirs.fileno()},
            )
        finally:
            mine.close()
            theirs.close()
        self.workers[number] = Worker(process, link, self._reactor.seconds())
        log.info("worker {number} started (pid {pid})", number=number, pid=process.pid)

    def message(self) -> tuple[str, list[dict[str, Any]]]:
        """The state to push now."""
        return state_message(self._runtime)

    def push(self) -> None:
        """Push the state to every worker if it changed since the last push."""
        message = self.message()
        if message == self._last:
            return
        self._last = message
        for worker in self.workers.values():
            worker.link.push(message)

    def worker_ended(self, number: int, reason: Failure) -> None:
        """A worker ended: count it out, and replace it unless penbal is stopping."""
        worker = self.workers.pop(number, None)
        self.totals.ended(number)
        if worker is not None and worker.link.transport is not None:
            worker.link.transport.loseConnection()
        if self._stopping:
            if not self.workers and self._all_ended is not None and not self._all_ended.called:
                self._all_ended.callback(None)
            return
        lived = self._reactor.seconds() - worker.started if worker is not None else 0.0
        delay = 0.0 if lived >= STEADY else RETRY_DELAY
        log.warn("worker {number} ended ({why}); a new one starts in {delay}s",
                 number=number, why=reason.getErrorMessage(), delay=delay)
        self._reactor.callLater(delay, self._spawn, number)

    def _signal(self, name: str) -> None:
        for worker in list(self.workers.values()):
            try:
                worker.process.signalProcess(name)
            except ProcessExitedAlready:
                pass

    def hurry(self) -> None:
        """A second SIGTERM: the workers close their connections now."""
        self._signal("TERM")

    def stopService(self) -> Deferred[None]:
        """SIGTERM every worker (each stops gracefully), wait for all, close the sockets."""
        super().stopService()
        self._stopping = True
        if self._pusher.running:
            self._pusher.stop()
        ended: Deferred[None] = Deferred()
        self._all_ended = ended
        if not self.workers:
            ended.callback(None)
        self._signal("TERM")
        bound = self._stop_timeout + CLOSE_BOUND + 5.0
        late = self._reactor.callLater(bound, self._signal, "KILL")

        def close(result: object) -> object:
            if late.active():
                late.cancel()
            for sock in self.sockets:
                sock.close()
            self.sockets = []
            return result

        return ended.addBoth(close)
