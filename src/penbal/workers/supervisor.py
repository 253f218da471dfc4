# -*- test-case-name: tests.workers.test_supervisor -*-
"""
The main process of C{--workers N}: it binds one listening socket per worker (see
L{penbal.workers.sockets}), starts each worker with C{spawnProcess} (the socket and its end of
an AMP channel as child descriptors 3 and 4), pushes the balancer's state to every worker
within L{PUSH_INTERVAL} seconds of a change, sums their reports, replaces a worker that dies
and stops them all gracefully on SIGTERM.

A worker that dies leaves its socket to the main process: the clients queued on it wait for
the replacement, which adopts the same socket.  The replacement is a spare worker, started
beforehand with no socket and kept up to date: it is handed the socket over its AMP channel
(L{Serve}) at once, instead of the 0.5 to 2 s a new process takes to start; a new spare is
then started.  Without a spare (it is still starting, or died), a new worker is started with
the socket.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
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

from penbal.runtime import Runtime
from penbal.service import CLOSE_BOUND, StartupError, install_stop_signals
from penbal.workers.channel import (
    OneProtocolFactory,
    PushState,
    RemoveNow,
    ReopenAccessLog,
    Report,
    Serve,
)
from penbal.workers.sockets import (
    TCPListenAddress,
    attach_steering,
    detach_steering,
    listening_group,
)
from penbal.workers.state import WorkerTotals, state_message

log = Logger(namespace="penbal.workers")

#: Seconds between two looks at the state to push (pushed only when it changed).
PUSH_INTERVAL = 0.05
#: A worker that ran at least this long is replaced at once; one that ended sooner (it
#: cannot start, say) after L{RETRY_DELAY}, so that a broken worker does not spin.
STEADY = 5.0
RETRY_DELAY = 1.0
#: The descriptors a worker is given: its listening socket and its end of the AMP channel.
LISTEN_FD, CHANNEL_FD = 3, 4
#: Policies that keep nothing per client address: no need to steer a client to one worker
#: (hash is a function of the address alone; the others ignore it).
SPREAD_POLICIES = frozenset(
    {"roundrobin", "leastconn", "weight", "prio", "random", "hash", "galera-writer"})


def wants_steering(runtime: Runtime, per_client_limit: bool) -> bool:
    """Whether clients must be steered to one worker by address: for a client table (sticky,
    or a policy plugin penbal does not know) or a per-client connection limit."""
    return per_client_limit or runtime.policy.name not in SPREAD_POLICIES


class MainLink(amp.AMP):
    """The main process's end of one worker's AMP channel."""

    def __init__(self, group: WorkerGroup, ident: int) -> None:
        super().__init__()
        self._group = group
        self._ident = ident

    @Report.responder
    def report(self, figures: dict[str, Any]) -> dict[str, Any]:
        """A worker's figures: summed into the backends."""
        self._group.totals.reported(self._ident, figures)
        return {}

    def push(self, message: tuple[str, list[dict[str, Any]]]) -> None:
        """Send the balancer's state."""
        config, state = message
        self.callRemote(PushState, config=config, state=state)

    def serve(self, listening: socket.socket) -> None:
        """Hand a spare worker its listening socket."""
        self.callRemote(Serve, listen=listening.fileno())

    def reopen_access_log(self) -> None:
        """Have the worker reopen its access log."""
        self.callRemote(ReopenAccessLog)

    def remove_now(self, index: int, address: str) -> None:
        """Have the worker take a backend out and close its connections to it."""
        self.callRemote(RemoveNow, index=index, address=address)

    def connectionMade(self) -> None:
        super().connectionMade()
        self.push(self._group.message())


class WorkerProcess(ProcessProtocol):
    """Tells the group when its worker ends."""

    def __init__(self, group: WorkerGroup, ident: int) -> None:
        self._group = group
        self._ident = ident

    def processEnded(self, reason: Failure) -> None:
        self._group.worker_ended(self._ident, reason)


@dataclass
class Worker:
    """A running worker process: C{slot} is the socket it serves, None for the spare."""

    ident: int
    process: IProcessTransport
    link: MainLink
    started: float
    slot: int | None


class WorkerGroup(Service):
    """Starts, feeds, watches, replaces and stops the worker processes."""

    def __init__(self, reactor: Any, runtime: Runtime, address: TCPListenAddress, count: int,
                 command: Callable[[bool], list[str]], environment: Mapping[str, str],
                 stop_timeout: float = 30.0, per_client_limit: bool = False,
                 install_signals: Callable[[Any, Callable[[], object]], object] = (
                     install_stop_signals)) -> None:
        self._reactor = reactor
        self._runtime = runtime
        self._address = address
        self._count = count
        self._command = command
        self._environment = dict(environment)
        self._stop_timeout = stop_timeout
        self._per_client_limit = per_client_limit
        self._install_signals = install_signals
        self.steered = False
        self.totals = WorkerTotals(runtime.balancer.pool, self.figures, runtime.connlog)
        #: Workers that ended and were replaced (by the spare or a new process).
        self.replaced = 0
        self.sockets: list[socket.socket] = []
        #: Every worker process by its ident (the spare included).
        self.workers: dict[int, Worker] = {}
        self.spare: Worker | None = None
        self._idents = 0
        self._last: tuple[str, list[dict[str, Any]]] | None = None
        self._pusher = LoopingCall(self.push)
        self._pusher.clock = reactor
        self._stopping = False
        self._all_ended: Deferred[None] | None = None

    def privilegedStartService(self) -> None:
        self._bind()
        super().privilegedStartService()

    def startService(self) -> None:
        self._install_signals(self._reactor, self.hurry)
        self._bind()
        super().startService()
        self._reactor.callWhenRunning(self._start_all)

    def _bind(self) -> None:
        if self.sockets:
            return
        steered = wants_steering(self._runtime, self._per_client_limit)
        try:
            self.sockets = listening_group(self._address, self._count, steered)
        except OSError as e:
            raise StartupError(f"cannot listen on {self._address.describe()}: {e}") from None
        self.steered = steered
        log.info("penbal listening on {address} with {count} worker processes ({how})",
                 address=self._address.describe(), count=self._count, how=self._steering())

    def _steering(self) -> str:
        return ("each client address steered to one worker" if self.steered
                else "connections spread by the kernel")

    def _steer(self) -> None:
        """Steer by client address, or stop, as the policy now running needs."""
        wanted = wants_steering(self._runtime, self._per_client_limit)
        if wanted == self.steered or not self.sockets:
            return
        try:
            if wanted:
                attach_steering(self.sockets[0], len(self.sockets))
            else:
                detach_steering(self.sockets[0])
        except OSError as e:
            log.error("cannot change how clients reach the workers: {error}", error=str(e))
            return
        self.steered = wanted
        log.info("workers: {how}", how=self._steering())

    def _start_all(self) -> None:
        self._last = self.message()  # what each worker is sent as it connects
        for slot in range(self._count):
            self._spawn(slot)
        self._spawn(None)
        self._pusher.start(PUSH_INTERVAL, now=False)

    def _spawn(self, slot: int | None) -> None:
        """Start a worker serving socket C{slot}, or the spare (None)."""
        if self._stopping:
            return
        self._idents += 1
        ident = self._idents
        mine, theirs = socket.socketpair()
        link = MainLink(self, ident)
        descriptors: dict[int, int | str] = {0: "w", 1: 1, 2: 2, CHANNEL_FD: theirs.fileno()}
        if slot is not None:
            descriptors[LISTEN_FD] = self.sockets[slot].fileno()
        command = self._command(slot is not None)
        try:
            self._reactor.adoptStreamConnection(mine.fileno(), socket.AF_UNIX,
                                                OneProtocolFactory(link))
            process = self._reactor.spawnProcess(
                WorkerProcess(self, ident), command[0], command, env=self._environment,
                childFDs=descriptors)
        finally:
            mine.close()
            theirs.close()
        worker = Worker(ident, process, link, self._reactor.seconds(), slot)
        self.workers[ident] = worker
        if slot is None:
            self.spare = worker
            log.info("spare worker started (pid {pid})", pid=process.pid)
        else:
            log.info("worker {number} started (pid {pid})", number=slot, pid=process.pid,
                     penbal_event="worker-serving")

    def figures(self) -> dict[str, Any]:
        """The processes, for the status views."""
        serving = sorted((w.slot, w.process.pid) for w in self.workers.values()
                         if w.slot is not None)
        return {"count": self._count, "pids": [pid for _, pid in serving],
                "spare": self.spare.process.pid if self.spare is not None else None,
                "replaced": self.replaced, "steered": self.steered}

    def message(self) -> tuple[str, list[dict[str, Any]]]:
        """The state to push now."""
        return state_message(self._runtime)

    def push(self) -> None:
        """Push the state to every worker if it changed since the last push."""
        message = self.message()
        if message == self._last:
            return
        self._last = message
        self._steer()
        for worker in self.workers.values():
            worker.link.push(message)

    def reopen_access_logs(self) -> None:
        """SIGHUP or SIGUSR1 reached the main process (see L{penbal.connlog}): every worker,
        the spare too, reopens its access log.  A worker still starting gets the command
        once it reads its channel, after it opened the file: the reopen is then harmless."""
        for worker in self.workers.values():
            worker.link.reopen_access_log()

    def backend_removed_now(self, index: int, address: str) -> None:
        """C{remove N now} in the main process: every worker closes its connections to the
        backend and takes it out, at once (the push that follows only drops it from the
        table, which lets connections drain)."""
        for worker in self.workers.values():
            worker.link.remove_now(index, address)

    def worker_ended(self, ident: int, reason: Failure) -> None:
        """A worker ended: count it out, and replace it unless penbal is stopping."""
        worker = self.workers.pop(ident, None)
        self.totals.ended(ident)
        if worker is None:
            return
        if worker.link.transport is not None:
            worker.link.transport.loseConnection()
        if self._stopping:
            if not self.workers and self._all_ended is not None and not self._all_ended.called:
                self._all_ended.callback(None)
            return
        steady = self._reactor.seconds() - worker.started >= STEADY
        delay = 0.0 if steady else RETRY_DELAY
        what = "spare worker" if worker.slot is None else f"worker {worker.slot}"
        log.warn("{what} (pid {pid}) ended ({why})", what=what, pid=worker.process.pid,
                 why=reason.getErrorMessage())
        if worker is self.spare:
            self.spare = None
            self._reactor.callLater(delay, self._spawn, None)
            return
        self.replaced += 1
        spare = self.spare
        if spare is not None:
            self.spare = None
            spare.slot = worker.slot
            assert spare.slot is not None
            spare.link.serve(self.sockets[spare.slot])
            log.info("the spare worker (pid {pid}) is worker {number} now", number=spare.slot,
                     pid=spare.process.pid, penbal_event="worker-serving")
            self._reactor.callLater(delay, self._spawn, None)
        else:
            self._reactor.callLater(delay, self._spawn, worker.slot)

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
