# -*- test-case-name: tests.policies.test_sticky -*-
"""
Tests of sticky selection, Pen's default: the client table in front of a base policy.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from penbal.address import BackendSpec
from penbal.clienttable import ClientTable
from penbal.interfaces import ClientInfo
from penbal.policies.roundrobin import RoundRobinPolicy
from penbal.policies.sticky import StickyPolicy, build_sticky
from penbal.policies.weight import WeightPolicy
from tests.policies.fixtures import Driver, context, spec


def sticky(clock: Clock, size: int = 2048, tracking: float = 0.0) -> StickyPolicy:
    return StickyPolicy(ClientTable(clock, size, tracking), RoundRobinPolicy())


class StickyTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()

    def driver(self, *specs: BackendSpec, size: int = 2048, tracking: float = 0.0) -> Driver:
        chosen = list(specs) or [spec(1), spec(2), spec(3)]
        return Driver(sticky(self.clock, size, tracking), chosen, self.clock)

    def test_returning_client_goes_back(self) -> None:
        """A client connecting again goes to the backend it used last."""
        driver = self.driver()
        first = [driver.connect_index(f"127.0.0.{n}") for n in (2, 3, 4)]
        again = [driver.connect_index(f"127.0.0.{n}") for n in (2, 3, 4, 2)]
        self.assertEqual(first, [1, 2, 0])
        self.assertEqual(again, [1, 2, 0, 1])

    def test_returning_client_takes_no_turn(self) -> None:
        """Returning clients do not move the round-robin turn of new clients (as in Pen)."""
        driver = self.driver()
        got = [driver.connect_index(f"127.0.0.{n}") for n in (2, 2, 2, 3, 2, 4, 5)]
        self.assertEqual(got, [1, 1, 1, 2, 1, 0, 1])

    def test_failover_order_after_remembered(self) -> None:
        """A returning client's failover order is the table order after its backend."""
        driver = self.driver(spec(1), spec(2), spec(3), spec(4))
        driver.connect("127.0.0.2")
        driver.connect("127.0.0.3")
        self.assertEqual(driver.order("127.0.0.3"), [2, 3, 0, 1])

    def test_returning_client_may_exceed_maxc_up_to_hard(self) -> None:
        """MAXC stops new clients; a returning one may go on up to HARD."""
        driver = self.driver(spec(1, maxc=1, hard=3), spec(2, maxc=1, hard=3))
        self.assertEqual(driver.connect_index("127.0.0.2"), 1)
        self.assertEqual(driver.connect_index("127.0.0.3"), 0)
        # Both are at MAXC: a new client finds none.
        self.assertIsNone(driver.connect_index("127.0.0.4"))
        # The returning client goes back twice more, to HARD.
        self.assertEqual(driver.connect_index("127.0.0.2"), 1)
        self.assertEqual(driver.connect_index("127.0.0.2"), 1)
        self.assertEqual(driver.active(), [1, 3])
        # At HARD it is a new client again, and every backend is at MAXC.
        self.assertIsNone(driver.connect_index("127.0.0.2"))

    def test_at_hard_limit_placed_anew(self) -> None:
        """A returning client whose backend is at HARD goes where a new client would."""
        driver = self.driver(spec(1, maxc=1, hard=1), spec(2))
        self.assertEqual(driver.connect_index("127.0.0.2"), 1)
        self.assertEqual(driver.connect_index("127.0.0.3"), 0)
        self.assertEqual(driver.connect_index("127.0.0.3"), 1)
        self.assertEqual(driver.connect_index("127.0.0.3"), 1)

    def test_blacklisted_backend_chooses_anew(self) -> None:
        """When the remembered backend is not a candidate, the client is placed anew."""
        driver = self.driver()
        self.assertEqual(driver.connect_index("127.0.0.2"), 1)
        driver.blacklist(1)
        self.assertEqual(driver.connect_index("127.0.0.2"), 2)
        # ... and it is remembered there, even once backend 1 is back.
        self.clock.advance(31)
        self.assertEqual(driver.connect_index("127.0.0.2"), 2)

    def test_removed_backend_chooses_anew(self) -> None:
        """A client of a backend taken out of the table is placed anew."""
        driver = self.driver()
        gone = driver.connect("127.0.0.2")
        assert gone is not None
        driver.pool.remove(gone)
        backend = driver.connect("127.0.0.2")
        assert backend is not None
        self.assertNotEqual(backend.address, gone.address)

    def test_lru_eviction(self) -> None:
        """Past -c clients, the least recently used one is forgotten and placed anew."""
        driver = self.driver(size=2)
        self.assertEqual(driver.connect_index("127.0.0.2"), 1)
        self.assertEqual(driver.connect_index("127.0.0.3"), 2)
        self.assertEqual(driver.connect_index("127.0.0.4"), 0)  # evicts .2
        self.assertEqual(driver.connect_index("127.0.0.2"), 1)  # new again: next turn
        self.assertEqual(driver.connect_index("127.0.0.4"), 0)  # still known

    def test_tracking_expiry(self) -> None:
        """After -T seconds without a connection, a client is new again."""
        driver = self.driver(tracking=60)
        self.assertEqual(driver.connect_index("127.0.0.2"), 1)
        self.clock.advance(59)
        self.assertEqual(driver.connect_index("127.0.0.2"), 1)
        self.clock.advance(61)
        self.assertEqual(driver.connect_index("127.0.0.2"), 2)

    def test_clients_by_ip_not_port(self) -> None:
        """The table is keyed by the client's IP: another port of one host is the same client."""
        driver = self.driver()
        client = ClientInfo("127.0.0.2", 1000)
        first = driver.balancer.order(client)[0]
        driver.balancer.connected(client, first)
        self.assertEqual(driver.order("127.0.0.2")[0], first.index)

    def test_weight_base_for_new_clients(self) -> None:
        """Pen's -W without -r: new clients by weight, returning ones back to their backend."""
        policy = StickyPolicy(ClientTable(self.clock), WeightPolicy())
        driver = Driver(policy, [spec(1, weight=1), spec(2, weight=2), spec(3, weight=3)],
                        self.clock)
        got = [driver.connect_index(f"127.0.0.{n}") for n in range(2, 9)]
        self.assertEqual(got, [0, 1, 2, 2, 1, 2, 0])
        # Weight alone would now pick backend 1; the returning client goes back to 0.
        self.assertEqual(driver.connect_index("127.0.0.2"), 0)

    def test_build_uses_context(self) -> None:
        """The sticky plugin sizes its table from -c and -T, and takes settings["base"]."""
        policy = build_sticky(context(self.clock, clients=5, tracking=7))
        self.assertEqual((policy.table.size, policy.table.tracking), (5, 7))
        self.assertIsInstance(policy.base, RoundRobinPolicy)
        base = WeightPolicy()
        self.assertIs(build_sticky(context(self.clock, settings={"base": base})).base, base)
