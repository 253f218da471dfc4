# -*- test-case-name: tests.test_backend -*-
"""
Tests of one backend: its limits, the blacklist and its expiry, the admin and health states
and what they make of its fitness for new connections.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from penbal.address import BackendSpec
from penbal.backend import COUNTER_NAMES, AdminState, Backend, Counters, Fitness, Health
from penbal.pool import BackendPool
from tests.occupancy import StandIn, occupy


def make(maxc: int = 0, hard: int = 0, host: str = "127.0.0.1", port: int = 3306) -> Backend:
    """A backend with the given limits, at table position 0."""
    return Backend(BackendSpec(host, port, maxc, hard))


class FreshBackendTests(SynchronousTestCase):
    """A backend as it enters the table."""

    def test_starts_up_fit_and_idle(self) -> None:
        """A new backend is up, fit, not blacklisted, with zero counters and no connections."""
        backend = Backend(BackendSpec("127.0.7.1", 3306), 4)
        self.assertEqual(backend.index, 4)
        self.assertIs(backend.admin, AdminState.UP)
        self.assertIs(backend.health.fitness, Fitness.FIT)
        self.assertEqual(backend.health, Health())
        self.assertEqual(backend.counters, Counters())
        self.assertEqual(backend.live, set())
        self.assertFalse(backend.is_blacklisted(0.0))
        self.assertEqual(backend.blacklist_reason, "")
        self.assertTrue(backend.usable(0.0))
        self.assertEqual(backend.state(0.0), ("up", ""))

    def test_index_defaults_to_zero(self) -> None:
        """Without an index the backend is number 0."""
        self.assertEqual(Backend(BackendSpec("127.0.7.1", 3306)).index, 0)

    def test_address(self) -> None:
        """The address is the spec's HOST:PORT, with an IPv6 host in brackets."""
        self.assertEqual(make(host="db1", port=3307).address, "db1:3307")
        self.assertEqual(make(host="::1", port=3307).address, "[::1]:3307")

    def test_repr(self) -> None:
        """The repr names the table position, the address and the admin state."""
        backend = Backend(BackendSpec("127.0.7.1", 3306), 2)
        backend.admin = AdminState.DRAIN
        self.assertEqual(repr(backend), "<Backend 2 127.0.7.1:3306 drain>")

    def test_counters_are_per_backend(self) -> None:
        """Two backends never share their counters, health or live set."""
        one, two = make(port=1), make(port=2)
        one.live.add(StandIn())
        one.health.fitness = Fitness.UNFIT
        one.live.add("connection")
        self.assertEqual(two.counters.active, 0)
        self.assertIs(two.health.fitness, Fitness.FIT)
        self.assertEqual(two.live, set())


class ActiveCountTests(SynchronousTestCase):
    """The active count is derived, never counted apart."""

    def test_active_is_the_live_set(self) -> None:
        """A backend's active count is the size of its live set, whatever enters or leaves."""
        backend = make()
        first, second = StandIn(), StandIn()
        backend.live.update((first, second))
        self.assertEqual(backend.counters.active, 2)
        backend.live.discard(first)
        self.assertEqual(backend.counters.active, 1)
        self.assertEqual(backend.counters.figures()["active"], 1)

    def test_elsewhere_adds(self) -> None:
        """Connections counted in other processes (the workers' reports) add to the live ones."""
        backend = make()
        backend.live.add(StandIn())
        backend.counters.elsewhere = 3
        self.assertEqual(backend.counters.active, 4)

    def test_figures_in_order(self) -> None:
        """Every counter is listed, active first, as the status views show them."""
        backend = make()
        backend.counters.total = 7
        self.assertEqual(list(backend.counters.figures()), list(COUNTER_NAMES))
        self.assertEqual(backend.counters.figures()["total"], 7)


class LimitTests(SynchronousTestCase):
    """Pen's MAXC (soft) and HARD limits."""

    def test_unlimited(self) -> None:
        """With MAXC and HARD 0 there is no limit of either kind."""
        backend = make()
        occupy(backend, 10_000)
        self.assertEqual((backend.soft_limit, backend.hard_limit), (0, 0))
        self.assertTrue(backend.below_soft_limit())
        self.assertTrue(backend.below_hard_limit())

    def test_soft_limit(self) -> None:
        """A new client may come while fewer than MAXC connections are active."""
        backend = make(maxc=2)
        self.assertEqual(backend.soft_limit, 2)
        occupy(backend, 1)
        self.assertTrue(backend.below_soft_limit())
        occupy(backend, 2)
        self.assertFalse(backend.below_soft_limit())
        occupy(backend, 3)
        self.assertFalse(backend.below_soft_limit())

    def test_hard_limit_above_maxc(self) -> None:
        """Between MAXC and HARD a returning client is still admitted, a new one is not."""
        backend = make(maxc=2, hard=4)
        self.assertEqual(backend.hard_limit, 4)
        occupy(backend, 3)
        self.assertFalse(backend.below_soft_limit())
        self.assertTrue(backend.below_hard_limit())
        occupy(backend, 4)
        self.assertFalse(backend.below_hard_limit())

    def test_hard_never_below_maxc(self) -> None:
        """A HARD below MAXC (or unset) counts as MAXC."""
        for hard in (0, 1):
            backend = make(maxc=3, hard=hard)
            self.assertEqual(backend.hard_limit, 3)
            occupy(backend, 2)
            self.assertTrue(backend.below_hard_limit())
            occupy(backend, 3)
            self.assertFalse(backend.below_hard_limit())

    def test_hard_without_maxc_ignored(self) -> None:
        """As in Pen, MAXC 0 means unlimited whatever HARD says: HARD alone limits no one."""
        for hard in (1, 2, 5):
            backend = make(maxc=0, hard=hard)
            self.assertEqual(backend.hard_limit, 0)
            for active in (0, hard, hard + 1, 1000):
                occupy(backend, active)
                self.assertTrue(backend.below_soft_limit(), (hard, active))
                self.assertTrue(backend.below_hard_limit(), (hard, active))
            self.assertEqual(backend.state(0.0), ("up", ""))

    def test_hard_without_maxc_stays_a_candidate(self) -> None:
        """A backend C{HOST:PORT:0:1} with many connections is still offered to new clients."""
        pool = BackendPool(Clock(), [BackendSpec("127.0.0.1", 3306, 0, 1)])
        occupy(pool[0], 5)
        self.assertEqual(pool.candidates(), [pool[0]])

    def test_limits_follow_spec_changes(self) -> None:
        """Limits are read from the current spec, so a run-time spec change applies at once."""
        backend = make(maxc=1)
        occupy(backend, 1)
        self.assertFalse(backend.below_soft_limit())
        backend.spec = BackendSpec("127.0.0.1", 3306, 5, 6)
        self.assertTrue(backend.below_soft_limit())
        self.assertEqual(backend.hard_limit, 6)


class BlacklistTests(SynchronousTestCase):
    """The blacklist after a failed connect, timed by an injected clock."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1000)
        self.backend = make()

    def test_blacklisted_for_the_given_time(self) -> None:
        """A blacklisted backend stays out for exactly C{seconds}, then comes back by itself."""
        self.backend.blacklist(self.clock.seconds(), 30, "connection refused")
        self.assertTrue(self.backend.is_blacklisted(self.clock.seconds()))
        self.assertFalse(self.backend.usable(self.clock.seconds()))
        self.clock.advance(29.9)
        self.assertTrue(self.backend.is_blacklisted(self.clock.seconds()))
        self.clock.advance(0.1)
        self.assertFalse(self.backend.is_blacklisted(self.clock.seconds()))
        self.assertTrue(self.backend.usable(self.clock.seconds()))

    def test_not_blacklisted_before(self) -> None:
        """The blacklist starts at the time given, not before it (the check is against C{now})."""
        self.backend.blacklist(self.clock.seconds(), 30, "refused")
        self.assertEqual(self.backend.blacklisted_until, 1030)
        self.assertTrue(self.backend.is_blacklisted(999))
        self.assertFalse(self.backend.is_blacklisted(1030))

    def test_reason_and_failures(self) -> None:
        """Each blacklisting records its reason and counts one failure."""
        self.backend.blacklist(self.clock.seconds(), 30, "connection refused")
        self.assertEqual(self.backend.blacklist_reason, "connection refused")
        self.assertEqual(self.backend.counters.failures, 1)
        self.backend.blacklist(self.clock.seconds(), 30, "timed out")
        self.assertEqual(self.backend.blacklist_reason, "timed out")
        self.assertEqual(self.backend.counters.failures, 2)

    def test_again_restarts_the_time(self) -> None:
        """A second failure keeps the backend out for C{seconds} from the second failure."""
        self.backend.blacklist(self.clock.seconds(), 30, "refused")
        self.clock.advance(20)
        self.backend.blacklist(self.clock.seconds(), 30, "refused")
        self.clock.advance(20)
        self.assertTrue(self.backend.is_blacklisted(self.clock.seconds()))
        self.clock.advance(10)
        self.assertFalse(self.backend.is_blacklisted(self.clock.seconds()))

    def test_zero_seconds_only_counts(self) -> None:
        """Blacklisting for 0 seconds (Pen's -b 0) counts the failure but keeps the backend in."""
        self.backend.blacklist(self.clock.seconds(), 0, "refused")
        self.assertFalse(self.backend.is_blacklisted(self.clock.seconds()))
        self.assertTrue(self.backend.usable(self.clock.seconds()))
        self.assertEqual(self.backend.counters.failures, 1)

    def test_clear(self) -> None:
        """Clearing ends the blacklisting at once and forgets the reason, not the failures."""
        self.backend.blacklist(self.clock.seconds(), 30, "refused")
        self.backend.clear_blacklist()
        self.assertFalse(self.backend.is_blacklisted(self.clock.seconds()))
        self.assertTrue(self.backend.usable(self.clock.seconds()))
        self.assertEqual(self.backend.blacklist_reason, "")
        self.assertEqual(self.backend.counters.failures, 1)
        self.assertEqual(self.backend.state(self.clock.seconds()), ("up", ""))


class UsableTests(SynchronousTestCase):
    """Whether new connections may go to a backend, limits aside."""

    def test_admin_states(self) -> None:
        """Only an operator's "up" lets new connections in; drain and down keep them out."""
        backend = make()
        expected = {AdminState.UP: True, AdminState.DRAIN: False, AdminState.DOWN: False}
        for admin, usable in expected.items():
            backend.admin = admin
            self.assertEqual(backend.usable(0.0), usable, admin)

    def test_fitness(self) -> None:
        """Fit and last-resort backends are usable, unfit ones are not."""
        backend = make()
        expected = {Fitness.FIT: True, Fitness.LAST_RESORT: True, Fitness.UNFIT: False}
        for fitness, usable in expected.items():
            backend.health = Health(fitness, "checked")
            self.assertEqual(backend.usable(0.0), usable, fitness)

    def test_limits_aside(self) -> None:
        """A backend at its MAXC and HARD limits is still usable: limits are checked apart."""
        backend = make(maxc=1, hard=1)
        occupy(backend, 1)
        self.assertTrue(backend.usable(0.0))

    def test_every_condition_needed(self) -> None:
        """Up and fit but blacklisted, or up and not blacklisted but unfit, is not usable."""
        backend = make()
        backend.blacklist(0.0, 10, "refused")
        self.assertFalse(backend.usable(5.0))
        backend.clear_blacklist()
        backend.health = Health(Fitness.UNFIT, "not synced")
        self.assertFalse(backend.usable(5.0))
        backend.health = Health()
        backend.admin = AdminState.DOWN
        self.assertFalse(backend.usable(5.0))
        backend.admin = AdminState.UP
        self.assertTrue(backend.usable(5.0))


class StateTests(SynchronousTestCase):
    """The one-word state and its reason shown by the status page."""

    def test_each_state(self) -> None:
        """Each condition gives its own word and reason."""
        backend = make(maxc=2)
        self.assertEqual(backend.state(0.0), ("up", ""))
        occupy(backend, 2)
        self.assertEqual(backend.state(0.0), ("full", "2 connections, MAXC 2"))
        occupy(backend, 0)
        backend.health = Health(Fitness.LAST_RESORT, "desynced")
        self.assertEqual(backend.state(0.0), ("last-resort", "desynced"))
        backend.blacklist(0.0, 30, "connection refused")
        self.assertEqual(backend.state(10.0), ("blacklisted", "connection refused (20s left)"))
        backend.health = Health(Fitness.UNFIT, "not in the Primary component")
        self.assertEqual(backend.state(10.0), ("unfit", "not in the Primary component"))
        backend.admin = AdminState.DRAIN
        self.assertEqual(backend.state(10.0), ("draining", "draining: no new connections"))
        backend.admin = AdminState.DOWN
        self.assertEqual(backend.state(10.0), ("down", "set down by the operator"))

    def test_blacklist_expires_from_state(self) -> None:
        """Once the blacklist time has passed the state is no longer "blacklisted"."""
        clock = Clock()
        backend = make()
        backend.blacklist(clock.seconds(), 5, "timed out")
        self.assertEqual(backend.state(clock.seconds())[0], "blacklisted")
        clock.advance(5)
        self.assertEqual(backend.state(clock.seconds()), ("up", ""))

    def test_unlimited_never_full(self) -> None:
        """Without MAXC a busy backend is "up", not "full"."""
        backend = make()
        occupy(backend, 1000)
        self.assertEqual(backend.state(0.0), ("up", ""))
