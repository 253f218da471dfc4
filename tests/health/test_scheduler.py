"""
Tests for L{penbal.health.scheduler}: rounds, timeouts, rise/fall timing, and what a change
does to a backend (fitness, blacklist, live connections, log).
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from penbal.address import BackendSpec
from penbal.backend import Backend, Fitness
from penbal.health.assembly import galera_assess, tcp_assess
from penbal.health.fitness import DonorPolicy
from penbal.health.partition import ClusterViews
from penbal.health.result import CheckResult
from penbal.health.scheduler import Assess, HealthScheduler
from penbal.pool import BackendPool
from tests.health import rows
from tests.health.fakes import FakeFront, ScriptedCheck, after, pool_of

INTERVAL = 0.5
TIMEOUT = 0.5
RISE = 2
FALL = 2
BOUND = FALL * INTERVAL + TIMEOUT


class Harness:
    """A scheduler over a pool of three backends with a scripted check and a Clock."""

    def __init__(self, assess: Assess | None = None, close_unfit: bool = False,
                 donor: DonorPolicy = DonorPolicy.AVOID, **kw: float) -> None:
        self.clock = Clock()
        if assess is None:
            assess = galera_assess(donor, ClusterViews(self.clock, kw.get("interval", INTERVAL)))
        self.pool: BackendPool = pool_of(self.clock)
        self.check = ScriptedCheck(self.clock)
        for backend in self.pool:
            self.check.set(backend, lambda t: rows.seen(rows.HEALTHY))
        self.scheduler = HealthScheduler(
            self.clock, self.pool, self.check, assess,
            interval=kw.get("interval", INTERVAL), timeout=kw.get("timeout", TIMEOUT),
            rise=int(kw.get("rise", RISE)), fall=int(kw.get("fall", FALL)),
            close_unfit=close_unfit,
        )

    def step(self, limit: float) -> bool:
        """Advance to the next scheduled call, or to C{limit}; False once at C{limit}."""
        now = self.clock.seconds()
        if now >= limit:
            return False
        due = [c.getTime() for c in self.clock.getDelayedCalls()]
        self.clock.advance(min([limit, *due]) - now)
        return True

    def run_until(self, t: float) -> None:
        while self.step(t):
            pass

    def first_time(self, backend: Backend, fitness: Fitness, until: float) -> float | None:
        """Run until C{until}; when C{backend} first had C{fitness}."""
        while self.step(until):
            if backend.health.fitness is fitness:
                return self.clock.seconds()
        return None


class RoundTests(SynchronousTestCase):
    """When checks run."""

    def test_first_round_at_start(self) -> None:
        """Starting the service checks every backend at once."""
        h = Harness()
        h.scheduler.startService()
        self.assertEqual([t for _, t in h.check.calls], [0.0, 0.0, 0.0])

    def test_interval(self) -> None:
        """Rounds start every interval."""
        h = Harness()
        h.scheduler.startService()
        h.run_until(2.0)
        self.assertEqual(h.check.times(h.pool[0]), [0.0, 0.5, 1.0, 1.5, 2.0])

    def test_timeout_marks_unreachable(self) -> None:
        """A check without answer counts as failed after the timeout, naming it."""
        h = Harness()
        h.check.set(h.pool[1], lambda t: None)
        h.scheduler.startService()
        h.run_until(0.6)
        self.assertEqual(h.pool[1].health.fitness, Fitness.UNFIT)
        self.assertIn("no answer within 0.5s", h.pool[1].health.reason)

    def test_slow_checks_never_overlap(self) -> None:
        """With a timeout longer than the interval, a backend's checks still never overlap."""
        h = Harness(timeout=1.2)
        h.check.set(h.pool[0], lambda t: None)
        h.scheduler.startService()
        h.run_until(5.0)
        self.assertEqual(h.check.max_running, 1)
        # Each round waits for the frozen backend's timeout, then the next starts at once.
        self.assertEqual(h.check.times(h.pool[0])[:3], [0.0, 1.2, 2.4])

    def test_new_and_removed_backends(self) -> None:
        """A backend added to the pool is checked from the next round; a removed one is not."""
        h = Harness()
        h.scheduler.startService()
        removed = h.pool[2]
        h.pool.remove(removed)
        added = h.pool.add(BackendSpec("127.0.0.1", 3399))
        h.run_until(0.5)
        self.assertEqual(h.check.times(added), [0.5])
        self.assertEqual(h.check.times(removed), [0.0])

    def test_stop(self) -> None:
        """Stopping cancels the round under way and schedules nothing more."""
        h = Harness()
        h.check.set(h.pool[0], lambda t: None)
        h.scheduler.startService()
        h.scheduler.stopService()
        before = len(h.check.calls)
        h.run_until(3.0)
        self.assertEqual(len(h.check.calls), before)
        self.assertIs(h.pool[0].health.fitness, Fitness.FIT)


class BoundTests(SynchronousTestCase):
    """A fault at any moment takes the backend out within fall * interval + timeout."""

    def worst(self, then: CheckResult | None, fitness: Fitness) -> float:
        worst = 0.0
        for step in range(20):
            t_fault = 3.0 + step * INTERVAL / 20
            h = Harness()
            h.check.set(h.pool[0], after(t_fault, rows.seen(rows.HEALTHY), then))
            h.scheduler.startService()
            h.run_until(t_fault)
            out = h.first_time(h.pool[0], fitness, t_fault + 5)
            assert out is not None
            worst = max(worst, out - t_fault)
        return worst

    def test_desync(self) -> None:
        """A desynced node becomes a last resort within the bound."""
        self.assertLessEqual(self.worst(rows.seen(rows.DESYNCED), Fitness.LAST_RESORT),
                             BOUND + 1e-6)

    def test_rejecting(self) -> None:
        """A node rejecting queries becomes unfit within the bound."""
        self.assertLessEqual(self.worst(rows.seen(rows.REJECTING), Fitness.UNFIT), BOUND + 1e-6)

    def test_killed(self) -> None:
        """A killed node (refused) becomes unfit within the bound."""
        self.assertLessEqual(self.worst(rows.REFUSED, Fitness.UNFIT), BOUND + 1e-6)

    def test_frozen(self) -> None:
        """A frozen node (no answer) becomes unfit within the bound, timeouts included."""
        self.assertLessEqual(self.worst(None, Fitness.UNFIT), BOUND + 1e-6)

    def test_one_bad_check_is_not_enough(self) -> None:
        """A single failed check (fall=2) leaves the backend fit."""
        h = Harness()
        h.check.set(h.pool[0], lambda t: rows.REFUSED if 1.0 <= t < 1.25 else rows.seen(
            rows.HEALTHY))
        h.scheduler.startService()
        self.assertIsNone(h.first_time(h.pool[0], Fitness.UNFIT, 4.0))


class RiseTests(SynchronousTestCase):
    """Coming back takes rise good checks in a row."""

    def test_readmitted_after_rise_checks(self) -> None:
        """After a recovery the backend is fit only once RISE checks passed."""
        h = Harness(rise=3)
        h.check.set(h.pool[0], after(2.0, rows.REFUSED, rows.seen(rows.HEALTHY)))
        h.scheduler.startService()
        h.run_until(2.0)
        self.assertIs(h.pool[0].health.fitness, Fitness.UNFIT)
        back = h.first_time(h.pool[0], Fitness.FIT, 6.0)
        good = [t for t in h.check.times(h.pool[0]) if t >= 2.0]
        # Good checks at 2.0, 2.5, 3.0; the third is answered 0.05 s later.
        self.assertEqual(good[:3], [2.0, 2.5, 3.0])
        self.assertAlmostEqual(back or 0, 3.05, places=5)

    def test_flapping_never_readmitted(self) -> None:
        """Alternating good and bad checks never bring an unfit backend back."""
        h = Harness()
        h.check.set(h.pool[0], lambda t: rows.REFUSED if int(t / INTERVAL) % 2
                    else rows.seen(rows.HEALTHY))
        h.scheduler.startService()
        h.run_until(1.0)
        self.assertIs(h.pool[0].health.fitness, Fitness.FIT)
        h.check.set(h.pool[0], lambda t: rows.REFUSED)
        h.run_until(2.0)
        h.check.set(h.pool[0], lambda t: rows.REFUSED if int(t / INTERVAL) % 2
                    else rows.seen(rows.HEALTHY))
        self.assertIsNone(h.first_time(h.pool[0], Fitness.FIT, 6.0))

    def test_blacklist_cleared_on_readmission(self) -> None:
        """A backend blacklisted by a failed connect is usable again once it is fit again."""
        h = Harness(rise=1, fall=1)
        backend = h.pool[0]
        h.check.set(backend, after(1.0, rows.REFUSED, rows.seen(rows.HEALTHY)))
        h.scheduler.startService()
        backend.blacklist(h.clock.seconds(), 30.0, "Connection refused")
        h.run_until(1.2)
        self.assertTrue(backend.usable(h.clock.seconds()))

    def test_blacklist_lifted_by_a_later_passing_check(self) -> None:
        """A failed connect blacklists a node that the checks never judge unfit (an outage
        shorter than fall x interval): the first check that starts after the blacklisting
        and passes lifts it, instead of the whole -b."""
        h = Harness()  # fall 2: one failed check is not enough to judge it unfit
        backend = h.pool[0]
        h.check.set(backend, lambda t: rows.REFUSED if 0.9 <= t < 1.1 else rows.seen(rows.HEALTHY))
        h.scheduler.startService()
        h.run_until(1.05)  # the round of 1.0 found it refused; a client's connect failed too
        backend.blacklist(h.clock.seconds(), 30.0, "Connection refused")
        self.assertIs(backend.health.fitness, Fitness.FIT)
        h.run_until(1.45)
        self.assertTrue(backend.is_blacklisted(h.clock.seconds()))  # no round since
        with capturedLogs() as events:
            h.run_until(1.55)
        self.assertFalse(backend.is_blacklisted(h.clock.seconds()))
        self.assertTrue(backend.usable(h.clock.seconds()))
        self.assertEqual([e.get("penbal_event") for e in events], ["blacklist-lifted"])

    def test_blacklist_kept_by_a_check_that_began_before(self) -> None:
        """A check already under way when the connect failed proves nothing about after."""
        h = Harness()
        backend = h.pool[0]
        h.check.set(backend, lambda t: rows.seen(rows.HEALTHY))
        h.check.latency = 0.2
        h.scheduler.startService()
        backend.blacklist(h.clock.seconds() + 0.1, 30.0, "Connection refused")
        h.run_until(0.3)
        self.assertTrue(backend.is_blacklisted(h.clock.seconds()))


class DonorTests(SynchronousTestCase):
    """The donor policy through the pool's candidates."""

    def test_donor_avoided_while_a_synced_node_is_fit(self) -> None:
        """A desynced node gets no new connections while another node is fit."""
        h = Harness()
        h.check.set(h.pool[0], lambda t: rows.seen(rows.DESYNCED))
        h.scheduler.startService()
        h.run_until(0.1)
        self.assertEqual(h.pool.candidates(), [h.pool[1], h.pool[2]])

    def test_donor_used_when_nothing_else(self) -> None:
        """When every other node is unfit, the desynced one takes connections."""
        h = Harness()
        h.check.set(h.pool[0], lambda t: rows.seen(rows.DESYNCED))
        h.check.set(h.pool[1], lambda t: rows.seen(rows.REJECTING))
        h.check.set(h.pool[2], lambda t: rows.REFUSED)
        h.scheduler.startService()
        h.run_until(0.1)
        self.assertEqual(h.pool.candidates(), [h.pool[0]])
        self.assertIs(h.pool[0].health.fitness, Fitness.LAST_RESORT)

    def test_donor_never(self) -> None:
        """--donor never leaves no candidate when only a donor is left."""
        h = Harness(donor=DonorPolicy.NEVER)
        h.check.set(h.pool[0], lambda t: rows.seen(rows.DESYNCED))
        h.check.set(h.pool[1], lambda t: rows.REFUSED)
        h.check.set(h.pool[2], lambda t: rows.REFUSED)
        h.scheduler.startService()
        h.run_until(0.1)
        self.assertEqual(h.pool.candidates(), [])


class PartitionTests(SynchronousTestCase):
    """The round's cluster view."""

    def test_stale_resumed_node_unfit(self) -> None:
        """A node reporting an old configuration, while two others agree on a newer one, is
        unfit although it says Synced and Primary."""
        h = Harness()
        h.check.set(h.pool[0], lambda t: rows.seen(rows.AFTER_EVICTION))
        h.check.set(h.pool[1], lambda t: rows.seen(rows.AFTER_EVICTION))
        h.check.set(h.pool[2], lambda t: rows.seen(rows.STALE_RESUMED))
        h.scheduler.startService()
        h.run_until(0.1)
        self.assertIs(h.pool[2].health.fitness, Fitness.UNFIT)
        self.assertIn("older than conf 4", h.pool[2].health.reason)
        self.assertIs(h.pool[0].health.fitness, Fitness.FIT)

    def test_stale_node_unfit_on_a_tie(self) -> None:
        """The third node's check times out in every round: the stale node ties one against
        one with a current node, and is still unfit (configuration ids only grow)."""
        h = Harness()
        h.check.set(h.pool[0], lambda t: rows.seen(rows.AFTER_EVICTION))
        h.check.set(h.pool[1], lambda t: rows.FROZEN)
        h.check.set(h.pool[2], lambda t: rows.seen(rows.STALE_RESUMED))
        h.scheduler.startService()
        h.run_until(3.0)
        self.assertIs(h.pool[2].health.fitness, Fitness.UNFIT)
        self.assertIs(h.pool[0].health.fitness, Fitness.FIT)

    def test_stale_lone_voter_unfit_while_remembered(self) -> None:
        """The two current nodes go non-Primary (a view change) while the stale node still
        says Primary: it is the only voter, and stays unfit while conf 4 is remembered."""
        h = Harness(fall=1, rise=1)
        h.check.set(h.pool[0], after(1.0, rows.seen(rows.AFTER_EVICTION),
                                     rows.seen(rows.NON_PRIMARY)))
        h.check.set(h.pool[1], after(1.0, rows.seen(rows.AFTER_EVICTION),
                                     rows.seen(rows.NON_PRIMARY)))
        h.check.set(h.pool[2], lambda t: rows.seen(rows.STALE_RESUMED))
        h.scheduler.startService()
        h.run_until(4.0)
        self.assertIs(h.pool[0].health.fitness, Fitness.UNFIT)
        self.assertIs(h.pool[2].health.fitness, Fitness.UNFIT)
        self.assertEqual(h.pool.candidates(), [])


class ChangeTests(SynchronousTestCase):
    """What a change does."""

    def test_close_unfit(self) -> None:
        """With --on-unfit close, the live connections of a backend that became unfit are
        closed, saying why."""
        h = Harness(close_unfit=True, fall=1)
        fronts = [FakeFront(), FakeFront()]
        h.pool[0].live.update(fronts)
        h.check.set(h.pool[0], after(1.0, rows.seen(rows.HEALTHY), rows.seen(rows.NON_PRIMARY)))
        h.scheduler.startService()
        h.run_until(1.1)
        self.assertEqual([f.closed for f in fronts], [True, True])
        self.assertIn("non-Primary", fronts[0].ended_by)

    def test_keep_by_default(self) -> None:
        """By default the connections of an unfit backend are kept."""
        h = Harness(fall=1)
        front = FakeFront()
        h.pool[0].live.add(front)
        h.check.set(h.pool[0], lambda t: rows.seen(rows.NON_PRIMARY))
        h.scheduler.startService()
        h.run_until(1.1)
        self.assertFalse(front.closed)

    def test_last_resort_keeps_connections(self) -> None:
        """A backend that became a last resort keeps its connections even with close."""
        h = Harness(close_unfit=True, fall=1)
        front = FakeFront()
        h.pool[0].live.add(front)
        h.check.set(h.pool[0], lambda t: rows.seen(rows.DESYNCED))
        h.scheduler.startService()
        h.run_until(1.1)
        self.assertFalse(front.closed)

    def test_state_kept_for_status(self) -> None:
        """The health keeps the wsrep values, latency, last error and since when."""
        h = Harness()
        h.check.set(h.pool[0], after(1.0, rows.seen(rows.HEALTHY), rows.REFUSED))
        h.scheduler.startService()
        h.run_until(2.0)
        health = h.pool[0].health
        self.assertEqual(health.since, 1.55)
        self.assertEqual(health.details["last_error"], rows.REFUSED.error)
        self.assertEqual(h.pool[1].health.details["wsrep_local_state_comment"], "Synced")
        self.assertEqual(h.pool[1].health.details["latency"], 0.04)

    def test_pending_shown(self) -> None:
        """A change under way is shown in the details."""
        h = Harness()
        h.check.set(h.pool[0], after(1.0, rows.seen(rows.HEALTHY), rows.REFUSED))
        h.scheduler.startService()
        h.run_until(1.1)
        self.assertEqual(h.pool[0].health.details["pending"], "down to unfit: 1 of 2 checks")

    def test_change_logged(self) -> None:
        """Each change is logged once with the backend, fitness and reason."""
        h = Harness()
        h.check.set(h.pool[0], after(1.0, rows.seen(rows.HEALTHY), rows.REFUSED))
        with capturedLogs() as events:
            h.scheduler.startService()
            h.run_until(3.0)
        changes = [e for e in events if e.get("penbal_event") == "health"]
        first = [(e["backend"], e["fitness"]) for e in changes]
        self.assertEqual(first, [("127.0.0.1:3361", "fit"), ("127.0.0.1:3362", "fit"),
                                 ("127.0.0.1:3363", "fit"), ("127.0.0.1:3361", "unfit")])
        self.assertIn("Connection refused", changes[-1]["reason"])

    def test_tcp_assess(self) -> None:
        """The TCP judgement is reachability alone."""
        h = Harness(assess=tcp_assess, fall=1)
        h.check.set(h.pool[0], lambda t: CheckResult(False, error="Connection refused"))
        h.scheduler.startService()
        h.run_until(0.1)
        self.assertEqual(h.pool[0].health.reason, "Connection refused")
