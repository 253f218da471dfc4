"""
Tests for L{penbal.testing.chaos.tally}: which fault each record goes to, and what breaks
a goal.
"""

from __future__ import annotations

from collections.abc import Sequence

from twisted.trial.unittest import SynchronousTestCase

from penbal.testing.chaos.bank import TOTAL
from penbal.testing.chaos.fitness import FitTimeline
from penbal.testing.chaos.journal import Commit, Connect, FaultSpan, Transaction
from penbal.testing.chaos.tally import BETWEEN, StaleCheck, Tally, error_kind, markdown

FAULT = FaultSpan("freeze", (3,), injected=100.0, undone=110.0, recovered=112.0)


def tally(connects: Sequence[Connect] = (), transactions: Sequence[Transaction] = (),
          commits: Sequence[Commit] = (), timeline: FitTimeline | None = None,
          queue: float = 0.0) -> Tally:
    return Tally(["freeze"], queue, timeline or FitTimeline({})).count(
        [FAULT], connects, transactions, commits)


class WindowTests(SynchronousTestCase):
    def test_fault_window(self) -> None:
        """A record goes to the fault from its injection to a second after traffic came
        back; before and after, to the time between faults."""
        t = tally(transactions=[Transaction("total", at, at + 0.01, "node1", True, TOTAL)
                                for at in (99.0, 100.5, 112.9, 113.5)])
        self.assertEqual(t.rows["freeze"].transactions, 2)
        self.assertEqual(t.rows[BETWEEN].transactions, 2)
        self.assertEqual(t.rows["freeze"].recoveries, [2.0])
        self.assertEqual(t.rows["freeze"].faults, 1)

    def test_in_flight_at_injection(self) -> None:
        """A transaction that began just before the fault and failed in it belongs to it."""
        failed = Transaction("transfer", 99.9, 101.0, "node3", False, error="lost")
        t = tally(transactions=[failed])
        self.assertEqual((t.rows["freeze"].failed, t.rows["freeze"].failed_elsewhere), (1, 0))
        self.assertEqual(t.violations(), [])


class GoalTests(SynchronousTestCase):
    def test_failed_elsewhere(self) -> None:
        """A failed transaction on a node the fault did not hit, or between faults, misses
        the goal while the direct reads found that node fit; a certification conflict does
        not."""
        fit = FitTimeline({}, seen={i: [(0.0, 200.0)] for i in (1, 2, 3)})
        t = tally(timeline=fit, transactions=[
            Transaction("transfer", 101.0, 101.1, "node1", False, error="lost"),
            Transaction("transfer", 120.0, 120.1, "node3", False, error="lost"),
            Transaction("transfer", 101.0, 101.1, "node2", False, conflict=True),
        ])
        self.assertEqual(t.rows["freeze"].failed_elsewhere, 1)
        self.assertEqual(t.rows["freeze"].conflicts, 1)
        self.assertEqual(t.rows[BETWEEN].failed_elsewhere, 1)
        self.assertEqual(t.rows["freeze"].errors, {"transfer lost": 1})
        self.assertEqual(len(t.violations()), 2)

    def test_collateral(self) -> None:
        """A failure on another node is the fault's doing if the direct reads found that node
        unfit while the transaction ran (the whole cluster non-Primary for a moment)."""
        timeline = FitTimeline({}, seen={1: [(0.0, 104.0)], 2: [(0.0, 200.0)]})
        t = tally(timeline=timeline, transactions=[
            Transaction("transfer", 103.5, 104.5, "node1", False, error="1180"),
            Transaction("transfer", 103.5, 104.5, "node2", False, error="lost"),
        ])
        self.assertEqual((t.rows["freeze"].failed, t.rows["freeze"].failed_collateral,
                          t.rows["freeze"].failed_elsewhere), (2, 1, 1))

    def test_balance(self) -> None:
        """A total other than the opening one is a violation."""
        t = tally(transactions=[Transaction("total", 101.0, 101.1, "node1", True, TOTAL - 5)])
        self.assertEqual(t.rows["freeze"].balance_violations, 1)
        self.assertIn("balance violations", t.violations()[0])

    def test_stale_read(self) -> None:
        """A read older than a version committed more than a second before it began is
        stale; one committed less than a second before may still be on its way."""
        commits = [Commit(1, 100.0), Commit(2, 101.0), Commit(3, 101.8)]
        t = tally(commits=commits, transactions=[
            Transaction("version", 102.5, 102.6, "node2", True, 2),
            Transaction("version", 102.5, 102.6, "node2", True, 1),
        ])
        self.assertEqual(t.rows["freeze"].stale_reads, 1)

    def test_error_kind(self) -> None:
        """Failures are grouped by MySQL error number, else by exception name."""
        self.assertEqual(error_kind("OperationalError: (1047, 'WSREP has not yet prepared')"),
                         "1047")
        self.assertEqual(error_kind("TimeoutError: timed out"), "TimeoutError")

    def test_stale_check(self) -> None:
        check = StaleCheck([Commit(2, 5.0), Commit(1, 3.0), Commit(3, 8.0)])
        self.assertEqual([check.at(w) for w in (2.0, 3.0, 6.0, 9.0)], [0, 1, 2, 3])

    def test_failed_connects(self) -> None:
        """A failed connect misses the goal only if a node was fit when it began or became
        fit within the queue timeout."""
        timeline = FitTimeline({1: [(105.0, 120.0)]})
        connects = [Connect(101.0, 101.1, None, "no backend"),
                    Connect(104.0, 104.1, None, "no backend"),
                    Connect(106.0, 106.1, None, "no backend"),
                    Connect(106.0, 106.1, "node1")]
        without = tally(connects=connects, timeline=timeline)
        self.assertEqual((without.rows["freeze"].connects_failed,
                          without.rows["freeze"].connects_failed_while_fit), (3, 1))
        queued = tally(connects=connects, timeline=timeline, queue=2.0)
        self.assertEqual(queued.rows["freeze"].connects_failed_while_fit, 2)

    def test_not_recovered(self) -> None:
        """A fault after which traffic never reached every node misses a goal."""
        t = Tally(["kill9"], 0.0, FitTimeline({})).count(
            [FaultSpan("kill9", (1,), 10.0, 20.0, None)], [], [], [])
        self.assertEqual(t.rows["kill9"].not_recovered, 1)
        self.assertEqual(len(t.violations()), 1)

    def test_markdown(self) -> None:
        """One line per kind plus the time between faults, under a header."""
        table = markdown(tally()).splitlines()
        self.assertEqual(len(table), 4)
        self.assertTrue(table[2].startswith("| freeze | 1 | 0 (0) / 0 |"))
        self.assertTrue(table[3].startswith(f"| {BETWEEN} | - |"))
