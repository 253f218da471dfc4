# -*- test-case-name: tests.edges.test_hygiene -*-
"""
Connection hygiene: close connections idle both ways (C{--idle-timeout}) and cap the
connections one client address may hold (C{--max-per-client}).

The idle check adds no work per chunk: it samples the byte counters the relay keeps anyway,
four times per timeout, so a connection silent both ways is closed after between C{SEC} and
C{1.25 * SEC} seconds of silence.
"""

from __future__ import annotations

from typing import Protocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime

SAMPLES_PER_TIMEOUT = 4


class Watched(Protocol):
    """What the idle watch needs from a relayed connection (a L{penbal.relay.legs.FrontLeg})."""

    bytes_in: int
    bytes_out: int
    closed: bool
    ended_by: str

    def close(self) -> None: ...

    def settle(self) -> None:
        """Bring the byte counters up to date (the lean path counts piped bytes lazily)."""


class IdleWatch:
    """Closes one connection once its byte counters stop moving for C{timeout} seconds."""

    def __init__(self, clock: IReactorTime, timeout: float, connection: Watched) -> None:
        self._clock = clock
        self._step = timeout / SAMPLES_PER_TIMEOUT
        self._timeout = timeout
        self._connection = connection
        self._seen = (connection.bytes_in, connection.bytes_out)
        self._quiet = 0
        self._call: IDelayedCall | None = clock.callLater(self._step, self._sample)

    def _sample(self) -> None:
        self._call = None
        connection = self._connection
        if connection.closed:
            return
        connection.settle()
        now = (connection.bytes_in, connection.bytes_out)
        if now != self._seen:
            self._seen = now
            self._quiet = 0
        else:
            self._quiet += 1
            if self._quiet >= SAMPLES_PER_TIMEOUT:
                connection.ended_by = f"idle timeout ({self._timeout:g}s)"
                connection.close()
                return
        self._call = self._clock.callLater(self._step, self._sample)

    def stop(self) -> None:
        """The connection ended: stop sampling."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None


class ClientCap:
    """Counts live connections per client address and refuses those over the cap."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.live: dict[str, int] = {}

    def admit(self, host: str) -> bool:
        """Count one more connection from C{host}, or refuse it (and count nothing)."""
        count = self.live.get(host, 0)
        if count >= self.limit:
            return False
        self.live[host] = count + 1
        return True

    def release(self, host: str) -> None:
        """One admitted connection from C{host} ended."""
        count = self.live.get(host, 0) - 1
        if count > 0:
            self.live[host] = count
        else:
            self.live.pop(host, None)
