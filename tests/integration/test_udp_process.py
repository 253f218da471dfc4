# -*- test-case-name: tests.integration.test_udp_process -*-
"""
C{twist penbal --udp} end to end: a real process in front of echo backends on loopback.
"""

from __future__ import annotations

import json
from collections import Counter

from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from penbal.testing.process import PenbalProcess
from tests.udp.loopback import Client, EchoBackend, free_udp_port, reactor, wait_until


class ProcessTests(TestCase):
    timeout = 90

    async def _end_to_end(self) -> None:
        a, b = EchoBackend("a"), EchoBackend("b")
        for backend in (a, b):
            self.addCleanup(backend.stop)
        dead = f"127.0.0.1:{free_udp_port()}"
        port = free_udp_port()
        penbal = PenbalProcess(["--udp", "--policy", "roundrobin", "--udp-idle", "5",
                                f"127.0.0.1:{port}", a.address, b.address, dead])
        self.addCleanup(penbal.stop)
        probe = Client("127.0.0.80")
        self.addCleanup(probe.close)

        def answered() -> bool:
            if penbal.process.poll() is not None:
                raise AssertionError(f"penbal exited early: {penbal.log()}")
            probe.send(b"ping", ("127.0.0.1", port))
            return bool(probe.received)

        await wait_until(answered, 20, f"penbal to answer on UDP port {port}")
        clients = [Client(f"127.0.0.{81 + i % 4}") for i in range(24)]
        for client in clients:
            self.addCleanup(client.close)
            client.send(b"hello", ("127.0.0.1", port))
        # A "hello" that hit the dead port is not sent again by penbal (that backend never
        # replied, so it might have taken it); its session moves, and the client asks again
        # after half a second, as a DNS client would.
        retry = [reactor.seconds() + 0.5]

        def answered_all() -> bool:
            if reactor.seconds() >= retry[0]:
                retry[0] = reactor.seconds() + 0.5
                for client in clients:
                    if not client.received:
                        client.send(b"hello", ("127.0.0.1", port))
            return all(c.received for c in clients)

        await wait_until(answered_all, 10, "every client's reply")
        names = Counter(c.received[0].split(b":")[0] for c in clients)
        self.assertEqual(set(names), {b"a", b"b"})
        self.assertGreaterEqual(min(names.values()), 10, names)
        self.assertTrue(all(c.received[0].endswith(b":hello") for c in clients))
        self.assertTrue(all(c.senders == {("127.0.0.1", port)} for c in clients))
        deadline = reactor.seconds() + 20
        status = penbal.stop()
        self.assertLess(reactor.seconds(), deadline)
        log = penbal.log_path.read_text(errors="replace")
        self.assertEqual(status, 0, log)
        events = [json.loads(line) for line in log.split("\x1e") if line.strip()]
        self.assertIn((dead, "ICMP port unreachable"),
                      [(e.get("backend"), e.get("why")) for e in events])

    def test_balances_udp_and_skips_a_dead_backend(self) -> Deferred[None]:
        """Clients get replies through the process, the dead backend is skipped, TERM exits 0."""
        return Deferred.fromCoroutine(self._end_to_end())
