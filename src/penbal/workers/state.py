# -*- test-case-name: tests.workers.test_state -*-
"""
One balancer from outside: the state the main process pushes to its workers, and the figures
the workers report back, summed into the main process's backends.

The push: the configuration as control commands (what C{write} puts in a file: the table with
its weights, drain and down, the ACLs, the policy, the settings), and per backend the state
no command sets: its admin state, the health check's verdict, the node's position in the
Galera view that the check read (C{wsrep_local_index}: C{galera-writer} ranks by it, so the
workers name the writer a single penbal would) and its blacklisting (absolute times: main and
workers share the machine's clock).  A worker applies it as a config file is
applied (L{penbal.config.reconcile}): its live connections, counters and client table stay.

The report: the worker's connections (live, accepted, and those that ended since the last
report), per backend its counters, and the blacklistings it made itself (a failed connect),
which the main process adopts and pushes to every worker.  The main process sums the live
workers' counters, plus those of workers that ended, into its backends, so every status view
counts each connection once; it keeps the ended connections with its own recent ones (the
status page, C{recent}), as a single penbal keeps those it relayed, and sums the workers'
wait queues (C{--queue-timeout}) into one (L{WorkersQueue}).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any

from penbal.backend import COUNTER_NAMES, AdminState, Backend, Fitness
from penbal.config.file import build, render
from penbal.config.model import Configuration
from penbal.config.reconcile import capture, match, reconcile
from penbal.connlog import ConnectionLog, ConnectionRecord
from penbal.health.scheduler import close_connections
from penbal.interfaces import ClientInfo
from penbal.policies.galera_writer import VIEW_INDEX
from penbal.pool import BackendPool
from penbal.relay.waitqueue import QueueFigures
from penbal.runtime import QueueFiguresSource, Runtime, WaitQueue

#: Live connections a worker lists in a report (the status page shows at most 1,000 in all).
LISTED = 250


@dataclass(frozen=True)
class ReportedBackend:
    """A backend as a reported connection names it."""

    address: str


@dataclass(frozen=True)
class ReportedConnection:
    """A live connection of a worker, as the status views read one (a front leg's fields)."""

    client: ClientInfo
    backend: ReportedBackend | None
    bytes_in: int
    bytes_out: int
    started: float


#: What a worker reports of its wait queue, in this order: waiting now, then the figures.
QUEUE_FIELDS = ("waiting", "held", "served", "expired", "refused")


def _serving(pool: BackendPool) -> list[Backend]:
    """The backends that stay in the table, in order (those draining out are not pushed)."""
    return [backend for backend in pool if backend not in pool.retiring]


# The main process's side.

def state_message(runtime: Runtime) -> tuple[str, list[dict[str, Any]]]:
    """What to push: the configuration as commands, and each backend's state."""
    config = render(capture(runtime), 0.0, runtime.version)
    state = [
        {
            "address": backend.address,
            "admin": backend.admin.value,
            "fitness": backend.health.fitness.value,
            "reason": backend.health.reason,
            "view_index": backend.health.details.get(VIEW_INDEX),
            "blacklisted_until": backend.blacklisted_until,
            "blacklist_reason": backend.blacklist_reason,
        }
        for backend in _serving(runtime.balancer.pool)
    ]
    return config, state


class WorkerTotals:
    """The workers' latest reports, summed into the main process's backends.

    It is one of the runtime's relays for the status views: C{active} and C{accepted} count
    the workers' connections, C{fronts} lists those they reported (up to L{LISTED} each).
    """

    def __init__(self, pool: BackendPool,
                 processes: Callable[[], dict[str, Any]] | None = None,
                 connlog: ConnectionLog | None = None) -> None:
        self._pool = pool
        self._processes = processes
        #: Where the connections the workers report as ended are kept, for the status views.
        self._connlog = connlog
        self._reports: dict[int, dict[str, Any]] = {}
        #: Counters of workers that ended, by backend address (all but "active").
        self._ended: dict[str, dict[str, int]] = {}
        self._ended_accepted = 0
        #: The wait-queue figures of workers that ended (all but "waiting").
        self._ended_queue = dict.fromkeys(QUEUE_FIELDS, 0)

    def workers_figures(self) -> dict[str, Any]:
        """The worker processes, for the status views (see L{penbal.status.snapshot})."""
        return self._processes() if self._processes is not None else {
            "count": 0, "pids": [], "spare": None, "replaced": 0, "steered": False}

    @property
    def active(self) -> int:
        """Client connections live in the workers now."""
        return sum(int(report.get("active", 0)) for report in self._reports.values())

    @property
    def fronts(self) -> list[ReportedConnection]:
        """The live connections the workers listed in their latest reports."""
        listed = []
        for report in self._reports.values():
            for client, port, backend, bytes_in, bytes_out, started in report.get(
                    "connections", ()):
                listed.append(ReportedConnection(
                    ClientInfo(str(client), int(port)),
                    ReportedBackend(str(backend)) if backend is not None else None,
                    int(bytes_in), int(bytes_out), float(started)))
        return listed

    @property
    def accepted(self) -> int:
        """Client connections the workers accepted, ended workers included."""
        return self._ended_accepted + sum(
            int(report.get("accepted", 0)) for report in self._reports.values())

    def reported(self, worker: int, figures: dict[str, Any]) -> None:
        """Worker C{worker}'s latest report: adopt its blacklistings, keep the connections that
        ended, re-sum the counters."""
        self._reports[worker] = figures
        if self._connlog is not None:
            for ended in figures.get("ended", ()):
                client, backend, bytes_in, bytes_out, started, duration, why, clean = ended
                self._connlog.remember(ConnectionRecord(
                    str(client), str(backend), int(bytes_in), int(bytes_out), float(started),
                    float(duration), str(why), bool(clean)))
        now_listed = {backend.address: backend for backend in reversed(list(self._pool))}
        for address, figure in figures.get("backends", {}).items():
            blacklist = figure.get("blacklist")
            backend = now_listed.get(address)
            if backend is not None and blacklist is not None:
                until, reason = float(blacklist[0]), str(blacklist[1])
                if until > backend.blacklisted_until:
                    backend.blacklisted_until = until
                    backend.blacklist_reason = reason
        self.sum()

    def ended(self, worker: int) -> None:
        """Worker C{worker} is gone: keep its counts (its connections are no longer live)."""
        report = self._reports.pop(worker, None)
        if report is None:
            return
        self._ended_accepted += int(report.get("accepted", 0))
        for name, value in zip(QUEUE_FIELDS, report.get("queue") or (), strict=False):
            if name != "waiting":
                self._ended_queue[name] += int(value)
        for address, figure in report.get("backends", {}).items():
            kept = self._ended.setdefault(address, dict.fromkeys(COUNTER_NAMES, 0))
            for name in COUNTER_NAMES:
                if name != "active":
                    kept[name] += int(figure.get("counters", {}).get(name, 0))
        self.sum()

    def queue_totals(self) -> dict[str, int]:
        """The workers' wait queues summed: clients waiting now, and the figures since
        start-up (workers that ended included)."""
        totals = dict(self._ended_queue)
        for report in self._reports.values():
            for name, value in zip(QUEUE_FIELDS, report.get("queue") or (), strict=False):
                totals[name] += int(value)
        return totals

    def sum(self) -> None:
        """Set each backend's counters to the sum over the workers (live and ended)."""
        totals: dict[str, dict[str, int]] = {
            address: dict(counters) for address, counters in self._ended.items()}
        for report in self._reports.values():
            for address, figure in report.get("backends", {}).items():
                total = totals.setdefault(address, dict.fromkeys(COUNTER_NAMES, 0))
                for name in COUNTER_NAMES:
                    total[name] += int(figure.get("counters", {}).get(name, 0))
        seen: set[str] = set()
        for backend in self._pool:
            # One address twice in the table: counted on the first.
            total = {} if backend.address in seen else totals.get(backend.address, {})
            seen.add(backend.address)
            counters = backend.counters
            for name in COUNTER_NAMES:
                if name == "active":  # the workers' connections: none is live here
                    counters.elsewhere = int(total.get(name, 0))
                else:
                    setattr(counters, name, int(total.get(name, 0)))


class WorkersQueue:
    """The main process's view of the workers' wait queues, for the status views (a
    L{penbal.runtime.WaitQueue}): each worker holds its own clients (C{--queue-timeout}), the
    settings are the command line's, the figures the sum of the workers' reports."""

    def __init__(self, totals: WorkerTotals, timeout: float, limit: int) -> None:
        self._totals = totals
        self.timeout = timeout
        self.limit = limit

    @property
    def figures(self) -> QueueFiguresSource:
        summed = self._totals.queue_totals()
        return QueueFigures(summed["held"], summed["served"], summed["expired"],
                            summed["refused"])

    def __len__(self) -> int:
        return self._totals.queue_totals()["waiting"]


def workers_queue(totals: WorkerTotals, own: WaitQueue | None) -> WaitQueue | None:
    """What the main process shows as its wait queue: the workers' summed, with C{own}'s
    settings (None when there is no queue)."""
    return None if own is None else WorkersQueue(totals, own.timeout, own.limit)


# The worker's side.

def apply_state(runtime: Runtime, config: str, state: list[dict[str, Any]],
                pushed: dict[Backend, float], close_unfit: bool = False) -> list[str]:
    """Make the worker's balancer match the main process's; return the changes.

    With C{close_unfit} (C{--on-unfit close}), the worker's connections to a backend that
    just became unfit are closed, as the health check does in a single penbal.  C{pushed}
    remembers each backend's blacklisting as last pushed, so that the worker's
    own later blacklistings can be told apart (see L{worker_figures}).  Raises the config
    errors of L{penbal.config.file} and L{penbal.config.reconcile} (nothing changed).
    """
    desired: Configuration = build(Configuration(), "main process", config.splitlines(),
                                   runtime.policies())
    if len(desired.backends) == len(state):  # the admin state, up included, is the main's
        desired = replace(desired, backends=tuple(
            replace(entry, admin=AdminState(each["admin"]))
            for entry, each in zip(desired.backends, state, strict=True)))
    changes = reconcile(runtime, match(desired, runtime))
    for backend, each in zip(_serving(runtime.balancer.pool), state, strict=False):
        if backend.address != each["address"]:
            continue
        fitness = Fitness(each["fitness"])
        became_unfit = fitness is Fitness.UNFIT and backend.health.fitness is not Fitness.UNFIT
        details = dict(backend.health.details)
        index = each.get("view_index")
        if index is None:
            details.pop(VIEW_INDEX, None)
        else:
            details[VIEW_INDEX] = index
        backend.health = replace(backend.health, fitness=fitness, reason=str(each["reason"]),
                                 details=details)
        if became_unfit and close_unfit:
            close_connections(backend, f"backend unfit: {backend.health.reason}")
        until = float(each["blacklisted_until"])
        if pushed.get(backend) != until:
            backend.blacklisted_until = until
            backend.blacklist_reason = str(each["blacklist_reason"])
            pushed[backend] = until
    for gone in [backend for backend in pushed if backend not in runtime.balancer.pool]:
        del pushed[gone]
    return changes


def worker_figures(pool: BackendPool, active: int, accepted: int,
                   pushed: dict[Backend, float], fronts: Iterable[Any] = (),
                   ended: Iterable[ConnectionRecord] = (),
                   queue: WaitQueue | None = None) -> dict[str, Any]:
    """What a worker reports: its connections (counted, the first L{LISTED} of C{fronts}
    listed, and those C{ended} since the last report), its wait queue (L{QUEUE_FIELDS}, or
    None without one), and per backend address its counters and the blacklisting it made
    itself since the last push (None if none)."""
    backends: dict[str, dict[str, Any]] = {}
    for backend in pool:
        backend.settle_live()
        figure = backends.setdefault(
            backend.address, {"counters": dict.fromkeys(COUNTER_NAMES, 0), "blacklist": None})
        for name, value in backend.counters.figures().items():
            figure["counters"][name] += value
        own = backend.blacklisted_until
        if own != pushed.get(backend, 0.0) and own > 0:
            figure["blacklist"] = [own, backend.blacklist_reason]
    listed = []
    for front in islice(fronts, LISTED):
        backend = front.backend
        listed.append([front.client.host, front.client.port,
                       backend.address if backend is not None else None,
                       int(front.bytes_in), int(front.bytes_out), float(front.started)])
    queued = None
    if queue is not None:
        figures = queue.figures
        queued = [len(queue), figures.held, figures.served, figures.expired, figures.refused]
    return {"active": active, "accepted": accepted, "backends": backends,
            "connections": listed, "queue": queued,
            "ended": [[r.client, r.backend, r.bytes_in, r.bytes_out, r.started, r.duration,
                       r.ended_by, r.clean] for r in ended]}
