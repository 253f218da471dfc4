# -*- test-case-name: tests.udp.test_sessions -*-
"""
Tests of L{penbal.udp.sessions}: the bounded LRU session table with idle expiry.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from penbal.udp.sessions import EVICTED, IDLE, UDPSessionTable


class TableTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.ended: list[tuple[str, str]] = []

    def table(self, capacity: int = 3, idle: float = 30.0,
              slack: float | None = 0.0) -> UDPSessionTable[str]:
        return UDPSessionTable(self.clock, capacity, idle,
                               lambda s, why: self.ended.append((s, why)), slack=slack)

    def test_get_returns_added_session(self) -> None:
        """A session added under a client address is found under that address."""
        table = self.table()
        table.add(("127.0.0.2", 1000), "a")
        self.assertEqual(table.get(("127.0.0.2", 1000)), "a")
        self.assertIsNone(table.get(("127.0.0.2", 1001)))
        self.assertEqual(len(table), 1)

    def test_idle_session_expires(self) -> None:
        """A session with no traffic for C{idle} seconds is ended as idle."""
        table = self.table(idle=30)
        table.add("k", "a")
        self.clock.advance(29.9)
        self.assertEqual(self.ended, [])
        self.clock.advance(0.1)
        self.assertEqual(self.ended, [("a", IDLE)])
        self.assertEqual(len(table), 0)
        self.assertEqual(table.expired, 1)

    def test_traffic_keeps_session_alive(self) -> None:
        """Each touch restarts the idle time."""
        table = self.table(idle=30)
        table.add("k", "a")
        for _ in range(5):
            self.clock.advance(20)
            table.touch("k")
        self.assertEqual(self.ended, [])
        self.clock.advance(30)
        self.assertEqual(self.ended, [("a", IDLE)])

    def test_only_idle_sessions_expire(self) -> None:
        """A sweep ends the idle sessions and keeps the active ones."""
        table = self.table(idle=10)
        table.add("a", "a")
        self.clock.advance(5)
        table.add("b", "b")
        self.clock.advance(5)
        self.assertEqual(self.ended, [("a", IDLE)])
        self.assertEqual(list(table.sessions()), ["b"])
        self.clock.advance(5)
        self.assertEqual(self.ended, [("a", IDLE), ("b", IDLE)])

    def test_one_timer_for_the_table(self) -> None:
        """However many sessions, the table keeps a single pending timer."""
        table = self.table(capacity=1000, idle=10)
        for i in range(500):
            table.add(i, str(i))
            self.clock.advance(0.01)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)

    def test_slack_batches_expiry(self) -> None:
        """With slack, sessions idle within the same slack end in one wake-up."""
        table = self.table(capacity=100, idle=10, slack=1.0)
        for i in range(10):
            table.add(i, str(i))
            self.clock.advance(0.1)
        self.clock.advance(10.0)
        self.assertEqual(len(self.ended), 10)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_default_slack_is_bounded(self) -> None:
        """By default a session ends at most one second (or idle/10) late."""
        table = self.table(idle=30, slack=None)
        table.add("k", "a")
        self.clock.advance(30.9)
        self.assertEqual(self.ended, [])
        self.clock.advance(0.2)
        self.assertEqual(self.ended, [("a", IDLE)])

    def test_full_table_evicts_least_recently_used(self) -> None:
        """A new session in a full table evicts the least recently used one."""
        table = self.table(capacity=3)
        for key in "abc":
            table.add(key, key)
            self.clock.advance(1)
        table.touch("a")
        table.add("d", "d")
        self.assertEqual(self.ended, [("b", EVICTED)])
        self.assertEqual(sorted(table.sessions()), ["a", "c", "d"])
        self.assertEqual(table.evicted, 1)

    def test_flood_never_exceeds_capacity(self) -> None:
        """Ten thousand new addresses leave exactly C{capacity} sessions."""
        table = self.table(capacity=100)
        for i in range(10_000):
            table.add(("127.0.0.1", i), str(i))
            self.assertLessEqual(len(table), 100)
        self.assertEqual(len(table), 100)
        self.assertEqual(table.evicted, 9_900)
        self.assertEqual(next(table.sessions()), "9900")

    def test_remove_does_not_call_ended(self) -> None:
        """Removing a session hands it back without the C{ended} call."""
        table = self.table()
        table.add("k", "a")
        self.assertEqual(table.remove("k"), "a")
        self.assertIsNone(table.remove("k"))
        self.clock.advance(100)
        self.assertEqual(self.ended, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_add_twice_refused(self) -> None:
        """A second session for one address is a programming error."""
        table = self.table()
        table.add("k", "a")
        self.assertRaises(KeyError, table.add, "k", "b")

    def test_stop_cancels_timer(self) -> None:
        """After stop no expiry runs."""
        table = self.table()
        table.add("k", "a")
        table.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_bad_parameters_refused(self) -> None:
        """A capacity below 1 or an idle time of 0 is refused."""
        self.assertRaises(ValueError, self.table, capacity=0)
        self.assertRaises(ValueError, self.table, idle=0)
