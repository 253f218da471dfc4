"""
Tests for L{penbal.testing.chaos.faults}: the order the kinds come in, and that every fault
undoes what it did, on a stand-in for the cluster that records the calls.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import Any, cast

from twisted.trial.unittest import SynchronousTestCase

from penbal.testing.chaos.faults import FAULTS, FaultContext, FaultDeck
from penbal.testing.galera_cluster import GaleraCluster


class RecordingCluster:
    """Records each harness call as (name, arguments)."""

    nodes = 3

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        def call(*args: Any, **kwargs: Any) -> None:
            self.calls.append((name, args))
        return call

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def context(cluster: RecordingCluster, sleeps: list[float] | None = None,
            sleep: Callable[[float], None] | None = None) -> FaultContext:
    record = sleeps if sleeps is not None else []
    return FaultContext(cast(GaleraCluster, cluster), random.Random(3), lambda: 0.0,
                        sleep or record.append)


class DeckTests(SynchronousTestCase):
    def test_each_kind_once_per_round(self) -> None:
        """Every round draws each kind once, in an order that changes between rounds."""
        deck = FaultDeck(random.Random(1))
        rounds = [[deck.draw() for _ in FAULTS] for _ in range(4)]
        for drawn in rounds:
            self.assertEqual(sorted(drawn), sorted(FAULTS))
        self.assertGreater(len({tuple(r) for r in rounds}), 1)

    def test_unknown_kind(self) -> None:
        error = self.assertRaises(ValueError, FaultDeck, random.Random(), ["kill9", "flood"])
        self.assertIn("flood", str(error))


class UndoTests(SynchronousTestCase):
    def test_held_faults_undone(self) -> None:
        """Freeze, desync and reject are held 2-10 s and then undone on the same node."""
        for kind, on, off in (("freeze", "freeze", "thaw"), ("desync", "desync", "desync"),
                              ("reject", "reject_queries", "reject_queries")):
            cluster, sleeps = RecordingCluster(), list[float]()
            span = FAULTS[kind](context(cluster, sleeps))
            (node,) = span.nodes
            self.assertEqual(cluster.calls[0][0], on)
            self.assertIn((off, (node,) if kind == "freeze" else (node, False)
                           if kind == "desync" else (node, "NONE")), cluster.calls)
            self.assertEqual(len(sleeps), 1)
            self.assertTrue(2.0 <= sleeps[0] <= 10.0)

    def test_undone_when_interrupted(self) -> None:
        """A frozen node is resumed even if the wait is interrupted."""
        cluster = RecordingCluster()

        def interrupted(seconds: float) -> None:
            raise KeyboardInterrupt()

        self.assertRaises(KeyboardInterrupt, FAULTS["freeze"], context(cluster, sleep=interrupted))
        self.assertEqual(cluster.names(), ["freeze", "thaw"])

    def test_kill(self) -> None:
        cluster = RecordingCluster()
        span = FAULTS["kill9"](context(cluster))
        self.assertEqual(cluster.names(), ["kill9", "restart"])
        self.assertEqual(cluster.calls[1][1][0], span.nodes[0])

    def test_two_down(self) -> None:
        """Two nodes killed, the survivor waited on until non-Primary, bootstrapped, and the
        two restarted; every node counts as hit."""
        cluster = RecordingCluster()
        span = FAULTS["two-down"](context(cluster))
        self.assertEqual(span.nodes, (1, 2, 3))
        self.assertEqual(Counter(cluster.names()), Counter(
            {"kill9": 2, "wait_state": 1, "bootstrap": 1, "restart": 2}))
        killed = {args[0] for name, args in cluster.calls if name == "kill9"}
        restarted = {args[0] for name, args in cluster.calls if name == "restart"}
        (survivor,) = {args[0] for name, args in cluster.calls if name == "bootstrap"}
        self.assertEqual(killed, restarted)
        self.assertEqual(killed | {survivor}, {1, 2, 3})

    def test_cluster_restart(self) -> None:
        """The whole cluster is restarted in a random order of all three nodes."""
        cluster = RecordingCluster()
        FAULTS["cluster-restart"](context(cluster))
        ((name, (order,)),) = cluster.calls
        self.assertEqual((name, sorted(order)), ("restart_cluster", [1, 2, 3]))
