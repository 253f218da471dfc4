"""
Tests for L{penbal.policies.galera_writer}: one writer, deterministic, failover and failback;
the view index (C{wsrep_local_index}) as the health check keeps it decides between equal PRIOs.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from penbal.backend import AdminState, Fitness, Health
from penbal.health.assembly import galera_assess
from penbal.health.fitness import DonorPolicy
from penbal.health.partition import ClusterViews
from penbal.health.scheduler import HealthScheduler
from penbal.policies.galera_writer import (
    NO_INDEX,
    GaleraWriterPolicy,
    build_galera_writer,
    view_index,
)
from penbal.policies.registry import find_policies
from tests.health import rows
from tests.health.fakes import Script, ScriptedCheck
from tests.policies.fixtures import Driver, context, spec

THREE = [spec(3361), spec(3362), spec(3363)]


def unfit(driver: Driver, index: int) -> None:
    driver.pool[index].health = Health(Fitness.UNFIT, "non-Primary")


def fit(driver: Driver, index: int) -> None:
    driver.pool[index].health = Health(Fitness.FIT)


class GaleraWriterTests(SynchronousTestCase):
    """Every client to one node."""

    def test_all_to_first(self) -> None:
        """With equal prio and no view index every client goes to the lowest address."""
        driver = Driver(GaleraWriterPolicy(), THREE)
        self.assertEqual([driver.connect_index(f"10.0.0.{i}") for i in range(5)], [0] * 5)

    def test_lowest_prio(self) -> None:
        """The lowest PRIO wins over the address."""
        driver = Driver(GaleraWriterPolicy(), [spec(3361, prio=2), spec(3362, prio=1),
                                               spec(3363, prio=1)])
        self.assertEqual(driver.connect_index("a"), 1)

    def test_failover_order(self) -> None:
        """The rest of the order is the failover order, by prio then address."""
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
        self.assertTrue(build_galera_writer(context(settings={"checked": True})).checked)


def indexed(driver: Driver, *indexes: int | str) -> None:
    """Give each backend, in table order, the view index its health check read."""
    for backend, index in zip(driver.pool, indexes, strict=True):
        backend.health.details["wsrep_local_index"] = str(index)


class ViewIndexTests(SynchronousTestCase):
    """Between equal PRIOs the node the cluster lists first is the writer."""

    def test_lowest_index(self) -> None:
        """The node reporting the lowest wsrep_local_index wins over the address."""
        driver = Driver(GaleraWriterPolicy(), THREE)
        indexed(driver, 2, 0, 1)
        self.assertEqual(driver.order("a"), [1, 2, 0])

    def test_prio_first(self) -> None:
        """PRIO still comes before the view index."""
        driver = Driver(GaleraWriterPolicy(), [spec(3361, prio=1), spec(3362, prio=2),
                                               spec(3363, prio=1)])
        indexed(driver, 2, 0, 1)
        self.assertEqual(driver.connect_index("a"), 2)

    def test_unknown_last(self) -> None:
        """A node with no index, or one that is not a number, comes after indexed nodes."""
        driver = Driver(GaleraWriterPolicy(), THREE)
        indexed(driver, "", 1, "x")
        self.assertEqual(driver.order("a"), [1, 0, 2])
        self.assertEqual(view_index(driver.pool[0]), NO_INDEX)

    def test_negative_unknown(self) -> None:
        """A negative index (a node outside any view) counts as unknown."""
        driver = Driver(GaleraWriterPolicy(), THREE)
        indexed(driver, -1, 1, 2)
        self.assertEqual(driver.order("a"), [1, 2, 0])

    def test_equal_index_by_address(self) -> None:
        """Equal indexes (a stale node, say) are ranked by address."""
        driver = Driver(GaleraWriterPolicy(), [spec(3363), spec(3362), spec(3361)])
        indexed(driver, 0, 0, 0)
        self.assertEqual(driver.connect_index("a"), 2)

    def test_different_orders_agree(self) -> None:
        """Two instances given the nodes in opposite orders name the same writer, and the
        same one after it fails."""
        one = Driver(GaleraWriterPolicy(), THREE)
        two = Driver(GaleraWriterPolicy(), list(reversed(THREE)))
        indexed(one, 1, 2, 0)
        indexed(two, 0, 2, 1)
        self.assertEqual(one.connect("a").address, two.connect("b").address)  # type: ignore
        self.assertEqual(one.connect("a").address, "127.0.0.1:3363")  # type: ignore
        unfit(one, 2)
        unfit(two, 0)
        self.assertEqual(one.connect("a").address, two.connect("b").address)  # type: ignore

    def test_follows_view_change(self) -> None:
        """When the view changes the index, the writer follows it (with failback)."""
        driver = Driver(GaleraWriterPolicy(), THREE)
        indexed(driver, 0, 1, 2)
        self.assertEqual(driver.connect_index("a"), 0)
        indexed(driver, 2, 0, 1)
        self.assertEqual(driver.connect_index("a"), 1)

    def test_no_failback_waits_for_the_checks(self) -> None:
        """With --no-failback and a health check, a writer named before the check read every
        node (start-up: no index known, so the lowest address) is provisional: the first choice
        with every node checked names the node of lowest index, and that one then stays."""
        driver = Driver(GaleraWriterPolicy(failback=False, checked=True), THREE)
        self.assertEqual(driver.connect_index("a"), 0)  # nothing checked yet: by address
        indexed(driver, 1, 0, 2)
        for backend in driver.pool:
            backend.health.details["checked_at"] = 1.0
        self.assertEqual(driver.connect_index("a"), 1)
        indexed(driver, 0, 1, 2)  # a view change: no failback now
        self.assertEqual(driver.connect_index("a"), 1)

    def test_no_failback_keeps_history(self) -> None:
        """With --no-failback the writer depends on history: an instance that saw the first
        writer fail keeps the second, a new instance picks the lowest index."""
        old = Driver(GaleraWriterPolicy(failback=False), THREE)
        indexed(old, 0, 1, 2)
        old.connect("a")
        unfit(old, 0)
        self.assertEqual(old.connect_index("a"), 1)
        fit(old, 0)
        new = Driver(GaleraWriterPolicy(failback=False), THREE)
        indexed(new, 0, 1, 2)
        self.assertEqual([old.connect_index("a"), new.connect_index("a")], [1, 0])


# Rows of the three nodes of one view (node i reports index i - 1), and of the two nodes left
# after node 1 was killed: the view is renumbered.  The indexes are those read on the real test
# cluster (MariaDB 10.11, Galera 26.4): 0, 1, 2; after kill -9 of node 1, node 2 said 0 and
# node 3 said 1 (conf id 4, size 2); once node 1 was back, 0, 1, 2 again.
VIEW = {3361: rows.row(), 3362: rows.row(wsrep_node_name="node2", wsrep_local_index="1"),
        3363: rows.row(wsrep_node_name="node3", wsrep_local_index="2")}
EVICTED = {3362: rows.row(**{**rows.AFTER_EVICTION, "wsrep_local_index": "0"}),
           3363: rows.row(**{**rows.AFTER_EVICTION, "wsrep_local_index": "1"})}


class CheckedInstance:
    """One penbal's pool, health scheduler (scripted Galera rows, a Clock) and policy."""

    def __init__(self, clock: Clock, ports: list[int], view: dict[int, dict[str, str]]) -> None:
        self.view = view
        self.driver = Driver(GaleraWriterPolicy(), [spec(port) for port in ports], clock)
        check = ScriptedCheck(clock)
        for backend in self.driver.pool:
            check.set(backend, self._answers(backend.spec.port))
        self.scheduler = HealthScheduler(clock, self.driver.pool, check,
                                         galera_assess(DonorPolicy.AVOID,
                                                       ClusterViews(clock, 0.5)),
                                         interval=0.5, timeout=0.5, rise=2, fall=2)
        self.scheduler.startService()

    def _answers(self, port: int) -> Script:
        """Node C{port}'s row in the current view; refused once it left the view."""
        return lambda t: rows.seen(self.view[port]) if port in self.view else rows.REFUSED

    def writer(self) -> str:
        """The address the next client goes to."""
        chosen = self.driver.connect("client")
        assert chosen is not None
        return chosen.address


class CheckedViewTests(SynchronousTestCase):
    """The index the Galera check reads reaches the policy through the backend's health."""

    def test_index_kept_with_health(self) -> None:
        """After a round each backend's health carries the wsrep_local_index it reported."""
        clock = Clock()
        instance = CheckedInstance(clock, [3363, 3361, 3362], VIEW)
        clock.advance(0.1)
        self.assertEqual([b.health.details["wsrep_local_index"] for b in instance.driver.pool],
                         ["2", "0", "1"])

    def test_instances_in_different_orders_agree(self) -> None:
        """Two instances given the nodes in different orders and checking at different
        moments name the same writer; after an eviction renumbers the view, both follow."""
        clock = Clock()
        one = CheckedInstance(clock, [3363, 3362, 3361], VIEW)
        clock.advance(0.2)
        two = CheckedInstance(clock, [3362, 3361, 3363], VIEW)
        clock.advance(0.5)
        self.assertEqual([one.writer(), two.writer()], ["127.0.0.1:3361"] * 2)
        for instance in (one, two):
            instance.view = EVICTED
        clock.pump([0.25] * 8)
        self.assertEqual([one.writer(), two.writer()], ["127.0.0.1:3362"] * 2)
