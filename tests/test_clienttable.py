# -*- test-case-name: tests.test_clienttable -*-
"""
Tests of the client table behind sticky selection (Pen's -c and -T).
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from penbal.clienttable import ClientTable


class ClientTableTests(SynchronousTestCase):
    def test_remembers_backend(self) -> None:
        """A client's last backend is found again."""
        table = ClientTable(Clock())
        table.remember("127.0.9.1", "db1:3306")
        self.assertEqual(table.lookup("127.0.9.1"), "db1:3306")
        self.assertIsNone(table.lookup("127.0.9.2"))

    def test_remember_replaces(self) -> None:
        """Recording a client again replaces its backend, without a second entry."""
        table = ClientTable(Clock())
        table.remember("127.0.9.1", "db1:3306")
        table.remember("127.0.9.1", "db2:3306")
        self.assertEqual(table.lookup("127.0.9.1"), "db2:3306")
        self.assertEqual(len(table), 1)

    def test_least_recently_used_evicted(self) -> None:
        """When the table is full, the client unused for longest is forgotten."""
        table = ClientTable(Clock(), size=2)
        table.remember("a", "x")
        table.remember("b", "y")
        table.remember("c", "z")
        self.assertIsNone(table.lookup("a"))
        self.assertEqual((table.lookup("b"), table.lookup("c")), ("y", "z"))

    def test_lru_exact_within_one_clock_second(self) -> None:
        """Eviction follows the exact order of use, even for uses at the same clock time
        (Pen rounds to whole seconds and, on a tie, evicts the lowest table slot)."""
        table = ClientTable(Clock(), size=2)
        table.remember("a", "x")
        table.remember("b", "y")
        table.lookup("a")
        table.remember("c", "z")
        self.assertEqual(table.items(), [("a", "x"), ("c", "z")])

    def test_returning_client_expires_too(self) -> None:
        """A returning client past the tracking time is new again, even when nothing else needs
        its slot (Pen 0.34.1 would still send it back: see docs/policies.rst)."""
        clock = Clock()
        table = ClientTable(clock, size=2048, tracking=1)
        table.remember("a", "x")
        clock.advance(2)
        self.assertIsNone(table.lookup("a"))
        self.assertNotIn("a", table)

    def test_lookup_counts_as_use(self) -> None:
        """A returning client becomes the most recent, so another one is evicted instead."""
        table = ClientTable(Clock(), size=2)
        table.remember("a", "x")
        table.remember("b", "y")
        table.lookup("a")
        table.remember("c", "z")
        self.assertEqual(table.lookup("a"), "x")
        self.assertIsNone(table.lookup("b"))

    def test_peek_does_not_count_as_use(self) -> None:
        """peek() reads an entry without making it recent."""
        table = ClientTable(Clock(), size=2)
        table.remember("a", "x")
        table.remember("b", "y")
        self.assertEqual(table.peek("a"), "x")
        table.remember("c", "z")
        self.assertNotIn("a", table)

    def test_never_expires_by_default(self) -> None:
        """With tracking 0 (Pen's default) entries never expire."""
        clock = Clock()
        table = ClientTable(clock)
        table.remember("a", "x")
        clock.advance(10**9)
        self.assertEqual(table.lookup("a"), "x")

    def test_expires_after_tracking_time(self) -> None:
        """An entry unused for longer than the tracking time is gone."""
        clock = Clock()
        table = ClientTable(clock, tracking=10)
        table.remember("a", "x")
        clock.advance(10)
        self.assertEqual(table.peek("a"), "x")
        clock.advance(0.5)
        self.assertIsNone(table.lookup("a"))
        self.assertEqual(len(table), 0)

    def test_use_restarts_expiry(self) -> None:
        """Each connection of a client restarts its tracking time."""
        clock = Clock()
        table = ClientTable(clock, tracking=10)
        table.remember("a", "x")
        for _ in range(5):
            clock.advance(8)
            self.assertEqual(table.lookup("a"), "x")

    def test_expired_entries_make_room_first(self) -> None:
        """A full table drops expired entries before evicting a live one."""
        clock = Clock()
        table = ClientTable(clock, size=2, tracking=10)
        table.remember("old", "x")
        clock.advance(5)
        table.remember("live", "y")
        clock.advance(6)
        table.remember("new", "z")
        self.assertEqual(table.items(), [("live", "y"), ("new", "z")])

    def test_forget(self) -> None:
        """forget() drops one client."""
        table = ClientTable(Clock())
        table.remember("a", "x")
        table.forget("a")
        table.forget("never-seen")
        self.assertNotIn("a", table)

    def test_bad_size_refused(self) -> None:
        """A table of no entries, or a negative tracking time, is refused with a clear error."""
        self.assertRaises(ValueError, ClientTable, Clock(), 0)
        self.assertRaises(ValueError, ClientTable, Clock(), 10, -1)
