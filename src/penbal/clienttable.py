# -*- test-case-name: tests.test_clienttable -*-
"""
Pen's client table: which backend each client IP used last, for sticky selection.

A bounded, least-recently-used map from client host to backend address (``HOST:PORT``), whose
entries may expire a fixed time after their last use (Pen's C{-c} and C{-T}).

Two deliberate differences from Pen 0.34.1 (docs/policies.rst says why): eviction is exact LRU
(Pen compares last uses in whole seconds, ties to the lowest slot), and a returning client's own
entry expires after C{tracking} seconds (Pen finds it before checking expiry, so -T there only
frees other clients' slots).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from twisted.internet.interfaces import IReactorTime


@dataclass
class _Entry:
    backend: str
    last: float


class ClientTable:
    """Remember the last backend of up to C{size} clients, for C{tracking} seconds (0: forever).

    Recording a client, or looking up one that is there, makes it the most recently used;
    when the table is full the least recently used client is forgotten.
    """

    def __init__(self, clock: IReactorTime, size: int = 2048, tracking: float = 0.0) -> None:
        if size < 1:
            raise ValueError(f"client table size must be at least 1, got {size}")
        if tracking < 0:
            raise ValueError(f"client tracking time must be >= 0, got {tracking}")
        self._clock = clock
        self.size = size
        self.tracking = tracking
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, host: object) -> bool:
        return isinstance(host, str) and self.peek(host) is not None

    def _expired(self, entry: _Entry, now: float) -> bool:
        return self.tracking > 0 and entry.last + self.tracking < now

    def peek(self, host: str) -> str | None:
        """The backend address remembered for C{host}, without touching its recency."""
        entry = self._entries.get(host)
        if entry is None or self._expired(entry, self._clock.seconds()):
            return None
        return entry.backend

    def lookup(self, host: str) -> str | None:
        """The backend address remembered for C{host} (a returning client), or None.

        A hit counts as a use: the entry becomes the most recent and its expiry restarts.
        An expired entry is dropped.
        """
        entry = self._entries.get(host)
        if entry is None:
            return None
        now = self._clock.seconds()
        if self._expired(entry, now):
            del self._entries[host]
            return None
        entry.last = now
        self._entries.move_to_end(host)
        return entry.backend

    def remember(self, host: str, backend: str) -> None:
        """Record that C{host} now uses C{backend}, evicting the least recently used if full."""
        now = self._clock.seconds()
        entry = self._entries.get(host)
        if entry is not None:
            entry.backend = backend
            entry.last = now
            self._entries.move_to_end(host)
            return
        self._drop_expired(now)
        while len(self._entries) >= self.size:
            self._entries.popitem(last=False)
        self._entries[host] = _Entry(backend, now)

    def forget(self, host: str) -> None:
        """Drop C{host}'s entry, if any."""
        self._entries.pop(host, None)

    def _drop_expired(self, now: float) -> None:
        """Expired entries are the least recently used ones: drop them from the old end."""
        while self._entries:
            oldest = next(iter(self._entries.values()))
            if not self._expired(oldest, now):
                return
            self._entries.popitem(last=False)

    def items(self) -> list[tuple[str, str]]:
        """Live (client, backend address) pairs, least recently used first."""
        now = self._clock.seconds()
        return [(h, e.backend) for h, e in self._entries.items() if not self._expired(e, now)]
