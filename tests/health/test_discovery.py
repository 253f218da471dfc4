"""
Tests for L{penbal.health.discovery}: nodes learnt from wsrep_incoming_addresses.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from penbal.address import BackendSpec
from penbal.backend import Fitness, Health
from penbal.health.discovery import Discovery, incoming_addresses
from penbal.pool import BackendPool
from tests.health import rows

THREE = "127.0.0.1:3361,127.0.0.1:3362,127.0.0.1:3363"


class DiscoveryTests(SynchronousTestCase):
    """Growing the pool from what fit nodes report."""

    def setUp(self) -> None:
        self.pool = BackendPool(Clock(), [BackendSpec("127.0.0.1", 3361)])
        self.discovery = Discovery(self.pool, 3306)

    def test_parse(self) -> None:
        """Empty and AUTO entries are left out."""
        self.assertEqual(incoming_addresses({"wsrep_incoming_addresses": "a:1,,AUTO, b:2"}),
                         ["a:1", "b:2"])

    def test_adds_new_nodes_unfit(self) -> None:
        """Nodes a fit node reports are added, unfit until their first check."""
        self.discovery({self.pool[0]: rows.seen(rows.row(wsrep_incoming_addresses=THREE))})
        self.assertEqual([b.address for b in self.pool], THREE.split(","))
        self.assertIs(self.pool[2].health.fitness, Fitness.UNFIT)
        self.assertIn("not checked yet", self.pool[2].health.reason)

    def test_only_from_fit_nodes(self) -> None:
        """An unfit node's list is not trusted."""
        self.pool[0].health = Health(Fitness.UNFIT, "non-Primary")
        self.discovery({self.pool[0]: rows.seen(rows.row(wsrep_incoming_addresses=THREE))})
        self.assertEqual(len(self.pool), 1)

    def test_alias_not_added_twice(self) -> None:
        """A node configured under another name is known by its own incoming address."""
        pool = BackendPool(Clock(), [BackendSpec("localhost", 3361)])
        discovery = Discovery(pool, 3306)
        values = rows.row(wsrep_incoming_addresses="127.0.0.1:3361,127.0.0.1:3362",
                          wsrep_node_incoming_address="127.0.0.1:3361")
        discovery({pool[0]: rows.seen(values)})
        self.assertEqual([b.address for b in pool], ["localhost:3361", "127.0.0.1:3362"])

    def test_bad_address_ignored(self) -> None:
        """An address that does not parse is ignored (and logged once)."""
        self.discovery({self.pool[0]: rows.seen(rows.row(wsrep_incoming_addresses="x:99999"))})
        self.assertEqual(len(self.pool), 1)
