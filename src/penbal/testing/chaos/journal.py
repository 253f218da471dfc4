# -*- test-case-name: tests.testing.chaos.test_tally -*-
"""
What a chaos run records, as it happens: every client connect, every transaction, every
version the writer committed and every fault, each with its times (wall-clock seconds, the
clock penbal's own log uses, so that its health events line up with the clients').
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Connect:
    """A client connecting through the balancer and asking which node it reached."""

    start: float
    end: float
    node: str | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.node is not None


@dataclass(frozen=True, slots=True)
class Transaction:
    """
    One unit of client work on an open connection: C{transfer} (a money transfer between two
    accounts), C{total} (the sum of every balance) or C{version} (read the version row).
    C{value} is what a read returned; C{conflict} marks a certification conflict (MySQL error
    1213), which multi-master writes cause now and then and which is no failure.
    """

    kind: str
    start: float
    end: float
    node: str
    ok: bool
    value: int | None = None
    conflict: bool = False
    error: str = ""


@dataclass(frozen=True, slots=True)
class Commit:
    """The version writer's commit of C{version}, acknowledged at C{end}."""

    version: int
    end: float


@dataclass(slots=True)
class FaultSpan:
    """
    One fault: its kind, the nodes it hits, when it was injected, when the harness had undone
    it (every node Synced in one configuration again) and when new transactions through the
    balancer had reached every node after that (None if they did not within the bound).
    """

    kind: str
    nodes: tuple[int, ...]
    injected: float
    undone: float = 0.0
    recovered: float | None = None
    note: str = ""


@dataclass
class Journal:
    """Everything recorded so far; the clients and the fault loop write from their threads."""

    connects: list[Connect] = field(default_factory=list)
    transactions: list[Transaction] = field(default_factory=list)
    commits: list[Commit] = field(default_factory=list)
    faults: list[FaultSpan] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def connect(self, record: Connect) -> None:
        with self._lock:
            self.connects.append(record)

    def transaction(self, record: Transaction) -> None:
        with self._lock:
            self.transactions.append(record)

    def commit(self, record: Commit) -> None:
        with self._lock:
            self.commits.append(record)

    def fault(self, record: FaultSpan) -> None:
        with self._lock:
            self.faults.append(record)

    def first_served(self, since: float) -> dict[str, float]:
        """
        For each node, the end of its first good transaction begun at or after C{since}.
        Transactions are appended as they end, so the scan stops a second before C{since}.
        """
        first: dict[str, float] = {}
        with self._lock:
            for t in reversed(self.transactions):
                if t.end < since - 1.0:
                    break
                if t.ok and t.start >= since and (t.node not in first or t.end < first[t.node]):
                    first[t.node] = t.end
        return first
