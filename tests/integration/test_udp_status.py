# -*- test-case-name: tests.integration.test_udp_status -*-
"""
The status of a real C{twist penbal -U --http ... -C ...}: per-backend datagrams and bytes each
way, sessions and the UDP front side's figures in /status.json, the control port's
C{status json} and /metrics.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from functools import partial
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from penbal.testing.process import PenbalProcess, free_port
from tests.integration.operations import CTL
from tests.udp.loopback import Client, EchoBackend, free_udp_port, wait_until

CLIENTS = 6
ROUNDS = 2
QUERY = b"hello"  # each echo backend answers NAME:hello, 7 bytes


def replied(clients: list[Client], replies: int) -> bool:
    """True once every client has C{replies} replies."""
    return all(len(c.received) >= replies for c in clients)


class UDPStatusTests(TestCase):
    timeout = 90

    def get(self, http: int, path: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{http}{path}", timeout=10) as reply:
            body: bytes = reply.read()
            return body

    def ctl(self, control: str, *words: str) -> str:
        result = subprocess.run([CTL, control, *words], capture_output=True, text=True,
                                timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    def ctl_status(self, control: str) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.ctl(control, "status", "json"))
        return document

    def check_document(self, document: dict[str, Any], addresses: list[str]) -> None:
        """Both backends took half the sessions; every figure as the traffic made it."""
        self.assertEqual(document["connections_active"], CLIENTS)
        self.assertEqual(document["connections_accepted"], CLIENTS)
        per = CLIENTS // 2
        for backend in document["backends"]:
            self.assertIn(backend["address"], addresses)
            counters = backend["counters"]
            self.assertEqual(
                {key: counters[key] for key in ("active", "total", "datagrams_to_backend",
                                               "bytes_to_backend", "datagrams_from_backend",
                                               "bytes_from_backend")},
                {"active": per, "total": per, "datagrams_to_backend": per * ROUNDS,
                 "bytes_to_backend": per * ROUNDS * len(QUERY),
                 "datagrams_from_backend": per * ROUNDS,
                 "bytes_from_backend": per * ROUNDS * (len(QUERY) + 2)},
                backend["address"],
            )
        self.assertEqual(document["udp"], {
            "sessions_active": CLIENTS, "sessions_max": 100, "sessions": CLIENTS,
            "datagrams_in": CLIENTS * ROUNDS, "datagrams_out": CLIENTS * ROUNDS,
            "moved": 0, "resent": 0, "evicted": 0, "expired": 0, "no_backend": 0,
            "dropped": 0, "denied": 0,
        })
        self.assertEqual(len(document["connections"]), CLIENTS)

    async def _status(self) -> None:
        a, b = EchoBackend("a"), EchoBackend("b")
        for backend in (a, b):
            self.addCleanup(backend.stop)
        port, http = free_udp_port(), free_port()
        control = f"127.0.0.1:{free_port()}"
        penbal = PenbalProcess(
            ["-U", "--http", f"127.0.0.1:{http}", "-C", control, "--policy", "roundrobin",
             "-c", "100", f"127.0.0.1:{port}", a.address, b.address],
            listen_port=http,
        )
        self.addCleanup(penbal.stop)
        clients = [Client(f"127.0.0.{90 + i % 3}") for i in range(CLIENTS)]
        for client in clients:
            self.addCleanup(client.close)
        for round_ in range(1, ROUNDS + 1):
            for client in clients:
                client.send(QUERY, ("127.0.0.1", port))
            await wait_until(partial(replied, clients, round_), 10, f"round {round_} of replies")
        self.assertTrue(all(c.received[0].endswith(b":" + QUERY) for c in clients))
        addresses = [a.address, b.address]

        document = json.loads(self.get(http, "/status.json"))
        self.check_document(document, addresses)
        self.check_document(self.ctl_status(control), addresses)

        text = self.get(http, "/metrics").decode()
        families = {f.name: f for f in text_string_to_metric_families(text)}

        def per_backend(name: str) -> dict[str, float]:
            return {s.labels["backend"]: s.value for s in families[name].samples
                    if not s.name.endswith("_created")}

        per = CLIENTS // 2
        self.assertEqual(per_backend("penbal_backend_sent_datagrams"),
                         dict.fromkeys(addresses, per * ROUNDS))
        self.assertEqual(per_backend("penbal_backend_received_datagrams"),
                         dict.fromkeys(addresses, per * ROUNDS))
        self.assertEqual(per_backend("penbal_backend_sent_bytes"),
                         dict.fromkeys(addresses, per * ROUNDS * len(QUERY)))
        self.assertEqual(per_backend("penbal_backend_received_bytes"),
                         dict.fromkeys(addresses, per * ROUNDS * (len(QUERY) + 2)))
        self.assertEqual(per_backend("penbal_backend_connections"), dict.fromkeys(addresses, per))
        self.assertEqual(per_backend("penbal_backend_active_connections"),
                         dict.fromkeys(addresses, per))

        def value(name: str) -> float:
            [sample] = [s for s in families[name].samples if not s.name.endswith("_created")]
            return float(sample.value)

        self.assertEqual(value("penbal_connections_active"), CLIENTS)
        self.assertEqual(value("penbal_udp_sessions_active"), CLIENTS)
        self.assertEqual(value("penbal_udp_sessions"), CLIENTS)
        self.assertEqual(value("penbal_udp_received_datagrams"), CLIENTS * ROUNDS)
        self.assertEqual(value("penbal_udp_sent_datagrams"), CLIENTS * ROUNDS)
        self.assertEqual(value("penbal_udp_max_sessions"), 100)
        for name in ("moved_sessions", "resent_datagrams", "evicted_sessions",
                     "expired_sessions", "no_backend_datagrams", "dropped_datagrams",
                     "denied_datagrams"):
            self.assertEqual(value(f"penbal_udp_{name}"), 0, name)

        text_lines = self.ctl(control, "status", "text").splitlines()
        self.assertIn(f"{CLIENTS} sessions ({CLIENTS} started)", text_lines[0])
        self.assertIn(f"udp: {CLIENTS} sessions (max 100, {CLIENTS} started, 0 moved",
                      text_lines[-1])

        page = self.get(http, "/").decode()
        self.assertIn("<th>datagrams sent</th>", page)
        self.assertIn(f"Live sessions ({CLIENTS})", page)

        self.assertEqual(penbal.stop(), 0, penbal.log())

    def test_udp_counters_reach_the_status(self) -> Deferred[None]:
        """Datagrams, bytes and sessions per backend and the UDP figures, in every view."""
        return Deferred.fromCoroutine(self._status())
