# -*- test-case-name: tests.policies.test_weight -*-
"""
Tests of weighted least-connections (Pen's -W).
"""

from __future__ import annotations

import random

from twisted.trial.unittest import SynchronousTestCase

from penbal.policies.weight import WeightPolicy
from tests.occupancy import occupy
from tests.policies.fixtures import Driver, spec


class WeightTests(SynchronousTestCase):
    def test_lowest_connections_per_weight(self) -> None:
        """Each client goes to the lowest 256*active//weight; ties to the lower position."""
        driver = Driver(WeightPolicy(), [spec(1, weight=1), spec(2, weight=2), spec(3, weight=3)])
        got = [driver.connect_index(f"127.0.0.{n}") for n in range(2, 14)]
        # Same sequence as Pen 0.34.1 -W with these weights (measured).
        self.assertEqual(got[:7], [0, 1, 2, 2, 1, 2, 0])
        self.assertEqual(driver.active(), [2, 4, 6])

    def test_distribution_follows_weights(self) -> None:
        """Over many clients that come and go, connections stay proportional to the weights."""
        driver = Driver(WeightPolicy(), [spec(1, weight=1), spec(2, weight=3), spec(3, weight=6)])
        rng = random.Random(7)
        live = []
        for n in range(5000):
            backend = driver.connect(f"10.0.{n // 256 % 256}.{n % 256}")
            assert backend is not None
            live.append(backend)
            if len(live) > 100:
                driver.disconnect(live.pop(rng.randrange(len(live))))
        active = driver.active()
        self.assertEqual(sum(active), 100)
        for share, weight in zip(active, (1, 3, 6), strict=True):
            self.assertLessEqual(abs(share - 10 * weight), 2)

    def test_weight_zero_never_first(self) -> None:
        """A backend of weight 0 is skipped as first choice but comes last in failover."""
        driver = Driver(WeightPolicy(), [spec(1, weight=0), spec(2, weight=1), spec(3, weight=1)])
        self.assertEqual([driver.connect_index(f"127.0.0.{n}") for n in range(2, 8)],
                         [1, 2, 1, 2, 1, 2])
        self.assertEqual(driver.order("127.0.0.9"), [1, 2, 0])

    def test_all_weights_zero_is_least_connections(self) -> None:
        """With no weights at all (Pen's default 0), every backend counts as weight 1."""
        driver = Driver(WeightPolicy(), [spec(1), spec(2), spec(3)])
        got = [driver.connect_index(f"127.0.0.{n}") for n in range(2, 8)]
        self.assertEqual(got, [0, 1, 2, 0, 1, 2])
        driver.disconnect(driver.pool[1])
        self.assertEqual(driver.connect_index("127.0.0.9"), 1)

    def test_maxc_respected(self) -> None:
        """A backend at MAXC takes no new client even if its load is the lowest."""
        driver = Driver(WeightPolicy(), [spec(1, maxc=1, hard=2, weight=100), spec(2, weight=1)])
        self.assertEqual([driver.connect_index(f"127.0.0.{n}") for n in range(2, 5)], [0, 1, 1])

    def test_integer_load_ties(self) -> None:
        """Pen's integer load makes near-equal loads ties, which go to the lower position."""
        driver = Driver(WeightPolicy(), [spec(1, weight=300), spec(2, weight=301)])
        occupy(driver.pool[0], 1)
        occupy(driver.pool[1], 1)
        # 256*1//300 == 256*1//301 == 0: a tie, so backend 0.
        self.assertEqual(driver.order("127.0.0.2"), [0, 1])
