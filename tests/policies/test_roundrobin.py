# -*- test-case-name: tests.policies.test_roundrobin -*-
"""
Tests of round-robin selection (Pen's -r).
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from penbal.interfaces import ClientInfo
from penbal.policies.roundrobin import RoundRobinPolicy, rotate_after
from tests.occupancy import StandIn
from tests.policies.fixtures import Driver, spec


class RoundRobinTests(SynchronousTestCase):
    def test_turn_starts_after_first_backend(self) -> None:
        """As in Pen, the first new client goes to backend 1, then 2, then 0 and around."""
        driver = Driver(RoundRobinPolicy(), [spec(1), spec(2), spec(3)])
        got = [driver.connect_index(f"127.0.0.{n}") for n in range(2, 9)]
        self.assertEqual(got, [1, 2, 0, 1, 2, 0, 1])

    def test_same_client_is_not_sticky(self) -> None:
        """One client IP connecting again takes the next turn."""
        driver = Driver(RoundRobinPolicy(), [spec(1), spec(2)])
        self.assertEqual([driver.connect_index("127.0.0.2") for _ in range(4)], [1, 0, 1, 0])

    def test_failover_order_is_table_order_after_choice(self) -> None:
        """The backends after the first choice follow in table order, wrapping around."""
        driver = Driver(RoundRobinPolicy(), [spec(1), spec(2), spec(3), spec(4)])
        self.assertEqual(driver.order("127.0.0.2"), [1, 2, 3, 0])
        self.assertEqual(driver.order("127.0.0.3"), [2, 3, 0, 1])

    def test_blacklisted_backend_skipped(self) -> None:
        """A blacklisted backend is not offered; the turn passes to the next."""
        driver = Driver(RoundRobinPolicy(), [spec(1), spec(2), spec(3)])
        driver.blacklist(1)
        got = [driver.connect_index(f"127.0.0.{n}") for n in range(2, 6)]
        self.assertEqual(got, [2, 0, 2, 0])

    def test_full_backend_passed_over_and_turn_moves_on(self) -> None:
        """A backend at MAXC is passed over, and (as in Pen) its turn is used up."""
        driver = Driver(RoundRobinPolicy(), [spec(1), spec(2, maxc=1, hard=5), spec(3)])
        got = [driver.connect_index(f"127.0.0.{n}") for n in range(2, 7)]
        # Backend 1 is full after the first client; its later turn fails over to backend 2,
        # and the turn after that starts after 1 again: 2 takes two clients in a row.
        self.assertEqual(got, [1, 2, 0, 2, 2])

    def test_no_returning_clients_so_maxc_holds(self) -> None:
        """-r keeps no client table: a client coming back to its own full backend is new there,
        so MAXC holds and HARD does not apply (Pen would admit it up to HARD)."""
        driver = Driver(RoundRobinPolicy(), [spec(1, maxc=1, hard=3), spec(2, maxc=1, hard=3)])
        self.assertEqual(driver.connect_index("127.0.0.2"), 1)
        self.assertEqual(driver.connect_index("127.0.0.3"), 0)
        self.assertIsNone(driver.connect_index("127.0.0.2"))
        self.assertIsNone(driver.connect_index("127.0.0.3"))
        self.assertEqual(driver.active(), [1, 1])

    def test_peek_takes_no_turn(self) -> None:
        """peek() shows the next order without moving the turn."""
        policy = RoundRobinPolicy()
        driver = Driver(policy, [spec(1), spec(2)])
        self.assertEqual([b.index for b in policy.peek(list(driver.pool))], [1, 0])
        self.assertEqual(driver.connect_index("127.0.0.2"), 1)

    def test_rotate_after_wraps(self) -> None:
        """rotate_after starts after the given table position."""
        driver = Driver(RoundRobinPolicy(), [spec(1), spec(2), spec(3)])
        self.assertEqual([b.index for b in rotate_after(list(driver.pool), 2)], [0, 1, 2])
        self.assertEqual([b.index for b in rotate_after(list(driver.pool), 0)], [1, 2, 0])

    def test_choose_none_full_and_all_full(self) -> None:
        """With no backend full, choose() gives the whole turn as a new list (changing it
        changes nothing of the policy's); with every backend full it gives none, and the turn
        still moves on (as in Pen)."""
        policy = RoundRobinPolicy()
        driver = Driver(policy, [spec(1, maxc=1), spec(2, maxc=1), spec(3, maxc=1)])
        candidates = list(driver.pool)
        chosen = policy.choose(ClientInfo("127.0.0.2"), candidates)
        self.assertEqual([b.index for b in chosen], [1, 2, 0])
        assert isinstance(chosen, list)
        self.assertIsNot(chosen, candidates)
        chosen.clear()
        self.assertEqual([b.index for b in policy.peek(candidates)], [2, 0, 1])
        self.assertEqual(len(candidates), 3)
        for backend in candidates:
            backend.live.add(StandIn())  # every backend at MAXC
        self.assertEqual(policy.choose(ClientInfo("127.0.0.3"), candidates), [])
        self.assertEqual(policy.last, 2)
        self.assertEqual(policy.choose(ClientInfo("127.0.0.4"), []), [])
        self.assertEqual(policy.last, 2)
