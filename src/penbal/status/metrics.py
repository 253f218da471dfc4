# -*- test-case-name: tests.status.test_views -*-
"""
Prometheus metrics (C{GET /metrics}): a custom collector that reads the status snapshot at
each scrape, so every figure is counted once, where the balancer counts it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import asdict

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from twisted.web.resource import Resource
from twisted.web.server import Request

from penbal.status.page import STATE_CLASSES
from penbal.status.snapshot import Snapshot

LABELS = ["server", "backend"]
USABLE_STATES = ("up", "full", "last-resort")
# Backend counters with a name of their own; any other counter becomes penbal_backend_<name>.
COUNTERS = {
    "total": ("penbal_backend_connections", "Connections (UDP: sessions) sent to the backend."),
    "failures": ("penbal_backend_failures", "Failed connects (and UDP failures) to the backend."),
    "bytes_to_backend": ("penbal_backend_sent_bytes", "Bytes sent to the backend."),
    "bytes_from_backend": ("penbal_backend_received_bytes", "Bytes received from the backend."),
    "datagrams_to_backend": ("penbal_backend_sent_datagrams", "UDP datagrams sent to it."),
    "datagrams_from_backend": ("penbal_backend_received_datagrams", "UDP datagrams from it."),
}


# The UDP front side (--udp): figure -> (gauge?, metric name, help).
UDP_METRICS = {
    "sessions_active": (True, "penbal_udp_sessions_active", "UDP sessions now live."),
    "sessions_max": (True, "penbal_udp_max_sessions", "The UDP session table's bound (-c)."),
    "sessions": (False, "penbal_udp_sessions", "UDP sessions started."),
    "datagrams_in": (False, "penbal_udp_received_datagrams", "UDP datagrams from clients."),
    "datagrams_out": (False, "penbal_udp_sent_datagrams", "UDP datagrams sent to clients."),
    "moved": (False, "penbal_udp_moved_sessions", "UDP sessions moved to another backend."),
    "resent": (False, "penbal_udp_resent_datagrams",
               "Unanswered UDP datagrams sent again to a moved session's new backend."),
    "evicted": (False, "penbal_udp_evicted_sessions",
                "UDP sessions ended to make room (the table was full)."),
    "expired": (False, "penbal_udp_expired_sessions", "UDP sessions ended after --udp-idle."),
    "no_backend": (False, "penbal_udp_no_backend_datagrams",
                   "UDP datagrams dropped: no backend could take them."),
    "dropped": (False, "penbal_udp_dropped_datagrams",
                "UDP datagrams dropped otherwise (full buffer, waiting for a name)."),
    "denied": (False, "penbal_udp_denied_datagrams",
               "UDP datagrams of new clients refused by the client ACL."),
}


# The wait queue (--queue-timeout): figure -> (gauge?, metric name, help).
QUEUE_METRICS = {
    "waiting": (True, "penbal_queue_waiting_clients",
                "Clients held now while no backend is usable."),
    "max": (True, "penbal_queue_max_clients", "--queue-max: the most clients held at once."),
    "timeout": (True, "penbal_queue_timeout_seconds", "--queue-timeout: the longest wait."),
    "held": (False, "penbal_queue_held_clients", "Clients that had to wait for a backend."),
    "served": (False, "penbal_queue_served_clients",
               "Held clients dialled to a backend that became usable."),
    "expired": (False, "penbal_queue_expired_clients",
                "Held clients still waiting at their deadline."),
    "refused": (False, "penbal_queue_refused_clients",
                "Clients closed at once: --queue-max clients were waiting."),
}


def _health_value(value: object) -> float | None:
    """A health detail as a number, if it is one (booleans as 0/1; numeric text too)."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


class SnapshotCollector(Collector):
    """Yields penbal's metric families from one fresh snapshot per scrape."""

    def __init__(self, source: Callable[[], Snapshot]) -> None:
        self._source = source

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        snapshot = self._source()
        info = InfoMetricFamily("penbal", "penbal's version and selection policy.")
        info.add_metric([], {"version": snapshot.version, "policy": snapshot.policy})
        yield info
        yield GaugeMetricFamily("penbal_start_time_seconds", "When penbal started (Unix time).",
                                value=snapshot.started)
        yield GaugeMetricFamily("penbal_connections_active",
                                "Client connections (UDP: sessions) now relayed.",
                                value=snapshot.connections_active)
        yield CounterMetricFamily("penbal_connections_accepted",
                                  "Client connections accepted (UDP: sessions started).",
                                  value=snapshot.connections_accepted)
        yield GaugeMetricFamily("penbal_max_connections", "conn_max: simultaneous connections.",
                                value=snapshot.settings["conn_max"])
        yield GaugeMetricFamily("penbal_backends", "Backends in the table.",
                                value=len(snapshot.backends))
        yield from self._backends(snapshot)
        yield from self._udp(snapshot)
        yield from self._queue(snapshot)
        if snapshot.workers is not None:
            yield GaugeMetricFamily("penbal_workers", "Worker processes relaying now.",
                                    value=len(snapshot.workers.pids))
            yield CounterMetricFamily("penbal_worker_replacements",
                                      "Worker processes that ended and were replaced.",
                                      value=snapshot.workers.replaced)

    def _queue(self, snapshot: Snapshot) -> Iterator[Metric]:
        if snapshot.queue is None:
            return
        figures = asdict(snapshot.queue)
        for key, (gauge, name, doc) in QUEUE_METRICS.items():
            kind = GaugeMetricFamily if gauge else CounterMetricFamily
            yield kind(name, doc, value=figures[key])

    def _udp(self, snapshot: Snapshot) -> Iterator[Metric]:
        if snapshot.udp is None:
            return
        figures = asdict(snapshot.udp)
        for key, (gauge, name, doc) in UDP_METRICS.items():
            kind = GaugeMetricFamily if gauge else CounterMetricFamily
            yield kind(name, doc, value=figures[key])

    def _backends(self, snapshot: Snapshot) -> Iterator[Metric]:
        state = GaugeMetricFamily("penbal_backend_state", "1 for the backend's current state.",
                                  labels=[*LABELS, "state"])
        usable = GaugeMetricFamily("penbal_backend_usable",
                                   "1 if the backend may take new connections now.",
                                   labels=LABELS)
        active = GaugeMetricFamily("penbal_backend_active_connections",
                                   "Connections (UDP: sessions) now open to the backend.",
                                   labels=LABELS)
        blacklisted = GaugeMetricFamily("penbal_backend_blacklisted_seconds",
                                        "Seconds left on the backend's blacklisting.",
                                        labels=LABELS)
        specs = {
            name: GaugeMetricFamily(f"penbal_backend_{name}", doc, labels=LABELS)
            for name, doc in (
                ("weight", "The backend's weight."),
                ("prio", "The backend's priority (lower first)."),
                ("max_connections", "MAXC: the soft connection limit (0 = none)."),
                ("hard_max_connections", "HARD: the hard connection limit (0 = none)."),
            )
        }
        health = GaugeMetricFamily(
            "penbal_backend_health_value",
            "Numeric values the health check read (wsrep_local_state, ...).",
            labels=[*LABELS, "name"],
        )
        counters: dict[str, CounterMetricFamily] = {}
        for backend in snapshot.backends:
            labels = [str(backend.index), backend.address]
            for word in STATE_CLASSES:
                state.add_metric([*labels, word], float(backend.state == word))
            usable.add_metric(labels, float(backend.state in USABLE_STATES))
            active.add_metric(labels, backend.counters.get("active", 0))
            blacklisted.add_metric(labels, backend.blacklisted_for)
            specs["weight"].add_metric(labels, backend.weight)
            specs["prio"].add_metric(labels, backend.prio)
            specs["max_connections"].add_metric(labels, backend.maxc)
            specs["hard_max_connections"].add_metric(labels, backend.hard)
            for key, value in backend.counters.items():
                if key == "active":
                    continue
                name, doc = COUNTERS.get(key, (f"penbal_backend_{key}", f"The backend's {key}."))
                family = counters.setdefault(
                    key, CounterMetricFamily(name, doc, labels=LABELS)
                )
                family.add_metric(labels, value)
            for key, value in sorted(backend.health.items()):
                number = _health_value(value)
                if number is not None:
                    health.add_metric([*labels, key], number)
        yield from (state, usable, active, blacklisted, *specs.values(), *counters.values(),
                    health)


def make_registry(source: Callable[[], Snapshot]) -> CollectorRegistry:
    """A registry of its own (never the global one) holding the snapshot collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(source))
    return registry


class MetricsResource(Resource):
    """C{/metrics}: the Prometheus text format (or OpenMetrics if the scraper asks)."""

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self._registry = registry

    def render_GET(self, request: Request) -> bytes:
        accept = request.getHeader(b"accept") or b""
        encoder, content_type = choose_encoder(accept.decode("latin-1"))
        request.setHeader(b"content-type", content_type.encode("ascii"))
        request.setHeader(b"cache-control", b"no-store")
        body: bytes = encoder(self._registry)
        return body
