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
from penbal.udp.relay import WAITING_LIMIT
from tests.control.fixtures import connect, make_runtime
from tests.udp.fixtures import UDPHarness, udp_runtime


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


class UDPSnapshotTests(SynchronousTestCase):
    """In UDP mode: sessions as connections, datagram counters, the front side's figures."""

    def setUp(self) -> None:
        self.harness = UDPHarness(backends=2, capacity=3, idle=10,
                                  admit=lambda client: client.host != "127.10.9.9")
        self.runtime = udp_runtime(self.harness)

    def test_tcp_mode_has_no_udp_figures(self) -> None:
        """Without a UDP relay the snapshot's C{udp} is None (null in JSON)."""
        runtime, _ = make_runtime()
        snapshot = build_snapshot(runtime)
        self.assertIsNone(snapshot.udp)
        self.assertIsNone(json.loads(render_json(snapshot))["udp"])

    def test_sessions_are_live_connections(self) -> None:
        """Live sessions count as active connections and are listed; started ones as accepted."""
        h = self.harness
        for port in (1, 2):
            h.send(b"hello", host="127.10.0.1", port=port)
        snapshot = build_snapshot(self.runtime)
        self.assertEqual((snapshot.connections_active, snapshot.connections_accepted), (2, 2))
        assert snapshot.udp is not None
        self.assertEqual((snapshot.udp.sessions_active, snapshot.udp.sessions), (2, 2))
        self.assertEqual(sorted(c.client for c in snapshot.connections),
                         ["127.10.0.1:1", "127.10.0.1:2"])
        self.assertEqual({c.backend for c in snapshot.connections}, {"127.0.0.1:5001"})
        self.assertEqual([c.bytes_in for c in snapshot.connections], [5, 5])
        h.clock.advance(12)
        snapshot = build_snapshot(self.runtime)
        self.assertEqual((snapshot.connections_active, snapshot.connections_accepted), (0, 2))
        self.assertEqual(snapshot.connections, [])
        assert snapshot.udp is not None
        self.assertEqual((snapshot.udp.sessions_active, snapshot.udp.expired), (0, 2))

    def test_backend_datagrams_and_bytes_each_way(self) -> None:
        """Each backend's datagrams and bytes each way and its sessions are in the snapshot."""
        h = self.harness
        h.send(b"abc", port=1)
        h.send(b"defgh", port=1)
        h.opener.links[0].reply(b"0123456789")
        counters = build_snapshot(self.runtime).backends[0].counters
        self.assertEqual(
            {key: counters[key] for key in ("active", "total", "datagrams_to_backend",
                                           "bytes_to_backend", "datagrams_from_backend",
                                           "bytes_from_backend")},
            {"active": 1, "total": 1, "datagrams_to_backend": 2, "bytes_to_backend": 8,
             "datagrams_from_backend": 1, "bytes_from_backend": 10},
        )
        document = json.loads(render_json(build_snapshot(self.runtime)))
        self.assertEqual(document["backends"][0]["counters"]["datagrams_from_backend"], 1)
        self.assertEqual(document["backends"][1]["counters"]["total"], 0)
        self.assertEqual((document["udp"]["datagrams_in"], document["udp"]["datagrams_out"]),
                         (2, 1))

    def test_front_side_figures(self) -> None:
        """Denied, evicted, moved, resent, no_backend and dropped datagrams all show."""
        h = self.harness
        h.send(b"no", host="127.10.9.9")                 # denied by the ACL
        for port in range(1, 5):                         # 4 clients, room for 3: 1 evicted
            h.send(b"q", port=port)
        h.opener.links[-1].reply(b"r")                   # backend 5001 replies once
        h.send(b"q2", port=4)
        h.opener.to(5001)[-1].refused()                  # 3 sessions move, each resends one
        for link in h.opener.to(5002):
            link.refused()                               # then nowhere to go: sessions end
        h.send(b"late", port=9)                          # no backend for a new client
        snapshot = build_snapshot(self.runtime)
        udp = snapshot.udp
        assert udp is not None
        self.assertEqual(
            (udp.denied, udp.evicted, udp.moved, udp.resent, udp.sessions_max, udp.sessions),
            (1, 1, 3, 3, 3, 4),
        )
        self.assertEqual((udp.no_backend, udp.datagrams_in, udp.datagrams_out), (1, 7, 1))
        self.assertEqual((udp.sessions_active, snapshot.connections_active), (0, 0))
        document = json.loads(render_json(snapshot))
        self.assertEqual(set(document["udp"]), {
            "sessions_active", "sessions_max", "sessions", "datagrams_in", "datagrams_out",
            "moved", "resent", "evicted", "expired", "no_backend", "dropped", "denied"})
        self.assertEqual(document["udp"]["denied"], 1)

    def test_dropped(self) -> None:
        """Datagrams dropped while waiting for a backend's name are counted."""
        h = UDPHarness(hosts=["db.example"])
        for _ in range(WAITING_LIMIT + 2):
            h.send(b"x")
        udp = build_snapshot(udp_runtime(h)).udp
        assert udp is not None
        self.assertEqual(udp.dropped, 2)
