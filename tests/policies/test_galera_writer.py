"""
Tests for L{penbal.policies.galera_writer}: one writer, deterministic, failover and failback.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from penbal.backend import AdminState, Fitness, Health
from penbal.policies.galera_writer import GaleraWriterPolicy, build_galera_writer
from penbal.policies.registry import find_policies
from tests.policies.fixtures import Driver, context, spec

THREE = [spec(3361), spec(3362), spec(3363)]


def unfit(driver: Driver, index: int) -> None:
    driver.pool[index].health = Health(Fitness.UNFIT, "non-Primary")


def fit(driver: Driver, index: int) -> None:
    driver.pool[index].health = Health(Fitness.FIT)


class GaleraWriterTests(SynchronousTestCase):
    """Every client to one node."""

    def test_all_to_first(self) -> None:
        """With equal prio every client goes to the first node of the table."""
        driver = Driver(GaleraWriterPolicy(), THREE)
        self.assertEqual([driver.connect_index(f"10.0.0.{i}") for i in range(5)], [0] * 5)

    def test_lowest_prio(self) -> None:
        """The lowest PRIO wins over table order."""
        driver = Driver(GaleraWriterPolicy(), [spec(3361, prio=2), spec(3362, prio=1),
                                               spec(3363, prio=1)])
        self.assertEqual(driver.connect_index("a"), 1)

    def test_failover_order(self) -> None:
        """The rest of the order is the failover order, by prio then table."""
        driver = Driver(GaleraWriterPolicy(), [spec(3361, prio=2), spec(3362), spec(3363)])
        self.assertEqual(driver.order("a"), [1, 2, 0])

    def test_ignores_soft_limit(self) -> None:
        """A writer at MAXC keeps taking clients (up to HARD): writes must not split."""
        driver = Driver(GaleraWriterPolicy(), [spec(3361, maxc=1, hard=3), spec(3362)])
        self.assertEqual([driver.connect_index("a") for _ in range(4)], [0, 0, 0, 1])

    def test_failover_when_unfit(self) -> None:
        """When the writer is unfit, the next one takes every client."""
        driver = Driver(GaleraWriterPolicy(), THREE)
        driver.connect("a")
        unfit(driver, 0)
        self.assertEqual([driver.connect_index("b"), driver.connect_index("c")], [1, 1])

    def test_failover_when_blacklisted_or_drained(self) -> None:
        """A writer that refused a connect, or is drained, is not a candidate either."""
        driver = Driver(GaleraWriterPolicy(), THREE)
        driver.blacklist(0)
        self.assertEqual(driver.connect_index("a"), 1)
        driver.pool[1].admin = AdminState.DRAIN
        self.assertEqual(driver.connect_index("a"), 2)

    def test_failback(self) -> None:
        """By default the preferred writer takes over again when it is back."""
        driver = Driver(GaleraWriterPolicy(), THREE)
        unfit(driver, 0)
        self.assertEqual(driver.connect_index("a"), 1)
        fit(driver, 0)
        self.assertEqual(driver.connect_index("a"), 0)

    def test_no_failback(self) -> None:
        """With --no-failback the new writer stays while it is a candidate."""
        driver = Driver(GaleraWriterPolicy(failback=False), THREE)
        self.assertEqual(driver.connect_index("a"), 0)
        unfit(driver, 0)
        self.assertEqual(driver.connect_index("a"), 1)
        fit(driver, 0)
        self.assertEqual(driver.connect_index("a"), 1)
        unfit(driver, 1)
        self.assertEqual(driver.connect_index("a"), 0)

    def test_two_instances_agree(self) -> None:
        """Two balancers with the same configuration and view pick the same writer."""
        specs = [spec(3361, prio=3), spec(3362, prio=1), spec(3363, prio=1)]
        one, two = Driver(GaleraWriterPolicy(), specs), Driver(GaleraWriterPolicy(), specs)
        two.connect("x")  # a different history of clients
        for driver in (one, two):
            unfit(driver, 1)
        self.assertEqual(one.connect_index("a"), two.connect_index("b"))

    def test_donor_only(self) -> None:
        """When only a last-resort node is left, it is the writer."""
        driver = Driver(GaleraWriterPolicy(), THREE)
        driver.pool[0].health = Health(Fitness.LAST_RESORT, "desynced")
        unfit(driver, 1)
        unfit(driver, 2)
        self.assertEqual(driver.connect_index("a"), 0)

    def test_none(self) -> None:
        """No candidate, no writer."""
        driver = Driver(GaleraWriterPolicy(), THREE)
        for i in range(3):
            unfit(driver, i)
        self.assertIsNone(driver.connect("a"))


class PluginTests(SynchronousTestCase):
    """The galera-writer plugin."""

    def test_found(self) -> None:
        """The policy is found by name."""
        self.assertIn("galera-writer", find_policies())

    def test_settings(self) -> None:
        """settings["failback"] false (--no-failback) is passed to the policy."""
        self.assertFalse(build_galera_writer(context(settings={"failback": False})).failback)
        self.assertTrue(build_galera_writer(context()).failback)
