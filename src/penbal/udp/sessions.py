# -*- test-case-name: tests.udp.test_sessions -*-
"""
UDP sessions and their table: one entry per client address, least recently used first.

The table never holds more than its capacity (a new client evicts the least recently used
one) and ends a session after C{idle} seconds without traffic, with one timer for the whole
table.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from penbal.backend import Backend
from penbal.interfaces import ClientInfo
from penbal.udp.resend import RecentDatagrams
from penbal.udp.sockets import Address, UpstreamLink, UpstreamReceiver

S = TypeVar("S")

IDLE = "idle"
EVICTED = "evicted"


class _Entry(Generic[S]):
    __slots__ = ("last", "session")

    def __init__(self, session: S, last: float) -> None:
        self.session = session
        self.last = last


class UDPSessionTable(Generic[S]):
    """A bounded LRU table of sessions with idle expiry, driven by an injected clock."""

    def __init__(
        self,
        clock: IReactorTime,
        capacity: int,
        idle: float,
        ended: Callable[[S, str], None],
        slack: float | None = None,
    ) -> None:
        """
        @param ended: called with the session and C{"idle"} or C{"evicted"} once it is out.
        @param slack: how late an idle session may be ended, to batch expiries into few timer
            wake-ups; default a tenth of C{idle}, at most one second.
        """
        if capacity < 1:
            raise ValueError(f"a session table needs a capacity >= 1, got {capacity}")
        if idle <= 0:
            raise ValueError(f"the idle time must be > 0 seconds, got {idle}")
        self._clock = clock
        self.capacity = capacity
        self.idle = idle
        self._ended = ended
        self._slack = min(1.0, idle / 10) if slack is None else slack
        self._entries: OrderedDict[Hashable, _Entry[S]] = OrderedDict()
        self._timer: IDelayedCall | None = None
        self.expired = 0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[S]:
        """The sessions, as L{sessions} gives them."""
        return self.sessions()

    def sessions(self) -> Iterator[S]:
        """The sessions, least recently used first (a snapshot: safe to end them meanwhile)."""
        return iter([entry.session for entry in self._entries.values()])

    def get(self, key: Hashable) -> S | None:
        """The session of C{key}, if any, without counting this as traffic."""
        entry = self._entries.get(key)
        return None if entry is None else entry.session

    def touch(self, key: Hashable) -> None:
        """Traffic on C{key}'s session: it becomes the most recently used and stays alive."""
        entry = self._entries.get(key)
        if entry is not None:
            entry.last = self._clock.seconds()
            self._entries.move_to_end(key)

    def add(self, key: Hashable, session: S) -> None:
        """Start tracking a new session, evicting the least recently used ones if full."""
        if key in self._entries:
            raise KeyError(f"a session for {key!r} already exists")
        while len(self._entries) >= self.capacity:
            _, oldest = self._entries.popitem(last=False)
            self.evicted += 1
            self._ended(oldest.session, EVICTED)
        self._entries[key] = _Entry(session, self._clock.seconds())
        self._arm()

    def remove(self, key: Hashable) -> S | None:
        """Forget C{key}'s session without calling C{ended} (the caller ends it)."""
        entry = self._entries.pop(key, None)
        if not self._entries:
            self._disarm()
        return None if entry is None else entry.session

    def stop(self) -> None:
        """Stop the expiry timer (the service is stopping)."""
        self._disarm()

    def _arm(self) -> None:
        if self._timer is not None or not self._entries:
            return
        oldest = next(iter(self._entries.values()))
        delay = max(0.0, oldest.last + self.idle - self._clock.seconds()) + self._slack
        self._timer = self._clock.callLater(delay, self._sweep)

    def _disarm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _sweep(self) -> None:
        """End every session idle for C{idle} seconds or more, then wait for the next one."""
        self._timer = None
        deadline = self._clock.seconds() - self.idle
        while self._entries:
            key, oldest = next(iter(self._entries.items()))
            if oldest.last > deadline:
                break
            del self._entries[key]
            self.expired += 1
            self._ended(oldest.session, IDLE)
        self._arm()


class UDPSession:
    """
    One client address's traffic through one backend at a time.

    It sits in its backend's C{live} set like a TCP connection: whoever closes those (the
    operator removing a backend, a health check) sets C{ended_by} and calls L{close}.
    """

    __slots__ = (
        "addr",
        "backend",
        "bytes_in",
        "bytes_out",
        "client",
        "end",
        "ended",
        "ended_by",
        "key",
        "last",
        "link",
        "local",
        "recent",
        "started",
        "tried",
        "upstream",
        "waiting",
    )

    def __init__(
        self,
        end: Callable[[UDPSession, str], None],
        key: Hashable,
        addr: Address,
        local: str | None,
        client: ClientInfo,
        started: float,
    ) -> None:
        self.end = end
        self.key = key
        self.addr = addr
        self.local = local
        self.client = client
        self.started = started
        self.backend: Backend | None = None
        self.last: Backend | None = None
        self.link: UpstreamLink | None = None
        self.upstream: UpstreamReceiver | None = None
        self.waiting: list[bytes] | None = None
        #: Unanswered datagrams, to send again if the session moves (L{penbal.udp.resend}).
        self.recent = RecentDatagrams()
        self.tried: set[Backend] = set()
        self.bytes_in = 0
        self.bytes_out = 0
        self.ended: str | None = None
        self.ended_by = ""

    def close(self) -> None:
        """End this session now (its client's next datagram starts a new one)."""
        if self.ended is None:
            self.end(self, self.ended_by or "closed")
