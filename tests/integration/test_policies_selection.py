# -*- test-case-name: tests.integration.test_policies_selection -*-
"""
Selection policies in a real penbal: clients from distinct loopback source addresses
(127.0.0.2, 127.0.0.3, ...) through C{twist penbal} to real backends.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from twisted.trial.unittest import SynchronousTestCase

from penbal.testing.backends import NameBackend
from tests.conformance.pen import Penbal
from tests.conformance.replay import CLOSED, counts, replay


class PolicyIntegrationTests(SynchronousTestCase):
    def backends(self, count: int) -> list[NameBackend]:
        started = [NameBackend(f"b{i}") for i in range(count)]
        for backend in started:
            self.addCleanup(backend.stop)
        return started

    def penbal(self, flags: Sequence[str], specs: Sequence[str]) -> Penbal:
        proc = Penbal(flags, specs)
        self.addCleanup(proc.stop)
        return proc

    def test_sticky_by_default(self) -> None:
        """Each of 12 clients meets one backend on every visit; new clients take turns."""
        specs = [b.address for b in self.backends(3)]
        proc = self.penbal([], specs)
        steps = [str(n) for _ in range(3) for n in range(2, 14)]
        results = replay(proc.port, steps)
        for client in {c for c, _ in results}:
            self.assertEqual(len({b for c, b in results if c == client}), 1, client)
        self.assertEqual(counts(results), {"b0": 12, "b1": 12, "b2": 12})

    def test_client_table_size(self) -> None:
        """-c 2: a third client evicts the least recently used one, which is then new again."""
        specs = [b.address for b in self.backends(2)]
        proc = self.penbal(["-c", "2"], specs)
        results = replay(proc.port, ["2", "3", "4", "2"])
        self.assertEqual([b for _, b in results], ["b1", "b0", "b1", "b0"])

    def test_hash_agrees_across_processes(self) -> None:
        """Two penbal processes (backends listed in another order) send each client to the
        same backend; a third without one backend moves only that backend's clients."""
        specs = [b.address for b in self.backends(4)]
        steps = [str(n) for n in range(2, 42)]
        first = dict(replay(self.penbal(["-r", "-h"], specs).port, steps))
        second = dict(replay(self.penbal(["--policy", "hash"], specs[::-1]).port, steps))
        self.assertEqual(first, second)
        self.assertEqual(len(set(first.values())), 4)
        fewer = dict(replay(self.penbal(["-r", "-h"], specs[:2] + specs[3:]).port, steps))
        moved = {c for c in first if first[c] != fewer[c]}
        self.assertEqual(moved, {c for c in first if first[c] == "b2"})

    def test_weight_distribution(self) -> None:
        """-r -W with weights 1:2:3: 30 open connections split 5/10/15."""
        backends = self.backends(3)
        specs = [f"{b.address}:0:0:{w}" for b, w in zip(backends, (1, 2, 3), strict=True)]
        proc = self.penbal(["-r", "-W"], specs)
        results = replay(proc.port, [f"{n}+" for n in range(2, 32)])
        self.assertEqual(counts(results), {"b0": 5, "b1": 10, "b2": 15})

    def test_leastconn_spreads_open_connections(self) -> None:
        """--policy leastconn: 30 open connections split evenly."""
        specs = [b.address for b in self.backends(3)]
        proc = self.penbal(["--policy", "leastconn"], specs)
        results = replay(proc.port, [f"{n}+" for n in range(2, 32)])
        self.assertEqual(counts(results), {"b0": 10, "b1": 10, "b2": 10})

    def test_random_uses_every_backend(self) -> None:
        """--policy random: 60 clients reach every backend."""
        specs = [b.address for b in self.backends(3)]
        proc = self.penbal(["--policy", "random"], specs)
        results = replay(proc.port, [str(n) for n in range(2, 62)])
        self.assertEqual(set(counts(results)), {"b0", "b1", "b2"})

    def test_prio_fails_over_in_prio_order(self) -> None:
        """-r --prio: every client to the lowest prio; when it stops, to the next prio."""
        backends = self.backends(3)
        specs = [f"{b.address}:0:0:0:{p}" for b, p in zip(backends, (2, 1, 3), strict=True)]
        proc = self.penbal(["-r", "--prio"], specs)
        before = replay(proc.port, [str(n) for n in range(2, 8)])
        self.assertEqual(counts(before), {"b1": 6})
        backends[1].stop()
        after = replay(proc.port, [str(n) for n in range(2, 8)])
        self.assertEqual(counts(after), {"b0": 6})

    def test_stubborn_closes_instead_of_failing_over(self) -> None:
        """-s -r with a refusing backend: its client is closed, then it is blacklisted;
        without -s the same client goes to the next backend."""
        backends = self.backends(3)
        specs = [b.address for b in backends]
        backends[1].stop()
        stubborn = replay(self.penbal(["-s", "-r"], specs).port, [str(n) for n in range(2, 8)])
        self.assertEqual(stubborn[0], ("127.0.0.2", CLOSED))
        self.assertEqual(Counter(b for _, b in stubborn)[CLOSED], 1)
        failover = replay(self.penbal(["-r"], specs).port, [str(n) for n in range(2, 8)])
        self.assertNotIn(CLOSED, counts(failover))
