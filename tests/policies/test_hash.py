# -*- test-case-name: tests.policies.test_hash -*-
"""
Tests of rendezvous hashing of the client IP (Pen's -h, with a better hash).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

from twisted.trial.unittest import SynchronousTestCase

from penbal.backend import Backend
from penbal.interfaces import ClientInfo
from penbal.policies.hash import RendezvousHashPolicy, rendezvous_order, rendezvous_score
from tests.occupancy import occupy
from tests.policies.fixtures import Driver, spec

CLIENTS = [f"10.{n // 65536}.{n // 256 % 256}.{n % 256}" for n in range(1, 3001)]


def first_choice(driver: Driver, host: str) -> str:
    return driver.balancer.order(ClientInfo(host))[0].address


class RendezvousHashTests(SynchronousTestCase):
    def test_score_is_fixed(self) -> None:
        """The score is a fixed function (BLAKE2b), not Python's per-process hash()."""
        self.assertEqual(rendezvous_score("127.0.0.2", "127.0.0.1:3306"), 5969009999015288777)
        self.assertEqual(rendezvous_score("127.0.5.3", "[::1]:3306"), 1634604034963445015)

    def test_two_processes_agree(self) -> None:
        """Processes with different hash seeds make the same choices."""
        code = (
            "from penbal.policies.hash import rendezvous_score as s;"
            "print([s(f'10.0.0.{n}', '127.0.0.1:%d' % p) for n in range(20) for p in (1, 2)])"
        )
        outputs = set()
        for seed in ("1", "2", "random"):
            env = dict(os.environ, PYTHONHASHSEED=seed)
            outputs.add(subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                       capture_output=True, text=True, timeout=60).stdout)
        self.assertEqual(len(outputs), 1)

    def test_same_client_same_backend(self) -> None:
        """A client IP always gets the same first choice, whatever its port."""
        driver = Driver(RendezvousHashPolicy(), [spec(p) for p in range(1, 6)])
        for host in CLIENTS[:50]:
            choices = {driver.balancer.order(ClientInfo(host, port))[0].index
                       for port in (1000, 2000, 3000)}
            self.assertEqual(len(choices), 1)

    def test_spread_is_even(self) -> None:
        """Many clients spread evenly over the backends (within 15%)."""
        driver = Driver(RendezvousHashPolicy(), [spec(p) for p in range(1, 6)])
        counts = Counter(first_choice(driver, host) for host in CLIENTS)
        expected = len(CLIENTS) / 5
        for count in counts.values():
            self.assertLess(abs(count - expected), 0.15 * expected)

    def test_removing_one_moves_only_its_clients(self) -> None:
        """Removing one of N backends moves only its own clients, about 1/N of them."""
        n = 5
        driver = Driver(RendezvousHashPolicy(), [spec(p) for p in range(1, n + 1)])
        before = {host: first_choice(driver, host) for host in CLIENTS}
        gone = driver.pool[2]
        driver.pool.remove(gone)
        after = {host: first_choice(driver, host) for host in CLIENTS}
        moved = [host for host in CLIENTS if before[host] != after[host]]
        self.assertTrue(all(before[host] == gone.address for host in moved))
        self.assertEqual(len(moved), sum(1 for b in before.values() if b == gone.address))
        self.assertLess(abs(len(moved) / len(CLIENTS) - 1 / n), 0.03)

    def test_adding_one_takes_only_its_share(self) -> None:
        """Adding a backend moves about 1/(N+1) of the clients, all to the new backend."""
        driver = Driver(RendezvousHashPolicy(), [spec(p) for p in range(1, 5)])
        before = {host: first_choice(driver, host) for host in CLIENTS}
        new = driver.pool.add(spec(99))
        after = {host: first_choice(driver, host) for host in CLIENTS}
        moved = [host for host in CLIENTS if before[host] != after[host]]
        self.assertTrue(all(after[host] == new.address for host in moved))
        self.assertLess(abs(len(moved) / len(CLIENTS) - 1 / 5), 0.03)

    def test_unavailable_backend_fails_over_consistently(self) -> None:
        """A blacklisted first choice gives way to the second by score: the failover order."""
        driver = Driver(RendezvousHashPolicy(), [spec(p) for p in range(1, 6)])
        host = "127.0.9.7"
        order = driver.order(host)
        self.assertEqual(sorted(order), [0, 1, 2, 3, 4])
        driver.blacklist(order[0])
        self.assertEqual(driver.order(host), order[1:])

    def test_full_backend_skipped(self) -> None:
        """A backend at MAXC is left out."""
        driver = Driver(RendezvousHashPolicy(), [spec(1, maxc=1, hard=2), spec(2), spec(3)])
        full: Backend = driver.pool[0]
        occupy(full, 1)
        self.assertNotIn(0, driver.order("127.0.9.8"))

    def test_order_depends_on_address_not_position(self) -> None:
        """The order follows backend addresses, so table order does not matter."""
        backends = [Backend(spec(p), i) for i, p in enumerate((1, 2, 3))]
        reordered = [Backend(spec(p), i) for i, p in enumerate((3, 1, 2))]
        self.assertEqual([b.address for b in rendezvous_order("127.0.9.1", backends)],
                         [b.address for b in rendezvous_order("127.0.9.1", reordered)])
