# -*- test-case-name: tests.conformance.test_pen_selection -*-
"""
penbal against Debian's Pen 0.34.1: the same client connections, from the same source
addresses, over the same backends, must reach the same backends with the default (sticky),
-r, -s, -W, prio, -c and the MAXC/HARD limits.  Only where both mean the same: not Pen's -h,
nor failover from a refused backend (Pen closes the client; an unresponsive backend is used
instead), nor client-table ties within one second (Pen's clock counts whole seconds).

Where penbal differs on purpose (docs/policies.rst, "Where penbal differs from Pen, and why"),
L{DocumentedDifferenceTests} runs both and asserts each one's documented outcome, so the
documentation is checked against the real Pen too.
"""

from __future__ import annotations

from collections.abc import Sequence

from twisted.trial.unittest import SynchronousTestCase

from tests.conformance.pen import Penbal, PenProcess, pen_binary
from tests.conformance.replay import (
    CLOSED,
    BlackholeBackend,
    NameBackend,
    counts,
    grouping,
    replay,
)

# Eight clients, returning in an irregular order: 24 connections.
RETURNING = [str(n) for n in (2, 3, 4, 2, 3, 4, 5, 2, 6, 7, 3, 8,
                              9, 5, 2, 4, 6, 7, 8, 9, 2, 3, 5, 9)]


class PenCase(SynchronousTestCase):
    """Runs one sequence through Pen, then through penbal."""

    def setUp(self) -> None:
        pen_binary()  # fail (not skip) at once when pen is missing

    def backends(self, count: int) -> list[NameBackend]:
        started = [NameBackend(f"b{i}") for i in range(count)]
        for backend in started:
            self.addCleanup(backend.stop)
        return started

    def blackhole(self) -> BlackholeBackend:
        hole = BlackholeBackend()
        self.addCleanup(hole.stop)
        return hole

    def each_side(
        self, flags: Sequence[str], specs: Sequence[str], steps: Sequence[str],
        penbal_flags: Sequence[str] | None = None,
    ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """Replay C{steps} through Pen, then through penbal; both outcomes."""
        pen = PenProcess(flags, specs)
        try:
            by_pen = replay(pen.port, steps)
        finally:
            pen.stop()
        penbal = Penbal(flags if penbal_flags is None else penbal_flags, specs)
        try:
            by_penbal = replay(penbal.port, steps)
        finally:
            penbal.stop()
        return by_pen, by_penbal

    def side_by_side(
        self, flags: Sequence[str], specs: Sequence[str], steps: Sequence[str],
        penbal_flags: Sequence[str] | None = None,
    ) -> list[tuple[str, str]]:
        """Replay C{steps} through Pen and through penbal; assert equal outcomes."""
        by_pen, by_penbal = self.each_side(flags, specs, steps, penbal_flags)
        self.assertEqual(grouping(by_penbal), grouping(by_pen))
        self.assertEqual(counts(by_penbal), counts(by_pen))
        self.assertEqual(by_penbal, by_pen)
        return by_pen



class SideBySideTests(PenCase):
    """Each test runs one sequence through Pen, then through penbal, and compares."""

    def test_default_sticky(self) -> None:
        """Default: returning clients go back to their backend, new ones round-robin."""
        specs = [b.address for b in self.backends(3)]
        results = self.side_by_side([], specs, RETURNING)
        # Sticky: each client always met one backend.
        for client in {c for c, _ in results}:
            self.assertEqual(len({b for c, b in results if c == client}), 1)

    def test_roundrobin(self) -> None:
        """-r: every connection takes the next backend, returning or not."""
        specs = [b.address for b in self.backends(3)]
        results = self.side_by_side(["-r"], specs, RETURNING)
        self.assertEqual(counts(results), {"b0": 8, "b1": 8, "b2": 8})

    def test_weight(self) -> None:
        """-W: new clients to the lowest connections/weight, returning ones stick."""
        specs = [f"{b.address}:0:0:{w}" for b, w in zip(self.backends(3), (1, 2, 3), strict=True)]
        steps = [f"{n}+" for n in (2, 3, 4, 5, 6, 7, 8, 2, 3, 9)]
        steps += ["-0", "-3", "-4", "10+", "11+", "2+", "12+", "-1", "13+", "4+", "14+"]
        results = self.side_by_side(["-W"], specs, steps)
        self.assertNotIn(CLOSED, counts(results))

    def test_weight_without_client_table(self) -> None:
        """-r -W: weighted least-connections alone."""
        specs = [f"{b.address}:0:0:{w}" for b, w in zip(self.backends(3), (3, 1, 2), strict=True)]
        steps = [f"{n}+" for n in (2, 3, 4, 5, 6, 2, 2, 7, 8)] + ["-2", "-5", "9+", "2+"]
        self.side_by_side(["-r", "-W"], specs, steps)

    def test_sticky_limits(self) -> None:
        """MAXC stops new clients; a returning client may go on up to HARD."""
        specs = [f"{b.address}:1:3" for b in self.backends(2)]
        steps = ["2+", "3+", "2+", "4+", "3+", "2+", "-2", "5+", "2+"]
        results = self.side_by_side([], specs, steps)
        self.assertEqual(counts(results)[CLOSED], 2)

    def test_stubborn(self) -> None:
        """-s: a client whose first choice does not answer is closed; that backend is then
        blacklisted and skipped."""
        first, third = self.backends(2)
        specs = [first.address, self.blackhole().address, third.address]
        steps = ["2", "3", "4", "5", "6", "3", "4", "7"]
        results = self.side_by_side(["-s", "-t", "1"], specs, steps)
        self.assertEqual(results[0], ("127.0.0.2", CLOSED))
        self.assertEqual(counts(results)[CLOSED], 1)

    def test_failover_from_unresponsive(self) -> None:
        """Without -s, a client whose first choice does not answer goes to the next one."""
        first, third = self.backends(2)
        specs = [first.address, self.blackhole().address, third.address]
        steps = ["2", "3", "4", "5", "6", "2", "3", "4"]
        results = self.side_by_side(["-t", "1"], specs, steps)
        self.assertNotIn(CLOSED, counts(results))

    def test_hard_without_maxc(self) -> None:
        """MAXC 0 is unlimited: a HARD of 1 with it limits no one (Pen: 5 of 5 served)."""
        specs = [f"{b.address}:0:1" for b in self.backends(2)]
        steps = ["2+", "3+", "4+", "5+", "6+", "2+", "3+"]
        results = self.side_by_side([], specs, steps)
        self.assertEqual(counts(results), {"b0": 3, "b1": 4})

    def test_prio(self) -> None:
        """Pen's prio (C{-o prio}) is penbal's --prio: every new client to the lowest prio
        number, returning clients to their backend."""
        specs = [f"{b.address}:0:0:0:{p}" for b, p in zip(self.backends(3), (3, 1, 2), strict=True)]
        results = self.side_by_side(["-o", "prio"], specs, RETURNING[:12], ["--prio"])
        self.assertEqual(counts(results), {"b1": 12})

    def test_prio_among_available(self) -> None:
        """-r with prio: the lowest prio among the available backends.  The best one does not
        answer: the client fails over to the next prio (there, also the next in the table, where
        Pen looks), and once it is blacklisted every client goes to the next prio, which is not
        the first in the table."""
        low, high = self.backends(2)
        specs = [f"{low.address}:0:0:0:3", f"{self.blackhole().address}:0:0:0:1",
                 f"{high.address}:0:0:0:2"]
        steps = ["2", "3", "4", "2", "5"]
        results = self.side_by_side(["-r", "-o", "prio", "-t", "1"], specs, steps,
                                    ["-r", "--prio", "-t", "1"])
        self.assertEqual(counts(results), {"b1": 5})

    def test_client_table_eviction(self) -> None:
        """-c 2: a full client table forgets the client unused for longest.  Uses are more
        than a second apart, so Pen's whole-second times order them as penbal's LRU does."""
        specs = [b.address for b in self.backends(3)]
        steps = ["2", "~1.1", "3", "~1.1", "4", "~1.1", "3", "~1.1", "2", "4"]
        results = self.side_by_side(["-c", "2"], specs, steps)
        self.assertEqual([b for _, b in results], ["b1", "b2", "b0", "b2", "b1", "b2"])


class DocumentedDifferenceTests(PenCase):
    """Where penbal differs from Pen on purpose: each side's outcome is the documented one."""

    def test_tracking_expires_returning_client(self) -> None:
        """-T 1, then 2.2 s idle: Pen sends the client back to its old backend (its entry is
        matched before expiry is checked); penbal has forgotten it and places it anew."""
        specs = [b.address for b in self.backends(3)]
        by_pen, by_penbal = self.each_side(["-T", "1"], specs, ["2", "3", "~2.2", "2"])
        self.assertEqual([b for _, b in by_pen], ["b1", "b2", "b1"])
        self.assertEqual([b for _, b in by_penbal], ["b1", "b2", "b0"])

    def test_prio_failover_order(self) -> None:
        """When the best prio does not answer, Pen fails over in table order (to prio 3 here),
        penbal in prio order (to prio 2); later clients agree on prio 2."""
        low, high = self.backends(2)
        specs = [f"{low.address}:0:0:0:2", f"{self.blackhole().address}:0:0:0:1",
                 f"{high.address}:0:0:0:3"]
        by_pen, by_penbal = self.each_side(["-r", "-o", "prio", "-t", "1"], specs, ["2", "3"],
                                           ["-r", "--prio", "-t", "1"])
        self.assertEqual([b for _, b in by_pen], ["b1", "b0"])
        self.assertEqual([b for _, b in by_penbal], ["b0", "b0"])

    def test_roundrobin_returning_client_and_hard(self) -> None:
        """-r with MAXC 1, HARD 3: Pen still lets a client whose last backend it is exceed
        MAXC; penbal's -r has no returning clients, so MAXC holds for everyone."""
        specs = [f"{b.address}:1:3" for b in self.backends(2)]
        by_pen, by_penbal = self.each_side(["-r"], specs, ["2+", "3+", "2+", "3+"])
        self.assertEqual([b for _, b in by_pen], ["b1", "b0", "b1", "b0"])
        self.assertEqual([b for _, b in by_penbal], ["b1", "b0", CLOSED, CLOSED])
