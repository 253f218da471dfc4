# -*- test-case-name: tests.test_connlog -*-
"""
One record per relayed connection (TCP) or session (UDP) when it ends: kept for the status
page, and written to the access log (C{--access-log}, Pen's C{-l}) when there is one.

Per-connection records are not events: the event log keeps health changes, errors and
control actions (see L{penbal.accesslog}).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(slots=True)
class ConnectionRecord:
    """What happened to one client connection."""

    client: str
    backend: str
    bytes_in: int
    bytes_out: int
    started: float
    duration: float
    ended_by: str
    clean: bool


class RecordSink(Protocol):
    """Where ended connections are written (the access log, L{penbal.accesslog.AccessLog})."""

    def write(self, record: ConnectionRecord) -> None:
        """Write one ended connection."""

    def reopen(self) -> None:
        """Open the file again (logrotate moved it)."""


class ConnectionLog:
    """Keeps the most recent ended connections for the status page; writes each one to the
    access log, if any."""

    def __init__(self, keep: int = 100, access: RecordSink | None = None) -> None:
        self.recent: deque[ConnectionRecord] = deque(maxlen=keep)
        self.access = access
        #: Connections that ended here so far (see L{since}).
        self.ended_count = 0
        #: Told of every reopen, after this process's own access log: the worker processes of
        #: C{--workers N}, which write the records of the connections they relay.
        self.reopen_followers: list[Callable[[], object]] = []

    def ended(self, record: ConnectionRecord) -> None:
        """One connection ended."""
        self.recent.append(record)
        self.ended_count += 1
        if self.access is not None:
            self.access.write(record)

    def since(self, count: int) -> list[ConnectionRecord]:
        """The records of the connections that ended after the first C{count}, oldest first,
        as far as L{recent} still holds them."""
        new = min(self.ended_count - count, len(self.recent))
        return list(self.recent)[len(self.recent) - new:] if new > 0 else []

    def remember(self, record: ConnectionRecord) -> None:
        """Keep a connection that ended elsewhere for the status views (a worker of
        C{--workers N} relayed it and wrote it to the access log itself)."""
        self.recent.append(record)

    def reopen(self) -> None:
        """SIGHUP or SIGUSR1: reopen the access log (logrotate moved it), and have every
        follower reopen its own."""
        if self.access is not None:
            self.access.reopen()
        for follower in self.reopen_followers:
            follower()
