# -*- test-case-name: tests.test_connlog -*-
"""
One record per relayed connection when it ends (Pen's C{-l}), through C{twisted.logger}.

With C{twist --log-format json} each record is a JSON line with the fields below.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from twisted.logger import Logger

log = Logger(namespace="penbal.connection")


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


class ConnectionLog:
    """Logs each ended connection and keeps the most recent ones for the status page."""

    def __init__(self, keep: int = 100) -> None:
        self.recent: deque[ConnectionRecord] = deque(maxlen=keep)

    def ended(self, record: ConnectionRecord) -> None:
        """Log one ended connection."""
        self.recent.append(record)
        log.info(
            "{client} -> {backend}: {bytes_in} bytes in, {bytes_out} bytes out, "
            "{duration:.3f}s, ended by {ended_by}",
            penbal_event="connection",
            client=record.client,
            backend=record.backend,
            bytes_in=record.bytes_in,
            bytes_out=record.bytes_out,
            started=record.started,
            duration=record.duration,
            ended_by=record.ended_by,
            clean=record.clean,
        )
