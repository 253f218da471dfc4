# -*- test-case-name: tests.integration.test_operations -*-
"""
A real penbal changed through its control port while traffic flows: drain, add, remove, the
control ACL and the unix control socket.
"""

from __future__ import annotations

import os
import socket
import stat
import threading
import time
from collections import Counter

from penbal.testing.process import unix_socket_path
from tests.integration.operations import CTL, NamedClient, OperationsCase, wait_for


class DrainTests(OperationsCase):
    """server N drain under traffic."""

    def test_drain_under_traffic(self) -> None:
        """No new connection reaches a drained backend; its live ones finish intact."""
        port = self.start(self.backends("b0", "b1"), "--policy", "roundrobin")
        live = [self.client() for _ in range(10)]
        on_b1 = [c for c in live if c.name == "b1"]
        self.assertEqual(len(on_b1), 5)
        self.assertEqual(self.ctl("server", "1", "drain"),
                         f"server 1 {self.status()['backends'][1]['address']} is now draining\n")
        self.assertIn("state draining", self.ctl("servers").splitlines()[1])
        fresh: Counter[str] = Counter()
        for _ in range(40):
            client = NamedClient(port)
            fresh[client.name] += 1
            self.assertEqual(client.echo(b"ping"), b"ping")
            client.close()
        self.assertEqual(fresh, Counter({"b0": 40}))
        payload = os.urandom(200_000)
        for client in on_b1:
            self.assertEqual(client.echo(payload), payload)
        self.assertEqual(self.status()["backends"][1]["counters"]["active"], 5)
        for client in on_b1:
            client.close()
        wait_for(lambda: self.status()["backends"][1]["counters"]["active"] == 0, 10,
                 "the drained backend's connections to end")
        self.ctl("server", "1", "up")
        names = {NamedClient(port).name for _ in range(4)}
        self.assertEqual(names, {"b0", "b1"})


class AddRemoveTests(OperationsCase):
    """add and remove while connections flow."""

    def test_add_and_remove_under_traffic(self) -> None:
        """The table grows and really shrinks; no connection fails meanwhile."""
        b0, b1, b2 = self.backends("b0", "b1", "b2")
        port = self.start([b0, b1], "--policy", "roundrobin")
        long_lived = [self.client() for _ in range(2)]
        on_b0 = next(c for c in long_lived if c.name == "b0")
        seen: Counter[str] = Counter()
        failures: list[str] = []
        stop = threading.Event()

        def traffic() -> None:
            deadline = time.monotonic() + 60
            for i in range(5000):
                if stop.is_set() or time.monotonic() > deadline:
                    return
                try:
                    client = NamedClient(port)
                    data = f"hello {i}".encode()
                    if client.echo(data) != data:
                        failures.append(f"{client.name}: bad echo")
                    seen[client.name] += 1
                    client.close()
                except OSError as e:
                    failures.append(repr(e))

        thread = threading.Thread(target=traffic)
        thread.start()
        self.addCleanup(thread.join, 70)
        self.addCleanup(stop.set)
        wait_for(lambda: sum(seen.values()) >= 50, 30, "traffic to flow")
        self.assertEqual(self.ctl("add", f"127.0.0.1:{b2.port}"),
                         f"added server 2 127.0.0.1:{b2.port}:0:0:0:0\n")
        wait_for(lambda: seen["b2"] >= 20, 30, "the added backend to get connections")
        removed = self.ctl("remove", "0")
        self.assertRegex(removed, r"^server 0 \S+ drains, then leaves the table "
                                  r"\(\d+ connections left\)\n$")
        # The traffic thread may have been connected to server 0 when the remove came: wait
        # for that one (its echo comes back later) before counting; every later connection
        # starts after the remove.
        done_at_remove = sum(seen.values()) + len(failures)
        wait_for(lambda: sum(seen.values()) + len(failures) > done_at_remove, 30,
                 "the connection under way at the remove to end")
        before = Counter(seen)
        wait_for(lambda: sum(seen.values()) >= sum(before.values()) + 60, 30,
                 "traffic after the remove")
        self.assertEqual(seen["b0"], before["b0"])
        self.assertIn("state removing", self.ctl("servers").splitlines()[0])
        self.assertEqual(on_b0.echo(b"still here"), b"still here")
        on_b0.close()
        wait_for(lambda: len(self.ctl("servers").splitlines()) == 2, 10,
                 "the removed backend to leave the table")
        table = self.ctl("servers").splitlines()
        self.assertTrue(table[0].startswith(f"0 addr 127.0.0.1 port {b1.port} "))
        self.assertTrue(table[1].startswith(f"1 addr 127.0.0.1 port {b2.port} "))
        stop.set()
        thread.join(70)
        self.assertEqual(failures, [])
        self.assertGreater(sum(seen.values()), 150)


class AccessTests(OperationsCase):
    """Who may use the control port."""

    def test_control_acl_refuses_others(self) -> None:
        """A client outside --control-acl gets one error line and nothing runs."""
        self.start(self.backends("b0"), "--control-acl", "127.0.0.1")
        host, _, port = self.control.rpartition(":")
        with socket.socket() as outsider:
            outsider.bind(("127.0.0.2", 0))
            outsider.settimeout(10)
            outsider.connect((host, int(port)))
            outsider.sendall(b"server 0 down\n")
            answer = b""
            while chunk := outsider.recv(4096):
                answer += chunk
        self.assertEqual(answer, b"error: 127.0.0.2 is not permitted by the control ACL\n")
        self.assertIn("state up", self.ctl("servers"))
        refused = [e for e in self.log_events() if e.get("penbal_event") == "control-refused"]
        self.assertEqual(len(refused), 1)

    def test_unix_socket(self) -> None:
        """unix:/path is created with mode 600 and penbal-ctl speaks through it."""
        path = unix_socket_path("penbal.ctl", self.addCleanup)
        self.start(self.backends("b0"), control=f"unix:{path}")
        wait_for(lambda: os.path.exists(path), 10, "the control socket")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertIn("state up", self.ctl("servers"))
        self.assertTrue(CTL.endswith("penbal-ctl"))
