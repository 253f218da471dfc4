# -*- test-case-name: tests.test_backend -*-
"""
One backend (Pen's "server"): its spec, its state machine and its counters.

A backend's fitness for new connections is decided here, in one place: the operator's
admin state (up, drain, down), the blacklist after a failed connect, the health check's
verdict, and the connection limits.
"""

from __future__ import annotations

import enum
from collections.abc import Sized
from dataclasses import dataclass, field
from typing import Any

from penbal.address import BackendSpec


class AdminState(enum.Enum):
    """What the operator asked for."""

    UP = "up"
    DRAIN = "drain"
    DOWN = "down"


class Fitness(enum.Enum):
    """What the health check says; C{LAST_RESORT} is used only when no C{FIT} backend is left."""

    FIT = "fit"
    LAST_RESORT = "last-resort"
    UNFIT = "unfit"


@dataclass
class Health:
    """The latest verdict of the health check (always fit when no check runs)."""

    fitness: Fitness = Fitness.FIT
    reason: str = ""
    since: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


#: The counters' names, in the order the status views list them.
COUNTER_NAMES = (
    "active",
    "total",
    "failures",
    "bytes_to_backend",
    "bytes_from_backend",
    "datagrams_to_backend",
    "datagrams_from_backend",
)


class Counters:
    """Figures an operator wants, counted once per backend.

    C{active} is not counted but derived: the size of the backend's live set (its relayed
    connections, or UDP sessions), so that the two can never disagree; plus, in the main
    process of C{--workers N}, the connections the workers reported (L{elsewhere}).
    """

    __slots__ = (
        "_live",
        "bytes_from_backend",
        "bytes_to_backend",
        "datagrams_from_backend",
        "datagrams_to_backend",
        "elsewhere",
        "failures",
        "total",
    )

    def __init__(self, live: Sized = ()) -> None:
        self._live = live
        #: Connections live in other processes (the workers' reports), not in C{live}.
        self.elsewhere = 0
        self.total = 0
        self.failures = 0
        self.bytes_to_backend = 0
        self.bytes_from_backend = 0
        self.datagrams_to_backend = 0  # UDP only; "active" and "total" then count sessions
        self.datagrams_from_backend = 0

    @property
    def active(self) -> int:
        """Connections (UDP: sessions) live on the backend now."""
        return len(self._live) + self.elsewhere

    def figures(self) -> dict[str, int]:
        """Every counter by name (L{COUNTER_NAMES}), C{active} included."""
        return {name: int(getattr(self, name)) for name in COUNTER_NAMES}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Counters):
            return NotImplemented
        return self.figures() == other.figures()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "Counters(" + ", ".join(f"{k}={v}" for k, v in self.figures().items()) + ")"


def settle(connection: object) -> None:
    """Bring a live connection's byte counts (and its backend's counters) up to date.

    On the lean path a plain TCP connection's bytes pass from one transport straight to the
    other (a pipe, see C{penbal.relay.legs.FrontLeg.settle}), counted by the transports and
    added to the connection's and the backend's figures only when asked for: when the
    connection ends, and when a status view or a health of the connection reads them.  Other
    connections count their bytes as they pass and have nothing to settle."""
    settle_now = getattr(connection, "settle", None)
    if settle_now is not None:
        settle_now()


class Backend:
    """A server of the balancer's table, with state and counters."""

    __slots__ = (
        "admin",
        "blacklist_reason",
        "blacklisted_at",
        "blacklisted_until",
        "counters",
        "health",
        "index",
        "live",
        "spec",
    )

    def __init__(self, spec: BackendSpec, index: int = 0) -> None:
        self.spec = spec
        self.index = index
        self.admin = AdminState.UP
        self.blacklisted_until = 0.0
        #: When the blacklisting in force began (a check that started later may lift it).
        self.blacklisted_at = 0.0
        self.blacklist_reason = ""
        self.health = Health()
        #: What is live on this backend now: relayed connections (their front legs) or UDP
        #: sessions; the active count is its size.
        self.live: set[Any] = set()
        self.counters = Counters(self.live)

    def __repr__(self) -> str:
        return f"<Backend {self.index} {self.spec.address} {self.admin.value}>"

    def settle_live(self) -> None:
        """Bring the byte counters up to date with what the live connections relayed: call
        before reading them (see L{settle})."""
        for connection in list(self.live):
            settle(connection)

    @property
    def address(self) -> str:
        """``HOST:PORT`` as written by the user."""
        return self.spec.address

    @property
    def soft_limit(self) -> int:
        """MAXC, 0 for unlimited."""
        return self.spec.maxc

    @property
    def hard_limit(self) -> int:
        """HARD, never below MAXC; 0 for unlimited.

        As in Pen, HARD only raises MAXC for returning clients: with MAXC 0 the backend is
        unlimited and HARD means nothing (Pen's C{try_server} checks HARD only when MAXC is
        set; C{HOST:PORT:0:1} takes any number of clients).
        """
        if self.spec.maxc == 0:
            return 0
        return max(self.spec.hard, self.spec.maxc)

    def below_soft_limit(self) -> bool:
        """True if a new client may be sent here."""
        return self.spec.maxc == 0 or self.counters.active < self.spec.maxc

    def below_hard_limit(self) -> bool:
        """True if a returning (sticky) client may be sent here (L{hard_limit}, unless MAXC
        is 0: then there is no limit, and no need to work the limit out)."""
        return self.spec.maxc == 0 or self.counters.active < self.hard_limit

    def is_blacklisted(self, now: float) -> bool:
        """True while a failed connect keeps this backend out."""
        return now < self.blacklisted_until

    def blacklist(self, now: float, seconds: float, reason: str) -> None:
        """Keep this backend out of new connections for C{seconds}."""
        self.blacklisted_until = now + seconds
        self.blacklisted_at = now
        self.blacklist_reason = reason
        self.counters.failures += 1

    def clear_blacklist(self) -> None:
        """Forget a blacklisting (a health check or operator saw it come back)."""
        self.blacklisted_until = 0.0
        self.blacklist_reason = ""

    def usable(self, now: float) -> bool:
        """True if new connections may go here (limits aside)."""
        return (
            self.admin is AdminState.UP
            and self.health.fitness is not Fitness.UNFIT
            and now >= self.blacklisted_until  # not is_blacklisted(now), without the call
        )

    def state(self, now: float) -> tuple[str, str]:
        """One word for the state, and why: what the status page shows."""
        if self.admin is AdminState.DOWN:
            return "down", "set down by the operator"
        if self.admin is AdminState.DRAIN:
            return "draining", "draining: no new connections"
        if self.health.fitness is Fitness.UNFIT:
            return "unfit", self.health.reason
        if self.is_blacklisted(now):
            left = self.blacklisted_until - now
            return "blacklisted", f"{self.blacklist_reason} ({left:.0f}s left)"
        if self.health.fitness is Fitness.LAST_RESORT:
            return "last-resort", self.health.reason
        if not self.below_soft_limit():
            return "full", f"{self.counters.active} connections, MAXC {self.spec.maxc}"
        return "up", ""
