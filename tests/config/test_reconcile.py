# -*- test-case-name: tests.config.test_reconcile -*-
"""
Tests of making a running balancer match a configuration, keeping what is live.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from penbal.address import BackendSpec
from penbal.backend import AdminState
from penbal.config.model import BackendEntry
from penbal.config.reconcile import ReconcileError, capture, match, reconcile
from penbal.policies.choice import PolicyChoice
from tests.control.fixtures import connect, make_runtime


class MatchTests(SynchronousTestCase):
    """Entries of a file are tied to running backends by address."""

    def test_by_address_in_order(self) -> None:
        """Same address -> the running backend; a new address stays unmatched."""
        runtime, _ = make_runtime(("127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:1"))
        pool = runtime.balancer.pool
        desired = replace(
            runtime.base,
            backends=(
                BackendEntry(BackendSpec("127.0.0.1", 1)),
                BackendEntry(BackendSpec("127.0.0.1", 1)),
                BackendEntry(BackendSpec("127.0.0.1", 3)),
            ),
        )
        matched = [entry.backend for entry in match(desired, runtime).backends]
        self.assertEqual(matched, [pool[0], pool[2], None])


class ReconcileTests(SynchronousTestCase):
    """A diff applied to the running balancer."""

    def setUp(self) -> None:
        self.runtime, self.harness = make_runtime()

    def test_same_configuration_changes_nothing(self) -> None:
        """The running configuration applied again is no change."""
        self.assertEqual(reconcile(self.runtime, capture(self.runtime)), [])

    def test_kept_backend_keeps_everything(self) -> None:
        """A changed backend keeps its connections, counters, drain and blacklist state."""
        front: Any = connect(self.harness)
        backend = front.backend
        backend.admin = AdminState.DRAIN
        backend.blacklisted_until = self.runtime.now() + 50
        desired = replace(
            self.runtime.base,
            backends=tuple(
                replace(e, spec=replace(e.spec, weight=5)) for e in self.runtime.base.backends
            ),
        )
        changes = reconcile(self.runtime, match(desired, self.runtime))
        self.assertEqual(len(changes), 2)
        self.assertIn(front, backend.live)
        self.assertEqual(backend.counters.total, 1)
        self.assertEqual(backend.admin, AdminState.DRAIN)
        self.assertTrue(backend.is_blacklisted(self.runtime.now()))
        self.assertEqual(backend.spec.weight, 5)

    def test_added_and_removed(self) -> None:
        """A missing backend is added at the end; an unwanted idle one is removed."""
        desired = replace(
            self.runtime.base,
            backends=(self.runtime.base.backends[1], BackendEntry(BackendSpec("127.0.0.1", 9))),
        )
        changes = reconcile(self.runtime, match(desired, self.runtime))
        self.assertEqual([b.address for b in self.runtime.balancer.pool],
                         ["127.0.0.1:4001", "127.0.0.1:9"])
        self.assertEqual(changes, ["removed server 127.0.0.1:4000",
                                   "added server 1 127.0.0.1:9:0:0:0:0"])

    def test_policy_failure_changes_nothing(self) -> None:
        """A policy that cannot be built refuses the whole configuration."""
        before = capture(self.runtime)
        desired = replace(before, policy=PolicyChoice("nosuch"), timeout=9.0, backends=())
        with self.assertRaises(ReconcileError):
            reconcile(self.runtime, desired)
        self.assertEqual(capture(self.runtime), before)

    def test_settings(self) -> None:
        """Settings, emergency and access lists are set; each change is reported."""
        desired = replace(capture(self.runtime), timeout=1.5, conn_max=7, stubborn=True,
                          emergency=BackendSpec("127.0.0.1", 99), control_acl=3)
        changes = reconcile(self.runtime, desired)
        settings = self.runtime.balancer.settings
        self.assertEqual((settings.timeout, settings.max_connections, settings.stubborn),
                         (1.5, 7, True))
        assert settings.emergency is not None
        self.assertEqual(settings.emergency.address, "127.0.0.1:99")
        self.assertEqual(self.runtime.control_acl, 3)
        self.assertEqual(len(changes), 5)

    def test_accepting_resumes_when_conn_max_rises(self) -> None:
        """Raising conn_max lets a relay that stopped accepting accept again at once."""
        self.runtime.balancer.settings.max_connections = 1
        connect(self.harness)
        self.assertFalse(self.harness.port.reading)
        reconcile(self.runtime, replace(capture(self.runtime), conn_max=10))
        self.assertTrue(self.harness.port.reading)

    def test_file_order_wins(self) -> None:
        """The table is numbered as the desired configuration lists it; live backends kept."""
        pool = self.runtime.balancer.pool
        first, second = list(pool)
        desired = replace(
            self.runtime.base,
            backends=(BackendEntry(BackendSpec("127.0.0.1", 9)),
                      *reversed(self.runtime.base.backends)),
        )
        changes = reconcile(self.runtime, match(desired, self.runtime))
        self.assertEqual([b.address for b in pool], ["127.0.0.1:9", "127.0.0.1:4001",
                                                     "127.0.0.1:4000"])
        self.assertEqual([b.index for b in pool], [0, 1, 2])
        self.assertEqual((pool[1], pool[2]), (second, first))
        self.assertEqual(changes, ["added server 0 127.0.0.1:9:0:0:0:0",
                                   "servers renumbered: 0 127.0.0.1:9, 1 127.0.0.1:4001, "
                                   "2 127.0.0.1:4000"])
        self.assertEqual(reconcile(self.runtime, match(desired, self.runtime)), [])

    def test_draining_backend_keeps_its_place(self) -> None:
        """A backend draining out of the table keeps its number; the others take the rest."""
        pool = self.runtime.balancer.pool
        pool.add(BackendSpec("127.0.0.1", 4002))
        busy: Any = connect(self.harness)
        leaving = busy.backend
        kept = [b for b in pool if b is not leaving]
        desired = replace(self.runtime.base, backends=tuple(
            BackendEntry(b.spec) for b in reversed(kept)))
        reconcile(self.runtime, match(desired, self.runtime))
        self.assertIn(leaving, pool.retiring)
        self.assertIs(pool[leaving.index], leaving)
        self.assertEqual([b for b in pool if b is not leaving], list(reversed(kept)))

    def test_reorder_needs_the_same_backends(self) -> None:
        """The pool refuses an order that is not its own backends."""
        pool = self.runtime.balancer.pool
        with self.assertRaises(ValueError):
            pool.reorder([pool[0]])
        self.assertEqual(len(pool), 2)
