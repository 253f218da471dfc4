# -*- test-case-name: tests.test_pool -*-
"""
Tests of the backend table: numbering, adding, finding and removing backends, draining a busy
one out, and the candidates offered to the selection policy.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from penbal.address import BackendSpec
from penbal.backend import AdminState, Backend, Fitness, Health
from penbal.pool import BackendPool
from tests.occupancy import occupy


def spec(port: int, maxc: int = 0, hard: int = 0, host: str = "127.0.0.1") -> BackendSpec:
    """A backend spec on C{host}."""
    return BackendSpec(host, port, maxc, hard)


def ports(backends: list[Backend]) -> list[int]:
    """The ports of C{backends}, in their order."""
    return [b.spec.port for b in backends]


class PoolCase(SynchronousTestCase):
    """A pool of C{backends} backends on ports 4000.., on a fake clock at 100 seconds."""

    backends = 3

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(100)
        self.pool = BackendPool(self.clock, [spec(4000 + i) for i in range(self.backends)])


class TableTests(PoolCase):
    """The table itself: numbering, add, remove, find."""

    def test_built_from_specs_in_order(self) -> None:
        """The specs become backends numbered 0.. in the order given."""
        self.assertEqual(len(self.pool), 3)
        self.assertEqual(ports(list(self.pool)), [4000, 4001, 4002])
        self.assertEqual([b.index for b in self.pool], [0, 1, 2])
        self.assertEqual(self.pool[1].spec, spec(4001))
        self.assertEqual(self.pool.retiring, set())

    def test_empty(self) -> None:
        """A pool without specs is empty and has no candidates."""
        pool = BackendPool(self.clock)
        self.assertEqual(len(pool), 0)
        self.assertEqual(list(pool), [])
        self.assertEqual(pool.candidates(), [])

    def test_now(self) -> None:
        """now() is the injected clock's time."""
        self.assertEqual(self.pool.now(), 100)
        self.clock.advance(2.5)
        self.assertEqual(self.pool.now(), 102.5)

    def test_add_takes_next_number(self) -> None:
        """An added backend goes to the end of the table with the next number."""
        added = self.pool.add(spec(5000, maxc=3))
        self.assertIsInstance(added, Backend)
        self.assertEqual(added.index, 3)
        self.assertIs(self.pool[3], added)
        self.assertEqual(added.spec, spec(5000, maxc=3))
        self.assertIs(added.admin, AdminState.UP)
        self.assertEqual(len(self.pool), 4)

    def test_remove_renumbers(self) -> None:
        """Removing a backend closes the gap: the ones after it move down by one."""
        first, middle, last = list(self.pool)
        self.pool.remove(middle)
        self.assertEqual(list(self.pool), [first, last])
        self.assertEqual([first.index, last.index], [0, 1])
        self.assertIsNone(self.pool.find(middle.address))

    def test_add_after_remove(self) -> None:
        """After a removal, an added backend takes the number just past the end."""
        self.pool.remove(self.pool[0])
        added = self.pool.add(spec(5000))
        self.assertEqual(added.index, 2)
        self.assertEqual([b.index for b in self.pool], [0, 1, 2])

    def test_remove_unknown(self) -> None:
        """Removing a backend that is not in the table is an error."""
        stranger = Backend(spec(9999))
        self.assertRaises(ValueError, self.pool.remove, stranger)
        self.assertEqual(len(self.pool), 3)

    def test_find(self) -> None:
        """find() gives the backend with that HOST:PORT, or None."""
        self.assertIs(self.pool.find("127.0.0.1:4001"), self.pool[1])
        self.assertIsNone(self.pool.find("127.0.0.1:9999"))
        self.assertIsNone(self.pool.find("127.0.0.2:4001"))

    def test_find_ipv6(self) -> None:
        """An IPv6 backend is found by its bracketed address."""
        added = self.pool.add(spec(3306, host="::1"))
        self.assertIs(self.pool.find("[::1]:3306"), added)
        self.assertIsNone(self.pool.find("::1:3306"))


class RetireTests(PoolCase):
    """Draining a backend out of the table: at once when idle, when released when busy."""

    def test_idle_removed_at_once(self) -> None:
        """Retiring a backend without connections removes it at once."""
        middle = self.pool[1]
        self.pool.retire(middle)
        self.assertNotIn(middle, list(self.pool))
        self.assertEqual(self.pool.retiring, set())
        self.assertEqual([b.index for b in self.pool], [0, 1])

    def test_busy_drains_then_leaves(self) -> None:
        """A busy backend drains (no new clients) and leaves when its last connection ends."""
        busy = self.pool[0]
        front = object()
        busy.live.add(front)  # its active count is 1
        self.pool.retire(busy)
        self.assertIs(busy.admin, AdminState.DRAIN)
        self.assertIn(busy, list(self.pool))
        self.assertEqual(self.pool.retiring, {busy})
        self.assertNotIn(busy, self.pool.candidates())
        # The relay's listener: the connection leaves the live set, then the pool is told.
        busy.live.discard(front)
        self.pool.released(busy)
        self.assertNotIn(busy, list(self.pool))
        self.assertEqual(self.pool.retiring, set())
        self.assertEqual(ports(list(self.pool)), [4001, 4002])
        self.assertEqual([b.index for b in self.pool], [0, 1])

    def test_stays_while_any_connection_left(self) -> None:
        """Each release with connections still left keeps the retiring backend in the table."""
        busy = self.pool[2]
        fronts = [object(), object()]
        busy.live.update(fronts)
        self.pool.retire(busy)
        busy.live.discard(fronts[0])
        self.pool.released(busy)
        self.assertIn(busy, list(self.pool))
        busy.live.discard(fronts[1])
        self.pool.released(busy)
        self.assertNotIn(busy, list(self.pool))

    def test_live_or_active_keeps_it(self) -> None:
        """Either a live connection or a nonzero active count (connections the workers of
        --workers N reported, none of them live here) keeps a retiring backend in."""
        busy = self.pool[0]
        busy.counters.elsewhere = 1
        self.pool.retire(busy)
        self.assertIn(busy, list(self.pool))
        busy.counters.elsewhere = 0
        busy.live.add(object())
        self.pool.released(busy)
        self.assertIn(busy, list(self.pool))
        busy.live.clear()
        self.pool.released(busy)
        self.assertNotIn(busy, list(self.pool))

    def test_release_of_a_serving_backend(self) -> None:
        """A connection ending on a backend that is not retiring never removes it."""
        idle = self.pool[1]
        self.pool.released(idle)
        self.assertIn(idle, list(self.pool))
        self.assertIs(idle.admin, AdminState.UP)

    def test_remove_forgets_retiring(self) -> None:
        """Removing a retiring backend outright (connections closed) drops it from retiring."""
        busy = self.pool[0]
        occupy(busy, 1)
        self.pool.retire(busy)
        self.pool.remove(busy)
        self.assertEqual(self.pool.retiring, set())
        occupy(busy, 0)
        self.pool.released(busy)  # its closed connections end later: nothing happens
        self.assertEqual(len(self.pool), 2)


class CandidateTests(PoolCase):
    """The backends offered to the policy for a new client."""

    backends = 4

    def test_all_in_table_order(self) -> None:
        """When every backend is fit and idle, all are candidates in table order."""
        self.assertEqual(self.pool.candidates(), list(self.pool))

    def test_unusable_left_out(self) -> None:
        """Down, draining, unfit and blacklisted backends are not candidates."""
        self.pool[0].admin = AdminState.DOWN
        self.pool[1].admin = AdminState.DRAIN
        self.pool[2].health = Health(Fitness.UNFIT, "not synced")
        self.assertEqual(self.pool.candidates(), [self.pool[3]])
        self.pool[3].blacklist(self.clock.seconds(), 30, "refused")
        self.assertEqual(self.pool.candidates(), [])

    def test_blacklist_expires_on_the_pool_clock(self) -> None:
        """A blacklisted backend is a candidate again once the pool's clock passes its time."""
        self.pool[1].blacklist(self.clock.seconds(), 30, "refused")
        self.assertEqual(ports(self.pool.candidates()), [4000, 4002, 4003])
        self.clock.advance(29)
        self.assertEqual(ports(self.pool.candidates()), [4000, 4002, 4003])
        self.clock.advance(1)
        self.assertEqual(ports(self.pool.candidates()), [4000, 4001, 4002, 4003])

    def test_hard_limit_left_out(self) -> None:
        """A backend at its hard limit is not a candidate; one at MAXC only is (for returners)."""
        at_hard = self.pool.add(spec(5000, maxc=1, hard=2))
        at_soft = self.pool.add(spec(5001, maxc=1, hard=2))
        occupy(at_hard, 2)
        occupy(at_soft, 1)
        candidates = self.pool.candidates()
        self.assertNotIn(at_hard, candidates)
        self.assertIn(at_soft, candidates)
        occupy(at_hard, 1)
        self.assertIn(at_hard, self.pool.candidates())

    def test_last_resort_only_without_fit(self) -> None:
        """Last-resort backends are offered only when no fit one is usable, in table order."""
        self.pool[0].health = Health(Fitness.LAST_RESORT, "donor")
        self.pool[2].health = Health(Fitness.LAST_RESORT, "desynced")
        self.assertEqual(ports(self.pool.candidates()), [4001, 4003])
        self.pool[1].admin = AdminState.DOWN
        self.pool[3].health = Health(Fitness.UNFIT, "non-Primary")
        self.assertEqual(ports(self.pool.candidates()), [4000, 4002])

    def test_fit_never_mixed_with_last_resort(self) -> None:
        """One usable fit backend is enough to keep every last-resort one out."""
        for backend in list(self.pool)[1:]:
            backend.health = Health(Fitness.LAST_RESORT, "donor")
        self.assertEqual(self.pool.candidates(), [self.pool[0]])

    def test_last_resort_when_fit_blacklisted(self) -> None:
        """A blacklisted fit backend does not keep the last-resort ones out, until it returns."""
        for backend in list(self.pool)[1:]:
            backend.health = Health(Fitness.LAST_RESORT, "donor")
        self.pool[0].blacklist(self.clock.seconds(), 10, "refused")
        self.assertEqual(ports(self.pool.candidates()), [4001, 4002, 4003])
        self.clock.advance(10)
        self.assertEqual(self.pool.candidates(), [self.pool[0]])

    def test_last_resort_when_fit_at_hard_limit(self) -> None:
        """A fit backend at its hard limit cannot take anyone, so the last resort is offered."""
        pool = BackendPool(self.clock, [spec(1, maxc=1), spec(2)])
        occupy(pool[0], 1)
        pool[1].health = Health(Fitness.LAST_RESORT, "donor")
        self.assertEqual(pool.candidates(), [pool[1]])

    def test_last_resort_limited_too(self) -> None:
        """A last-resort backend at its hard limit is left out like any other."""
        pool = BackendPool(self.clock, [spec(1), spec(2, maxc=1)])
        pool[0].admin = AdminState.DOWN
        pool[1].health = Health(Fitness.LAST_RESORT, "donor")
        occupy(pool[1], 1)
        self.assertEqual(pool.candidates(), [])

    def test_fresh_list(self) -> None:
        """Each call returns a new list, so a caller may change it without harm."""
        first = self.pool.candidates()
        first.clear()
        self.assertEqual(len(self.pool.candidates()), 4)
