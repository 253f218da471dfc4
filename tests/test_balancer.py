# -*- test-case-name: tests.test_balancer -*-
"""
Tests of the balancer shared by TCP and UDP relaying: Pen's settings, the order of backends to
try (the pool's candidates, the per-server access lists, the policy) and what the policy is
told about connections.
"""

from __future__ import annotations

from collections.abc import Sequence

from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from penbal.address import BackendSpec
from penbal.backend import AdminState, Backend, Fitness, Health
from penbal.balancer import POLICY_REPORT_INTERVAL, Balancer, Settings
from penbal.clienttable import ClientTable
from penbal.interfaces import ClientInfo, ISelectionPolicy, PolicyContext
from penbal.policies.choice import PolicyChoice
from penbal.policies.naming import policy_name
from penbal.policies.plugin import PolicyPlugin
from penbal.policies.registry import make_policy
from penbal.policies.roundrobin import RoundRobinPolicy
from penbal.policies.sticky import StickyPolicy
from penbal.pool import BackendPool
from tests.occupancy import occupy

CLIENT = ClientInfo("127.0.0.2", 5000)


@implementer(ISelectionPolicy)
class RecordingPolicy:
    """A policy that records what it is given and returns the candidates in reverse."""

    def __init__(self) -> None:
        self.choices: list[tuple[ClientInfo, list[Backend]]] = []
        self.connections: list[tuple[ClientInfo, Backend]] = []

    def choose(self, client: ClientInfo, candidates: Sequence[Backend]) -> Sequence[Backend]:
        self.choices.append((client, list(candidates)))
        return list(reversed(candidates))

    def connected(self, client: ClientInfo, backend: Backend) -> None:
        self.connections.append((client, backend))


class SettingsTests(SynchronousTestCase):
    """Pen's knobs."""

    def test_pen_defaults(self) -> None:
        """The defaults are Pen's (and penbal's documented ones): -t 3, -b 30, -x 500."""
        settings = Settings()
        self.assertEqual(settings.timeout, 3.0)
        self.assertEqual(settings.blacklist, 30.0)
        self.assertEqual(settings.max_connections, 500)
        self.assertFalse(settings.stubborn)
        self.assertIsNone(settings.emergency)

    def test_changeable(self) -> None:
        """Settings can be changed at run time, and each balancer's instance is its own."""
        one, two = Settings(), Settings(timeout=1.5, stubborn=True)
        one.blacklist = 5.0
        self.assertEqual((one.blacklist, two.blacklist), (5.0, 30.0))
        self.assertEqual((two.timeout, two.stubborn), (1.5, True))


class BalancerCase(SynchronousTestCase):
    """A balancer over three backends on ports 4000.., with a recording policy."""

    def setUp(self) -> None:
        self.clock = Clock()
        specs = [BackendSpec("127.0.0.1", 4000 + i) for i in range(3)]
        self.pool = BackendPool(self.clock, specs)
        self.policy = RecordingPolicy()
        self.settings = Settings()
        self.balancer = Balancer(self.pool, self.policy, self.settings)


class OrderTests(BalancerCase):
    """order(): the candidates, filtered by the access lists, ordered by the policy."""

    def test_keeps_its_parts(self) -> None:
        """The balancer exposes its pool, policy and settings; no access lists by default."""
        self.assertIs(self.balancer.pool, self.pool)
        self.assertIs(self.balancer.policy, self.policy)
        self.assertIs(self.balancer.settings, self.settings)
        self.assertIsNone(self.balancer.admits)

    def test_policy_orders_the_candidates(self) -> None:
        """The policy gets the client and the pool's candidates; its order is the result."""
        order = self.balancer.order(CLIENT)
        self.assertEqual(self.policy.choices, [(CLIENT, list(self.pool))])
        self.assertEqual(list(order), [self.pool[2], self.pool[1], self.pool[0]])

    def test_only_candidates_offered(self) -> None:
        """Backends that are not candidates (down, blacklisted) never reach the policy."""
        self.pool[0].admin = AdminState.DOWN
        self.pool[2].blacklist(self.clock.seconds(), 30, "refused")
        self.assertEqual(list(self.balancer.order(CLIENT)), [self.pool[1]])
        self.assertEqual(self.policy.choices[-1][1], [self.pool[1]])
        self.clock.advance(30)
        self.assertEqual(list(self.balancer.order(CLIENT)), [self.pool[2], self.pool[1]])

    def test_last_resort_reaches_policy_only_when_alone(self) -> None:
        """The policy sees a last-resort backend only when no fit one is usable."""
        self.pool[1].health = Health(Fitness.LAST_RESORT, "donor")
        self.balancer.order(CLIENT)
        self.assertEqual(self.policy.choices[-1][1], [self.pool[0], self.pool[2]])
        self.pool[0].health = Health(Fitness.UNFIT, "non-Primary")
        self.pool[2].admin = AdminState.DRAIN
        self.assertEqual(list(self.balancer.order(CLIENT)), [self.pool[1]])

    def test_no_candidates(self) -> None:
        """With no candidate the order is empty and the policy is not asked."""
        for backend in self.pool:
            backend.admin = AdminState.DOWN
        self.assertEqual(list(self.balancer.order(CLIENT)), [])
        self.assertEqual(self.policy.choices, [])

    def test_admits_filters(self) -> None:
        """The per-server access lists are asked for each candidate; refused ones are dropped."""
        asked: list[tuple[ClientInfo, Backend]] = []

        def admits(client: ClientInfo, backend: Backend) -> bool:
            asked.append((client, backend))
            return backend.index != 1

        self.balancer.admits = admits
        order = self.balancer.order(CLIENT)
        self.assertEqual(asked, [(CLIENT, b) for b in self.pool])
        self.assertEqual(self.policy.choices, [(CLIENT, [self.pool[0], self.pool[2]])])
        self.assertEqual(list(order), [self.pool[2], self.pool[0]])

    def test_admits_only_asked_about_candidates(self) -> None:
        """The access lists are consulted after the pool's filter, not for unusable backends."""
        asked: list[Backend] = []

        def admits(client: ClientInfo, backend: Backend) -> bool:
            asked.append(backend)
            return True

        self.balancer.admits = admits
        self.pool[1].admin = AdminState.DOWN
        self.balancer.order(CLIENT)
        self.assertEqual(asked, [self.pool[0], self.pool[2]])

    def test_admits_depend_on_client(self) -> None:
        """Each client is checked on its own address."""
        self.balancer.admits = lambda client, backend: (
            client.host.startswith("127.0.1.") or backend.index == 0
        )
        self.assertEqual(len(self.balancer.order(ClientInfo("127.0.1.3"))), 3)
        self.assertEqual(list(self.balancer.order(ClientInfo("127.0.2.1"))), [self.pool[0]])

    def test_admits_refusing_all(self) -> None:
        """When the access lists refuse every candidate the order is empty, the policy unasked."""
        self.balancer.admits = lambda client, backend: False
        self.assertEqual(list(self.balancer.order(CLIENT)), [])
        self.assertEqual(self.policy.choices, [])

    def test_admits_removed(self) -> None:
        """Setting admits back to None lets every candidate through again."""
        self.balancer.admits = lambda client, backend: False
        self.balancer.admits = None
        self.assertEqual(len(self.balancer.order(CLIENT)), 3)

    def test_follows_pool_changes(self) -> None:
        """Backends added to or removed from the pool are seen by the next order."""
        added = self.pool.add(BackendSpec("127.0.0.1", 5000))
        self.pool.remove(self.pool[0])
        self.assertEqual(list(self.balancer.order(CLIENT)), [added, self.pool[1], self.pool[0]])

    def test_with_a_real_policy(self) -> None:
        """With Pen's round-robin the turn moves on, skipping what is not a candidate."""
        balancer = Balancer(self.pool, RoundRobinPolicy(), self.settings)
        firsts = [balancer.order(CLIENT)[0].index for _ in range(4)]
        self.assertEqual(firsts, [1, 2, 0, 1])
        self.pool[2].admin = AdminState.DOWN
        firsts = [balancer.order(CLIENT)[0].index for _ in range(3)]
        self.assertEqual(firsts, [0, 1, 0])


class ConnectedTests(BalancerCase):
    """connected(): the policy learns where clients went, except to the emergency server."""

    def test_told(self) -> None:
        """The policy is told the client and the backend it was connected to."""
        self.balancer.connected(CLIENT, self.pool[1])
        self.assertEqual(self.policy.connections, [(CLIENT, self.pool[1])])

    def test_not_told_about_emergency(self) -> None:
        """A connection to the emergency server is kept from the policy."""
        emergency = Backend(BackendSpec("127.0.0.1", 9000), -1)
        self.settings.emergency = emergency
        self.balancer.connected(CLIENT, emergency)
        self.assertEqual(self.policy.connections, [])
        self.balancer.connected(CLIENT, self.pool[0])
        self.assertEqual(self.policy.connections, [(CLIENT, self.pool[0])])

    def test_emergency_by_identity(self) -> None:
        """Only the emergency backend object itself is kept back, not one with its address."""
        self.settings.emergency = Backend(BackendSpec("127.0.0.1", 4000), -1)
        self.balancer.connected(CLIENT, self.pool[0])
        self.assertEqual(self.policy.connections, [(CLIENT, self.pool[0])])

    def test_emergency_changed_at_run_time(self) -> None:
        """The emergency server is read from the settings at each connection."""
        old = Backend(BackendSpec("127.0.0.1", 9000), -1)
        self.settings.emergency = old
        self.settings.emergency = Backend(BackendSpec("127.0.0.1", 9001), -1)
        self.balancer.connected(CLIENT, old)
        self.assertEqual(self.policy.connections, [(CLIENT, old)])
        self.settings.emergency = None
        self.balancer.connected(CLIENT, self.pool[2])
        self.assertEqual(len(self.policy.connections), 2)

    def test_sticky_client_keeps_its_backend(self) -> None:
        """A sticky client sent to the emergency server goes back to its own backend later."""
        policy = StickyPolicy(ClientTable(self.clock), RoundRobinPolicy())
        verifyObject(ISelectionPolicy, policy)
        balancer = Balancer(self.pool, policy, self.settings)
        self.settings.emergency = Backend(BackendSpec("127.0.0.1", 9000), -1)
        first = balancer.order(CLIENT)[0]
        balancer.connected(CLIENT, first)
        for backend in self.pool:
            backend.blacklist(self.clock.seconds(), 30, "refused")
        self.assertEqual(list(balancer.order(CLIENT)), [])
        balancer.connected(CLIENT, self.settings.emergency)
        self.clock.advance(30)
        balancer.order(ClientInfo("127.0.0.3"))  # another client moves the round-robin on
        self.assertIs(balancer.order(CLIENT)[0], first)


@implementer(ISelectionPolicy)
class BrokenPolicy:
    """A third party's policy whose choose() does what it is told to: raise or return junk."""

    def __init__(self, result: object = None, error: Exception | None = None) -> None:
        self.result = result
        self.error = error
        self.calls = 0

    def choose(self, client: ClientInfo, candidates: Sequence[Backend]) -> Sequence[Backend]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]

    def connected(self, client: ClientInfo, backend: Backend) -> None:
        pass


class CustomRoundRobin(RoundRobinPolicy):
    """A third party's round-robin that returns a non-candidate, and records connections."""

    def __init__(self, junk: Backend) -> None:
        super().__init__()
        self.junk = junk
        self.told: list[Backend] = []

    def choose(self, client: ClientInfo, candidates: Sequence[Backend]) -> Sequence[Backend]:
        return [self.junk, *super().choose(client, candidates)]

    def connected(self, client: ClientInfo, backend: Backend) -> None:
        self.told.append(backend)


class OwnRoundRobinTests(BalancerCase):
    """penbal's own round-robin is trusted (its order is not checked, it is not told of
    connections: it learns nothing from them); a subclass is a third party's policy."""

    def test_order_as_returned(self) -> None:
        """The round-robin's order is the result, as it returned it."""
        policy = RoundRobinPolicy()
        self.balancer = Balancer(self.pool, policy, self.settings)
        returned: list[Sequence[Backend]] = []
        choose = policy.choose

        def recorded(client: ClientInfo, candidates: Sequence[Backend]) -> Sequence[Backend]:
            returned.append(choose(client, candidates))
            return returned[-1]

        policy.choose = recorded  # type: ignore[method-assign]
        order = self.balancer.order(CLIENT)
        self.assertIs(order, returned[0])
        self.assertEqual([b.index for b in order], [1, 2, 0])
        self.balancer.connected(CLIENT, self.pool[1])  # nothing to tell: no error

    def test_subclass_checked_and_told(self) -> None:
        """A subclass's order is checked (the non-candidate refused, round-robin instead)
        and it hears of connections."""
        stranger = Backend(BackendSpec("127.0.0.1", 4000), 0)
        policy = CustomRoundRobin(stranger)
        self.balancer = Balancer(self.pool, policy, self.settings)
        with capturedLogs() as events:
            order = self.balancer.order(CLIENT)
        self.assertEqual([b.index for b in order], [1, 2, 0])
        self.assertNotIn(stranger, order)
        self.assertEqual(self.balancer.policy_failures, 1)
        self.assertTrue(any(e.get("log_level") is LogLevel.error for e in events))
        self.balancer.connected(CLIENT, self.pool[2])
        self.assertEqual(policy.told, [self.pool[2]])


class BrokenPolicyTests(BalancerCase):
    """order() survives a policy that raises or names backends that were not candidates."""

    def use(self, policy: ISelectionPolicy) -> Balancer:
        self.balancer = Balancer(self.pool, policy, self.settings)
        return self.balancer

    def orders(self, count: int) -> tuple[list[list[int]], list[str]]:
        """C{count} orders (as table positions) and the error lines logged meanwhile."""
        with capturedLogs() as events:
            got = [[b.index for b in self.balancer.order(CLIENT)] for _ in range(count)]
        lines = [formatEvent(e) for e in events if e.get("log_level") is LogLevel.error]
        return got, lines

    def test_raising_policy_falls_back_to_roundrobin(self) -> None:
        """choose() raising: the candidates in round-robin order, one line naming the policy."""
        self.use(BrokenPolicy(error=ValueError("no idea\nsecond line")))
        got, lines = self.orders(3)
        self.assertEqual(got, [[1, 2, 0], [2, 0, 1], [0, 1, 2]])
        [line] = lines
        self.assertIn("policy tests.test_balancer.BrokenPolicy failed to order the backends", line)
        self.assertIn("raised ValueError: no idea;", line)
        self.assertIn("using round-robin over the 3 candidates instead", line)
        self.assertNotIn("\n", line)
        self.assertEqual(self.balancer.policy_failures, 3)

    def test_non_candidate_falls_back(self) -> None:
        """A backend that is not a candidate (here: blacklisted) is never tried."""
        self.pool[1].blacklist(self.clock.seconds(), 30, "refused")
        self.use(BrokenPolicy(result=[self.pool[1], self.pool[0]]))
        got, [line] = self.orders(1)
        self.assertEqual(got, [[2, 0]])
        self.assertIn(f"it returned {self.pool[1]!r}, which is not one of the candidates", line)

    def test_foreign_backend_falls_back(self) -> None:
        """A backend of another table, even with a candidate's address, is refused."""
        stranger = Backend(BackendSpec("127.0.0.1", 4000), 0)
        self.use(BrokenPolicy(result=[stranger]))
        got, [line] = self.orders(1)
        self.assertEqual(got, [[1, 2, 0]])
        self.assertIn("which is not one of the candidates", line)

    def test_not_a_backend_falls_back(self) -> None:
        """Returning None, a string or a list of addresses is a failure too."""
        for result in (None, "127.0.0.1:4000", ["127.0.0.1:4000"], 7):
            self.use(BrokenPolicy(result=result))
            got, [line] = self.orders(1)
            self.assertEqual(len(got[0]), 3, result)
            self.assertIn("it returned", line)

    def test_fallback_respects_maxc(self) -> None:
        """The fallback order, like round-robin, leaves out backends at MAXC."""
        occupy(self.pool.add(BackendSpec("127.0.0.1", 4003, 1, 2)), 1)
        self.use(BrokenPolicy(error=RuntimeError("boom")))
        got, _ = self.orders(1)
        self.assertEqual(got, [[1, 2, 0]])

    def test_repeats_dropped_silently(self) -> None:
        """A candidate named twice is tried once; that is no failure."""
        self.use(BrokenPolicy(result=[self.pool[2], self.pool[2], self.pool[0]]))
        got, lines = self.orders(1)
        self.assertEqual((got, lines), ([[2, 0]], []))
        self.assertEqual(self.balancer.policy_failures, 0)

    def test_empty_choice_is_respected(self) -> None:
        """An empty order is a policy's legitimate "no backend", not a failure."""
        self.use(BrokenPolicy(result=[]))
        got, lines = self.orders(1)
        self.assertEqual((got, lines), ([[]], []))

    def test_reports_at_most_once_per_interval(self) -> None:
        """A policy failing on every connection logs one line, then one per interval with
        the number of failures it did not report."""
        self.use(BrokenPolicy(error=KeyError("x")))
        _, lines = self.orders(5)
        self.assertEqual(len(lines), 1)
        self.clock.advance(POLICY_REPORT_INTERVAL - 1)
        _, lines = self.orders(2)
        self.assertEqual(lines, [])
        self.clock.advance(1)
        _, [line] = self.orders(3)
        self.assertIn("(6 more failures since the last report)", line)
        self.assertEqual(self.balancer.policy_failures, 10)

    def test_connection_proceeds_and_policy_is_told(self) -> None:
        """The fallback choice is a normal one: the policy still hears where the client went."""
        policy = BrokenPolicy(error=ValueError("x"))
        told: list[Backend] = []
        policy.connected = lambda client, backend: told.append(backend)  # type: ignore[method-assign]
        balancer = self.use(policy)
        with capturedLogs():
            first = balancer.order(CLIENT)[0]
        balancer.connected(CLIENT, first)
        self.assertEqual(told, [first])

    def test_named_by_plugin_name(self) -> None:
        """A policy built by the registry is named by its plugin name and its class."""
        plugin = PolicyPlugin("acme-broken", "raises", lambda context: BrokenPolicy(
            error=ZeroDivisionError("division by zero")))
        context = PolicyContext(clock=self.clock, random=__import__("random").Random(1))
        policy = make_policy(PolicyChoice("acme-broken"), context, {"acme-broken": plugin})
        self.assertEqual(policy_name(policy),
                         "policy 'acme-broken' (tests.test_balancer.BrokenPolicy)")
        self.use(policy)
        _, [line] = self.orders(1)
        self.assertIn("policy 'acme-broken' (tests.test_balancer.BrokenPolicy) failed", line)
        self.assertIn("raised ZeroDivisionError: division by zero", line)

    def test_sticky_over_broken_base(self) -> None:
        """Even inside the sticky policy (a broken base for new clients) the client is placed."""
        self.use(StickyPolicy(ClientTable(self.clock), BrokenPolicy(error=ValueError("x"))))
        got, [line] = self.orders(1)
        self.assertEqual(got, [[1, 2, 0]])
        self.assertIn("policy penbal.policies.sticky.StickyPolicy failed", line)


class AttemptFailedTests(BalancerCase):
    """attempt_failed(): the one place a failed connection to a backend is judged."""

    def test_blacklists_and_logs(self) -> None:
        """A backend that failed is blacklisted for -b seconds, with the reason, in one line."""
        self.settings.blacklist = 30
        self.clock.advance(100)
        backend = self.pool[1]
        with capturedLogs() as events:
            self.balancer.attempt_failed(backend, "connection refused")
        self.assertTrue(backend.is_blacklisted(129.0))
        self.assertFalse(backend.is_blacklisted(130.0))
        self.assertEqual(backend.blacklist_reason, "connection refused")
        self.assertEqual(backend.counters.failures, 1)
        self.assertEqual(
            [formatEvent(e) for e in events],
            ["backend 127.0.0.1:4001 failed (connection refused): blacklisted for 30s"],
        )
        self.assertEqual(events[0]["log_level"], LogLevel.warn)

    def test_emergency_counted_never_blacklisted(self) -> None:
        """The emergency server's failure is counted and logged; it is never blacklisted."""
        emergency = Backend(BackendSpec("127.0.0.1", 4999), -1)
        self.settings.emergency = emergency
        with capturedLogs() as events:
            self.balancer.attempt_failed(emergency, "timed out")
        self.assertFalse(emergency.is_blacklisted(self.clock.seconds()))
        self.assertEqual(emergency.counters.failures, 1)
        self.assertEqual([formatEvent(e) for e in events],
                         ["emergency server 127.0.0.1:4999 failed (timed out)"])
