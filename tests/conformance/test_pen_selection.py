# -*- test-case-name: tests.conformance.test_pen_selection -*-
"""
penbal against Debian's Pen 0.34.1: the same client connections, from the same source
addresses, over the same backends, must reach the same backends with the default (sticky),
-r, -s and -W.  Only where Pen is right: not its -h (see docs/policies.rst), nor failover from
a refused backend (Pen closes the client); an unresponsive backend is used instead.
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


class SideBySideTests(SynchronousTestCase):
    """Each test runs one sequence through Pen, then through penbal, and compares."""

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

    def side_by_side(
        self, flags: Sequence[str], specs: Sequence[str], steps: Sequence[str],
        penbal_flags: Sequence[str] | None = None,
    ) -> list[tuple[str, str]]:
        """Replay C{steps} through Pen and through penbal; assert equal outcomes."""
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
        self.assertEqual(grouping(by_penbal), grouping(by_pen))
        self.assertEqual(counts(by_penbal), counts(by_pen))
        self.assertEqual(by_penbal, by_pen)
        return by_pen

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
