# -*- test-case-name: tests.policies.test_randompick -*-
"""
Tests of random selection.
"""

from __future__ import annotations

import random
from collections import Counter

from twisted.trial.unittest import SynchronousTestCase

from penbal.policies.randompick import RandomPolicy
from tests.occupancy import occupy
from tests.policies.fixtures import Driver, spec


class RandomTests(SynchronousTestCase):
    def test_uniform(self) -> None:
        """First choices are spread evenly (within 10% over 6000 picks)."""
        driver = Driver(RandomPolicy(random.Random(3)), [spec(p) for p in (1, 2, 3)])
        counts = Counter(driver.order("127.0.0.2")[0] for _ in range(6000))
        for count in counts.values():
            self.assertLess(abs(count - 2000), 200)

    def test_every_candidate_in_failover(self) -> None:
        """The order holds every available backend once."""
        driver = Driver(RandomPolicy(random.Random(3)), [spec(p) for p in (1, 2, 3, 4)])
        driver.blacklist(2)
        for _ in range(20):
            self.assertEqual(sorted(driver.order("127.0.0.2")), [0, 1, 3])

    def test_seeded_randomness_repeats(self) -> None:
        """The injected random source decides: the same seed gives the same choices."""
        orders = []
        for _ in range(2):
            driver = Driver(RandomPolicy(random.Random(42)), [spec(p) for p in (1, 2, 3)])
            orders.append([driver.order("127.0.0.2") for _ in range(30)])
        self.assertEqual(orders[0], orders[1])

    def test_maxc_respected(self) -> None:
        """A backend at MAXC is left out."""
        driver = Driver(RandomPolicy(random.Random(1)), [spec(1, maxc=1, hard=2), spec(2)])
        occupy(driver.pool[0], 1)
        self.assertEqual({tuple(driver.order("127.0.0.2")) for _ in range(20)}, {(1,)})
