# -*- test-case-name: tests.status.test_views -*-
"""
The human status page (C{GET /}, and the control port's C{status}, which is HTML in Pen):
backends with their state and why, connections, bytes, health and wsrep values, recent clients.
In UDP mode connections are sessions, the backends have datagram columns and the front side's
figures (datagrams dropped, sessions moved...) have a table of their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import Any

from twisted.web.resource import Resource
from twisted.web.server import Request
from twisted.web.template import Tag, flattenString, tags

from penbal.status.snapshot import BackendStatus, Snapshot
from penbal.status.text import workers_line

REFRESH_SECONDS = 5
MAX_ROWS = 200

STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.15em; margin-top: 1.5em; }
p.summary { color: #444; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #eef; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
td.state { font-weight: bold; }
.state-up { background: #c8f0c8; }
.state-full, .state-last-resort { background: #f6efb0; }
.state-draining, .state-removing { background: #cfe0f8; }
.state-blacklisted, .state-unfit, .state-down { background: #f6c4c4; }
ul.health { margin: 0; padding-left: 1em; }
"""

STATE_CLASSES = ("up", "full", "last-resort", "draining", "removing", "blacklisted", "unfit",
                 "down")


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def _table(table_id: str, headings: Iterable[str], rows: list[Tag], empty: str) -> Tag:
    head = tags.tr(*(tags.th(heading) for heading in headings))
    if not rows:
        return tags.p(empty, class_="empty", id=table_id)
    return tags.table(tags.thead(head), tags.tbody(*rows[:MAX_ROWS]), id=table_id)


def _number(value: Any) -> Tag:
    return tags.td(str(value), class_="number")


def _health(backend: BackendStatus) -> Tag:
    lines: list[Tag] = []
    if backend.fitness != "fit" or backend.health_reason:
        lines.append(tags.li(f"{backend.fitness}: {backend.health_reason}".rstrip(": ")))
    lines.extend(
        tags.li(tags.code(key), f" = {value}") for key, value in sorted(backend.health.items())
    )
    return tags.td(tags.ul(*lines, class_="health") if lines else "")


BACKEND_HEADINGS = ("#", "address", "state", "why", "conn", "total", "failures", "bytes sent",
                    "bytes received", "max", "hard", "weight", "prio", "health")
UDP_BACKEND_HEADINGS = ("#", "address", "state", "why", "sessions", "total", "failures",
                        "datagrams sent", "datagrams received", "bytes sent", "bytes received",
                        "max", "hard", "weight", "prio", "health")
UDP_FIGURE_NAMES = {
    "sessions_active": "sessions now",
    "sessions_max": "most sessions (-c)",
    "sessions": "sessions started",
    "datagrams_in": "datagrams from clients",
    "datagrams_out": "datagrams to clients",
    "moved": "sessions moved to another backend",
    "resent": "datagrams sent again after a move",
    "evicted": "sessions evicted (table full)",
    "expired": "sessions ended idle",
    "no_backend": "datagrams dropped: no backend",
    "dropped": "datagrams dropped: buffer full or waiting for a name",
    "denied": "datagrams denied by the client ACL",
}


def _backend_row(backend: BackendStatus, udp: bool = False) -> Tag:
    counters = backend.counters
    state = backend.state if backend.state in STATE_CLASSES else "other"
    datagrams = (
        [_number(counters.get("datagrams_to_backend", 0)),
         _number(counters.get("datagrams_from_backend", 0))] if udp else []
    )
    return tags.tr(
        _number(backend.index),
        tags.td(backend.address),
        tags.td(backend.state, class_=f"state state-{state}"),
        tags.td(backend.reason),
        _number(counters.get("active", 0)),
        _number(counters.get("total", 0)),
        _number(counters.get("failures", 0)),
        *datagrams,
        _number(counters.get("bytes_to_backend", 0)),
        _number(counters.get("bytes_from_backend", 0)),
        _number(backend.maxc),
        _number(backend.hard),
        _number(backend.weight),
        _number(backend.prio),
        _health(backend),
        class_="backend",
    )


def page(snapshot: Snapshot) -> Tag:
    """The page as a tag tree."""
    uptime = max(0.0, snapshot.time - snapshot.started)
    udp = snapshot.udp is not None
    backends = [_backend_row(backend, udp) for backend in snapshot.backends]
    live_word, accepted_word = ("sessions", "started") if udp else ("connections", "accepted")
    live = [
        tags.tr(tags.td(c.client), tags.td(c.backend), _number(c.bytes_in), _number(c.bytes_out),
                _number(f"{c.age:.1f}"))
        for c in snapshot.connections
    ]
    recent = [
        tags.tr(tags.td(_when(r.started)), tags.td(r.client), tags.td(r.backend),
                _number(r.bytes_in), _number(r.bytes_out), _number(f"{r.duration:.3f}"),
                tags.td(r.ended_by))
        for r in snapshot.recent
    ]
    settings = [
        tags.tr(tags.th(str(key)), tags.td("" if value is None else str(value)))
        for key, value in [*snapshot.settings.items(), *snapshot.endpoints.items()]
    ]
    return tags.html(
        tags.head(
            tags.meta(charset="utf-8"),
            tags.meta(content=str(REFRESH_SECONDS), **{"http-equiv": "refresh"}),
            tags.title("penbal status"),
            tags.style(STYLE),
        ),
        tags.body(
            tags.h1("penbal status"),
            tags.p(
                f"penbal {snapshot.version}, pid {snapshot.pid}, up {uptime:.0f} s at "
                f"{_when(snapshot.time)}. Policy {snapshot.policy} ({snapshot.mode}). "
                f"{snapshot.connections_active} {live_word} now, "
                f"{snapshot.connections_accepted} {accepted_word}.",
                class_="summary",
            ),
            tags.h2(f"Backends ({len(backends)})"),
            _table(
                "backends",
                UDP_BACKEND_HEADINGS if udp else BACKEND_HEADINGS,
                backends,
                "No backends.",
            ),
            *_udp_section(snapshot),
            *_queue_section(snapshot),
            *_workers_section(snapshot),
            tags.h2(f"Live {live_word} ({snapshot.connections_active})"),
            _table("connections", ("client", "backend", "bytes in", "bytes out", "age (s)"),
                   live, f"No live {live_word}."),
            tags.h2(f"Recent clients ({len(recent)})"),
            _table("recent", ("started", "client", "backend", "bytes in", "bytes out",
                              "duration (s)", "ended by"), recent, "No connection has ended yet."),
            tags.h2("Settings"),
            tags.table(tags.tbody(*settings), id="settings"),
        ),
        lang="en",
    )


def _workers_section(snapshot: Snapshot) -> list[Tag]:
    """With --workers, the processes, and what of their connections the page shows."""
    if snapshot.workers is None:
        return []
    return [tags.h2("Workers"),
            tags.p(workers_line(snapshot.workers) + ". Each worker lists up to 250 of its "
                   "live connections below, as of its last report (every 0.1 s); recent "
                   "clients stay in the workers' logs.", id="workers")]


def _udp_section(snapshot: Snapshot) -> list[Tag]:
    """In UDP mode, the front side's figures: what no backend's counters show."""
    if snapshot.udp is None:
        return []
    figures = asdict(snapshot.udp)
    rows = [tags.tr(tags.th(UDP_FIGURE_NAMES.get(key, key)), _number(value), tags.td(key))
            for key, value in figures.items()]
    return [tags.h2("UDP"), tags.table(tags.tbody(*rows), id="udp")]


def _queue_section(snapshot: Snapshot) -> list[Tag]:
    """With --queue-timeout, the clients held while no backend is usable."""
    queue = snapshot.queue
    if queue is None:
        return []
    rows = [tags.tr(tags.th(name), _number(value), tags.td(key)) for name, value, key in (
        ("waiting now", queue.waiting, "waiting"),
        ("held since start", queue.held, "held"),
        ("then served", queue.served, "served"),
        ("then timed out", queue.expired, "expired"),
        ("refused (queue full)", queue.refused, "refused"),
        ("most at once (--queue-max)", queue.max, "max"),
        ("longest wait, s (--queue-timeout)", f"{queue.timeout:g}", "timeout"),
    )]
    return [tags.h2(f"Wait queue ({queue.waiting})"), tags.table(tags.tbody(*rows), id="queue")]


def render_page(snapshot: Snapshot) -> bytes:
    """The page as HTML bytes."""
    result: list[bytes] = []
    flattenString(None, page(snapshot)).addCallback(result.append)
    return b"<!DOCTYPE html>\n" + result[0] + b"\n"


class PageResource(Resource):
    """C{/}: read-only."""

    isLeaf = True

    def __init__(self, source: Callable[[], Snapshot]) -> None:
        super().__init__()
        self._source = source

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        return render_page(self._source())
