# -*- test-case-name: tests.policies.test_prio -*-
"""
Tests of priority selection (Pen's prio).
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from penbal.policies.prio import PrioPolicy
from tests.policies.fixtures import Driver, spec


class PrioTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.driver = Driver(
            PrioPolicy(),
            [spec(1, prio=2), spec(2, prio=1), spec(3, prio=3), spec(4, prio=1)],
        )

    def test_lowest_prio_first(self) -> None:
        """Every new client goes to the lowest prio number; ties to the lower position."""
        got = [self.driver.connect_index(f"127.0.0.{n}") for n in range(2, 6)]
        self.assertEqual(got, [1, 1, 1, 1])

    def test_failover_order_by_prio(self) -> None:
        """The failover order is by prio, then position."""
        self.assertEqual(self.driver.order("127.0.0.2"), [1, 3, 0, 2])

    def test_unavailable_moves_to_next(self) -> None:
        """When the best backends are blacklisted, the next prio takes over, and back again."""
        self.driver.blacklist(1, seconds=10)
        self.assertEqual(self.driver.connect_index("127.0.0.2"), 3)
        self.driver.blacklist(3, seconds=10)
        self.assertEqual(self.driver.connect_index("127.0.0.3"), 0)
        self.driver.clock.advance(10)
        self.assertEqual(self.driver.connect_index("127.0.0.4"), 1)

    def test_full_backend_skipped(self) -> None:
        """A backend at MAXC gives way to the next prio."""
        driver = Driver(PrioPolicy(), [spec(1, maxc=2, hard=4, prio=1), spec(2, prio=2)])
        got = [driver.connect_index(f"127.0.0.{n}") for n in range(2, 6)]
        self.assertEqual(got, [0, 0, 1, 1])
