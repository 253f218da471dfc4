# -*- test-case-name: tests.status.test_snapshot -*-
"""
Tests of the one status snapshot every view reads.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from penbal.backend import AdminState, Fitness
from penbal.status.snapshot import build_snapshot, render_json
from tests.control.fixtures import connect, make_runtime


class SnapshotTests(SynchronousTestCase):
    """What the snapshot holds."""

    def setUp(self) -> None:
        self.runtime, self.harness = make_runtime()

    def test_backends_with_state_and_reason(self) -> None:
        """Each backend has its state word and why."""
        pool = self.runtime.balancer.pool
        pool[0].admin = AdminState.DRAIN
        pool[1].blacklist(self.runtime.now(), 30, "Connection refused")
        backends = build_snapshot(self.runtime).backends
        self.assertEqual((backends[0].state, backends[0].reason),
                         ("draining", "draining: no new connections"))
        self.assertEqual(backends[1].state, "blacklisted")
        self.assertIn("Connection refused", backends[1].reason)
        self.assertEqual(backends[1].blacklisted_for, 30)

    def test_removing(self) -> None:
        """A backend draining out of the table says so."""
        front: Any = connect(self.harness)
        self.runtime.balancer.pool.retire(front.backend)
        status = build_snapshot(self.runtime).backends[front.backend.index]
        self.assertEqual(status.state, "removing")
        self.assertTrue(status.removing)

    def test_counters_connections_and_recent(self) -> None:
        """Counters come from the backends, live connections from the relay, recent from the log."""
        front: Any = connect(self.harness, "127.10.1.1", 999)
        front.dataReceived(b"hello")
        snapshot = build_snapshot(self.runtime)
        self.assertEqual((snapshot.connections_active, snapshot.connections_accepted), (1, 1))
        self.assertEqual(snapshot.connections[0].client, "127.10.1.1:999")
        self.assertEqual(snapshot.connections[0].bytes_in, 5)
        counters = snapshot.backends[front.backend.index].counters
        self.assertEqual((counters["active"], counters["total"], counters["bytes_to_backend"]),
                         (1, 1, 5))
        front.connectionLost(Failure(ConnectionDone()))
        snapshot = build_snapshot(self.runtime)
        self.assertEqual(snapshot.connections, [])
        self.assertEqual(snapshot.recent[0].client, "127.10.1.1:999")
        self.assertEqual(snapshot.recent[0].bytes_in, 5)

    def test_health_details(self) -> None:
        """Health and wsrep values are shown as JSON-safe data."""
        health = self.runtime.balancer.pool[0].health
        health.fitness = Fitness.LAST_RESORT
        health.reason = "donor"
        health.details = {"wsrep_local_state": 2, "wsrep_local_state_comment": "Donor/Desynced",
                          "odd": object(), "nan": float("nan")}
        status = build_snapshot(self.runtime).backends[0]
        self.assertEqual(status.state, "last-resort")
        self.assertEqual(status.health["wsrep_local_state"], 2)
        self.assertEqual(status.health["nan"], "nan")
        json.loads(render_json(build_snapshot(self.runtime)))

    def test_settings(self) -> None:
        """The settings and the policy are in the snapshot."""
        snapshot = build_snapshot(self.runtime)
        self.assertEqual(snapshot.policy, "sticky")
        self.assertEqual(snapshot.settings["conn_max"], 500)
        self.assertEqual(snapshot.mode, "no hash no roundrobin no stubborn no weight no prio")
