# -*- test-case-name: tests.policies.test_leastconn -*-
"""
Tests of least-connections selection.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from penbal.policies.leastconn import LeastConnPolicy
from tests.occupancy import occupy
from tests.policies.fixtures import Driver, spec


class LeastConnTests(SynchronousTestCase):
    def test_fewest_active_first(self) -> None:
        """The backend with the fewest active connections is chosen, weights ignored."""
        driver = Driver(LeastConnPolicy(), [spec(1, weight=9), spec(2), spec(3)])
        occupy(driver.pool[0], 3)
        occupy(driver.pool[1], 1)
        occupy(driver.pool[2], 2)
        self.assertEqual(driver.order("127.0.0.2"), [1, 2, 0])

    def test_ties_taken_in_turn(self) -> None:
        """Short connections that always find every backend idle still spread over all."""
        driver = Driver(LeastConnPolicy(), [spec(1), spec(2), spec(3)])
        got = []
        for n in range(6):
            backend = driver.connect(f"127.0.0.{n + 2}")
            assert backend is not None
            got.append(backend.index)
            driver.disconnect(backend)
        self.assertEqual(got, [0, 1, 2, 0, 1, 2])

    def test_maxc_respected(self) -> None:
        """A backend at MAXC is left out."""
        driver = Driver(LeastConnPolicy(), [spec(1, maxc=1, hard=2), spec(2)])
        self.assertEqual([driver.connect_index(f"127.0.0.{n}") for n in (2, 3, 4)], [0, 1, 1])
