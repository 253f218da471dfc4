# -*- test-case-name: tests.status.test_snapshot -*-
"""
One picture of the running balancer, built in one place and read by every view: the HTML
page, the JSON document, the Prometheus metrics, the control port's C{status} and the SIGUSR1
summary.  Each figure comes from where it is counted (a backend's counters, the relays' live
connections, the connection log), so the views can never disagree.

In UDP mode the UDP relay is one of the runtime's relays: its live sessions count and show as
live connections, the sessions it started as accepted ones, and its front-side figures
(datagrams dropped, sessions moved...) are in L{Snapshot.udp}.  With C{--workers} the
workers' summed figures are one of the relays, and the processes are in L{Snapshot.workers}.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from penbal.backend import Backend, settle
from penbal.config.edit import mode_line
from penbal.config.reconcile import capture
from penbal.connlog import ConnectionRecord
from penbal.runtime import Runtime

MAX_CONNECTIONS_SHOWN = 1000


@dataclass(frozen=True)
class BackendStatus:
    """One backend: its spec, its state and why, its counters and its health check's values."""

    index: int
    address: str
    host: str
    port: int
    maxc: int
    hard: int
    weight: int
    prio: int
    acl: int
    admin: str
    state: str
    reason: str
    removing: bool
    fitness: str
    health_reason: str
    health_since: float
    blacklisted_for: float
    counters: dict[str, int]
    health: dict[str, Any]


@dataclass(frozen=True)
class LiveConnection:
    """A client connection now relayed (or still looking for a backend)."""

    client: str
    backend: str
    bytes_in: int
    bytes_out: int
    age: float


@dataclass(frozen=True)
class UDPStatus:
    """The UDP front side (C{--udp}): sessions and datagrams not counted on any backend."""

    sessions_active: int
    """Live sessions (also counted in L{Snapshot.connections_active})."""
    sessions_max: int
    """The session table's bound (C{-c}/C{--clients})."""
    sessions: int
    """Sessions started (also counted in L{Snapshot.connections_accepted})."""
    datagrams_in: int
    """Datagrams received from clients."""
    datagrams_out: int
    """Datagrams sent back to clients."""
    moved: int
    """Sessions moved to another backend."""
    resent: int
    """Unanswered datagrams sent again to a moved session's new backend."""
    evicted: int
    """Sessions ended to make room for a new client (the table was full)."""
    expired: int
    """Sessions ended after C{--udp-idle} seconds without traffic."""
    no_backend: int
    """Datagrams dropped because no backend could take them."""
    dropped: int
    """Datagrams dropped otherwise (a full socket buffer, too many waiting for a name)."""
    denied: int
    """Datagrams of new clients refused by the client ACL."""


UDP_FIGURES = tuple(each.name for each in fields(UDPStatus))


@dataclass(frozen=True)
class QueueStatus:
    """Clients held while no backend is usable (C{--queue-timeout}; see penbal.relay.waitqueue)."""

    waiting: int
    """Clients held now (also counted in L{Snapshot.connections_active})."""
    timeout: float
    """C{--queue-timeout}: the longest a client is held."""
    max: int
    """C{--queue-max}: the most clients held at once."""
    held: int
    """Clients that had to wait since start-up."""
    served: int
    """... and were dialled to a backend that became usable."""
    expired: int
    """... and were still waiting at their deadline (closed, or sent to the emergency server)."""
    refused: int
    """Clients closed at once because C{--queue-max} clients were waiting."""


@dataclass(frozen=True)
class WorkersStatus:
    """The worker processes (C{--workers N} above 1)."""

    count: int
    """Workers asked for."""
    pids: list[int]
    """The workers relaying now."""
    spare: int | None
    """The spare worker's pid, if one is running."""
    replaced: int
    """Workers that ended and were replaced."""
    steered: bool
    """Whether each client address is steered to one worker."""


@dataclass(frozen=True)
class Snapshot:
    """Everything the status views show, at one instant."""

    version: str
    pid: int
    time: float
    started: float
    endpoints: dict[str, str]
    policy: str
    mode: str
    settings: dict[str, Any]
    connections_active: int
    connections_accepted: int
    backends: list[BackendStatus]
    connections: list[LiveConnection] = field(default_factory=list)
    recent: list[ConnectionRecord] = field(default_factory=list)
    #: The UDP front side's figures in UDP mode, else None.
    udp: UDPStatus | None = None
    #: The wait queue's figures when C{--queue-timeout} is on, else None.
    queue: QueueStatus | None = None
    #: The worker processes with --workers above 1, else None.
    workers: WorkersStatus | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return asdict(self)


def _plain(value: Any) -> Any:
    """A health detail as JSON-safe data (unknown types as text)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(each) for each in value]
    if isinstance(value, dict):
        return {str(key): _plain(each) for key, each in value.items()}
    return str(value)


def backend_status(runtime: Runtime, backend: Backend, now: float) -> BackendStatus:
    """The status of one backend."""
    spec = backend.spec
    word, why = backend.state(now)
    removing = backend in runtime.balancer.pool.retiring
    if removing:
        word, why = "removing", "removed by the operator: leaves the table once drained"
    health = backend.health
    return BackendStatus(
        index=backend.index,
        address=backend.address,
        host=spec.host,
        port=spec.port,
        maxc=spec.maxc,
        hard=spec.hard,
        weight=spec.weight,
        prio=spec.prio,
        acl=runtime.server_acl(backend),
        admin=backend.admin.value,
        state=word,
        reason=why,
        removing=removing,
        fitness=health.fitness.value,
        health_reason=health.reason,
        health_since=health.since,
        blacklisted_for=max(0.0, backend.blacklisted_until - now),
        counters=_settled_counters(backend),
        health={str(key): _plain(value) for key, value in health.details.items()},
    )


def _settled_counters(backend: Backend) -> dict[str, int]:
    """The backend's counters, with what its live connections relayed until now."""
    backend.settle_live()
    return backend.counters.figures()


def backend_statuses(runtime: Runtime, now: float) -> list[BackendStatus]:
    """The status of every backend of the table, in table order."""
    return [backend_status(runtime, b, now) for b in runtime.balancer.pool]


def _live(runtime: Runtime, now: float) -> list[LiveConnection]:
    shown: list[LiveConnection] = []
    for relay in runtime.relays:
        for front in list(relay.fronts):
            if len(shown) >= MAX_CONNECTIONS_SHOWN:
                return shown
            backend = getattr(front, "backend", None)
            settle(front)
            client = front.client
            shown.append(
                LiveConnection(
                    client=f"{client.host}:{client.port}",
                    backend=backend.address if backend is not None else "-",
                    bytes_in=int(front.bytes_in),
                    bytes_out=int(front.bytes_out),
                    age=max(0.0, now - front.started),
                )
            )
    return shown


def _active(relay: Any) -> int:
    """A relay's live connections: counted where they are (C{--workers}: in the workers)."""
    count = getattr(relay, "active", None)
    return len(relay.fronts) if count is None else int(count)


def _udp(runtime: Runtime) -> UDPStatus | None:
    """The UDP relays' figures, summed (there is one, in UDP mode), or None."""
    totals: dict[str, int] | None = None
    for relay in runtime.relays:
        figures = getattr(relay, "udp_figures", None)
        if figures is None:
            continue
        reported = figures()
        if totals is None:
            totals = dict.fromkeys(UDP_FIGURES, 0)
        for key in UDP_FIGURES:
            totals[key] += int(reported.get(key, 0))
    return None if totals is None else UDPStatus(**totals)


def _workers(runtime: Runtime) -> WorkersStatus | None:
    """The worker processes, if a relay runs them (the main process of --workers)."""
    for relay in runtime.relays:
        figures = getattr(relay, "workers_figures", None)
        if figures is not None:
            return WorkersStatus(**figures())
    return None


def build_snapshot(runtime: Runtime) -> Snapshot:
    """The status of everything, now."""
    now = runtime.now()
    config = capture(runtime)
    settings = runtime.balancer.settings
    emergency = settings.emergency
    return Snapshot(
        version=runtime.version,
        pid=runtime.pid,
        time=now,
        started=runtime.started,
        endpoints=dict(runtime.endpoints),
        policy=runtime.policy.describe(),
        mode=mode_line(config),
        settings={
            "timeout": settings.timeout,
            "blacklist": settings.blacklist,
            "conn_max": settings.max_connections,
            "stubborn": settings.stubborn,
            "tracking": runtime.context.tracking,
            "clients_max": runtime.context.clients,
            "emergency": emergency.address if emergency is not None else None,
            "client_acl": runtime.client_acl,
            "control_acl": runtime.control_acl,
            "config_file": runtime.config_path,
        },
        connections_active=sum(_active(relay) for relay in runtime.relays),
        connections_accepted=sum(int(relay.accepted) for relay in runtime.relays),
        backends=backend_statuses(runtime, now),
        connections=_live(runtime, now),
        recent=list(reversed(runtime.connlog.recent)),
        udp=_udp(runtime),
        queue=_queue(runtime),
        workers=_workers(runtime),
    )


def _queue(runtime: Runtime) -> QueueStatus | None:
    queue = runtime.queue
    if queue is None:
        return None
    figures = queue.figures
    return QueueStatus(waiting=len(queue), timeout=queue.timeout, max=queue.limit,
                       held=figures.held, served=figures.served, expired=figures.expired,
                       refused=figures.refused)


def render_json(snapshot: Snapshot) -> str:
    """The snapshot as a JSON document (one per line for the control port: no newlines)."""
    return json.dumps(snapshot.as_dict(), separators=(",", ":"), allow_nan=False)
