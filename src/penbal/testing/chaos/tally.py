# -*- test-case-name: tests.testing.chaos.test_tally -*-
"""
The counts of a chaos run, per fault kind, and the goals they must meet: no stale read, no
balance violation, no failed connect while a node was fit (or became fit within the queue
timeout), every failed transaction on a node the fault hit.  A fault hits the node it was
injected on, and any node the direct reads found unfit while the transaction ran: when a
frozen node merges back, every node may leave the Primary component for a second, and what
was running anywhere fails then (counted apart, in brackets).

Each record goes to the first fault whose window it overlaps: from the fault's injection to a
second after traffic reached every node again (or to the next fault); records outside every
window go to the row C{between faults}.
"""

from __future__ import annotations

import bisect
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from penbal.testing.chaos.bank import TOTAL
from penbal.testing.chaos.fitness import FitTimeline
from penbal.testing.chaos.journal import Commit, Connect, FaultSpan, Transaction

BETWEEN = "between faults"
#: How long after a fault's traffic came back its window stays open.
SETTLE = 1.0
#: A read is stale if it returns a version older than one committed this long before it began.
STALE_AFTER = 1.0


@dataclass
class Row:
    """The counts of one fault kind (or of the time between faults)."""

    kind: str
    faults: int = 0
    connects: int = 0
    connects_failed: int = 0
    connects_failed_while_fit: int = 0
    transactions: int = 0
    failed: int = 0
    failed_elsewhere: int = 0
    failed_collateral: int = 0
    conflicts: int = 0
    stale_reads: int = 0
    balance_violations: int = 0
    recoveries: list[float] = field(default_factory=list)
    not_recovered: int = 0
    examples: list[str] = field(default_factory=list)
    #: Failed connects and transactions by what failed and how (C{"transfer 1047"}).
    errors: dict[str, int] = field(default_factory=dict)

    def note(self, example: str) -> None:
        if len(self.examples) < 5:
            self.examples.append(example)

    def failure(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


@dataclass(frozen=True)
class Window:
    kind: str
    start: float
    end: float
    nodes: frozenset[str]


def windows(faults: Sequence[FaultSpan]) -> list[Window]:
    """Each fault's window, closed at the next fault's injection."""
    ordered = sorted(faults, key=lambda f: f.injected)
    out = []
    for k, fault in enumerate(ordered):
        end = (fault.recovered if fault.recovered is not None else fault.undone) + SETTLE
        if k + 1 < len(ordered):
            end = min(end, ordered[k + 1].injected)
        out.append(Window(fault.kind, fault.injected, end,
                          frozenset(f"node{i}" for i in fault.nodes)))
    return out


class Tally:
    """Counts per fault kind, filled by L{count}."""

    def __init__(self, kinds: Sequence[str], queue_timeout: float, timeline: FitTimeline
                 ) -> None:
        self.rows = {kind: Row(kind) for kind in [*kinds, BETWEEN]}
        self.queue_timeout = queue_timeout
        self.timeline = timeline
        self._windows: list[Window] = []
        self._starts: list[float] = []

    def _windows_over(self, start: float, end: float) -> list[Window]:
        """The windows that overlap C{start}..C{end}: a transaction in flight when a fault
        was injected belongs to that fault too."""
        k = max(0, bisect.bisect_right(self._starts, start) - 1)
        found = []
        for window in self._windows[k:]:
            if window.start > end:
                break
            if window.end >= start:
                found.append(window)
        return found

    def _row(self, windows: Sequence[Window]) -> Row:
        return self.rows[windows[0].kind if windows else BETWEEN]

    def count(self, faults: Sequence[FaultSpan], connects: Sequence[Connect],
              transactions: Sequence[Transaction], commits: Sequence[Commit]) -> Tally:
        self._windows = windows(faults)
        self._starts = [w.start for w in self._windows]
        for fault in faults:
            row = self.rows.setdefault(fault.kind, Row(fault.kind))
            row.faults += 1
            if fault.recovered is None:
                row.not_recovered += 1
            else:
                row.recoveries.append(fault.recovered - fault.undone)
        for connect in connects:
            self._connect(connect)
        required = StaleCheck(commits)
        for transaction in transactions:
            self._transaction(transaction, required)
        return self

    def _connect(self, connect: Connect) -> None:
        row = self._row(self._windows_over(connect.start, connect.end))
        row.connects += 1
        if connect.ok:
            return
        row.connects_failed += 1
        row.failure(f"connect {error_kind(connect.error)}")
        if self.timeline.fit_within(connect.start, self.queue_timeout):
            row.connects_failed_while_fit += 1
            row.note(f"connect at {connect.start:.3f} failed while a node was fit:"
                     f" {connect.error}")

    def _transaction(self, t: Transaction, required: StaleCheck) -> None:
        windows = self._windows_over(t.start, t.end)
        row = self._row(windows)
        row.transactions += 1
        if t.conflict:
            row.conflicts += 1
        elif not t.ok:
            row.failed += 1
            row.failure(f"{t.kind} {error_kind(t.error)}")
            if any(t.node in window.nodes for window in windows):
                pass
            elif self.timeline.seen_unfit(node_index(t.node), t.start, t.end):
                row.failed_collateral += 1
            else:
                row.failed_elsewhere += 1
                row.note(f"{t.kind} on {t.node} at {t.start:.3f} failed off the faulted"
                         f" node: {t.error}")
        elif t.kind == "total" and t.value != TOTAL:
            row.balance_violations += 1
            row.note(f"total {t.value} (not {TOTAL}) on {t.node} at {t.start:.3f}")
        elif t.kind == "version" and t.value is not None:
            wanted = required.at(t.start - STALE_AFTER)
            if t.value < wanted:
                row.stale_reads += 1
                row.note(f"stale read on {t.node} at {t.start:.3f}: version {t.value},"
                         f" {wanted} was committed more than {STALE_AFTER}s before")

    def violations(self) -> list[str]:
        """Every way the run missed a goal, one line each (empty when it met them all)."""
        out = []
        for row in self.rows.values():
            for figure, what in (
                ("stale_reads", "stale reads"),
                ("balance_violations", "balance violations"),
                ("connects_failed_while_fit", "failed connects while a node was fit"),
                ("failed_elsewhere", "failed transactions off the faulted node"),
                ("not_recovered", "faults after which traffic never reached every node"),
            ):
                if getattr(row, figure):
                    out.append(f"{row.kind}: {getattr(row, figure)} {what}"
                               + (f" (e.g. {row.examples[0]})" if row.examples else ""))
        return out


def error_kind(error: str) -> str:
    """The MySQL error number in C{error} (C{"OperationalError: (1047, '...')"}), or its
    exception name."""
    found = re.search(r"\((\d{4}),", error)
    return found.group(1) if found else error.split(":", 1)[0]


def node_index(name: str) -> int:
    """1 for C{node1} (the harness's C{wsrep_node_name}s), 0 if the name is not like that."""
    digits = name.removeprefix("node")
    return int(digits) if digits.isdigit() else 0


class StaleCheck:
    """The highest version acknowledged by a given time."""

    def __init__(self, commits: Sequence[Commit]) -> None:
        ordered = sorted(commits, key=lambda c: c.end)
        self._ends = [c.end for c in ordered]
        self._highest: list[int] = []
        top = 0
        for commit in ordered:
            top = max(top, commit.version)
            self._highest.append(top)

    def at(self, when: float) -> int:
        k = bisect.bisect_right(self._ends, when) - 1
        return self._highest[k] if k >= 0 else 0


def seconds(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.1f} / {max(values):.1f}"


def markdown(tally: Tally) -> str:
    """The per-fault table, in markdown."""
    lines = [
        "| fault | injected | connects failed (while a node was fit) / all"
        " | transactions failed (off the faulted node) [on a node it left unfit] / all"
        " | conflicts | stale reads"
        " | balance violations | back to full traffic, s (median / max) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in tally.rows.values():
        recovery = seconds(row.recoveries)
        if row.not_recovered:
            recovery += f", {row.not_recovered} never"
        lines.append(
            f"| {row.kind} | {row.faults if row.kind != BETWEEN else '-'}"
            f" | {row.connects_failed} ({row.connects_failed_while_fit}) / {row.connects}"
            f" | {row.failed} ({row.failed_elsewhere}) [{row.failed_collateral}]"
            f" / {row.transactions}"
            f" | {row.conflicts} | {row.stale_reads} | {row.balance_violations}"
            f" | {recovery if row.kind != BETWEEN else '-'} |")
    return "\n".join(lines)
