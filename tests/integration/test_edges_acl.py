# -*- test-case-name: tests.integration.test_edges_acl -*-
"""
Client ACLs, the abuse server and connection hygiene through a real penbal, with clients
bound to different 127.0.0.x source addresses and to ::1.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from penbal.testing.backends import NameBackend
from penbal.testing.process import PenbalProcess, free_port, wait_for


def greeting(port: int, source: str, host: str = "127.0.0.1") -> bytes:
    """Connect from C{source}; return the backend's first line, or b'' if closed at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.settimeout(10)
        sock.bind((source, 0))
        sock.connect((host, port))
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(100)
            if not chunk:
                break
            data += chunk
        return data


class EdgeProcessTests(SynchronousTestCase):
    """A penbal with one named backend."""

    def start(self, *options: str, host: str = "127.0.0.1") -> int:
        backend = NameBackend("db")
        self.backend = backend
        self.addCleanup(backend.stop)
        port = free_port(host)
        listen = f"tcp6:{port}:interface=\\:\\:1" if ":" in host else f"127.0.0.1:{port}"
        self.proc = PenbalProcess([*options, listen, backend.address], listen_port=port,
                                  host=host, access_log=True)
        self.addCleanup(self.proc.stop)
        return port


class AclTests(EdgeProcessTests):
    """--acl and --client-acl, first match, IPv4 and IPv6."""

    def test_permit_list(self) -> None:
        """A permit list lets its network in and closes everyone else at once."""
        port = self.start("--acl", "1 permit 127.0.0.0/30", "--client-acl", "1")
        self.assertEqual(greeting(port, "127.0.0.2"), b"db\n")
        self.assertEqual(greeting(port, "127.0.0.9"), b"")

    def test_first_match(self) -> None:
        """A deny before a broader permit wins for its address."""
        port = self.start("--acl", "0 deny 127.0.0.3", "--acl", "0 permit 127.0.0.0/8")
        self.assertEqual(greeting(port, "127.0.0.3"), b"")
        self.assertEqual(greeting(port, "127.0.0.4"), b"db\n")

    def test_ipv6(self) -> None:
        """IPv6 clients are matched against IPv6 entries."""
        port = self.start("--acl", "2 deny ::1/128", "--client-acl", "2", host="::1")
        self.assertEqual(greeting(port, "::1", host="::1"), b"")
        port = self.start("--acl", "2 permit ::1", "--client-acl", "2", host="::1")
        self.assertEqual(greeting(port, "::1", host="::1"), b"db\n")

    def test_denied_never_reach_backend(self) -> None:
        """A denied client never causes a connection to a backend."""
        port = self.start("--acl", "0 deny 127.0.0.5")
        for _ in range(5):
            self.assertEqual(greeting(port, "127.0.0.5"), b"")
        wait_for(lambda: len(self.records("127.0.0.5")) == 5, 10, "five connection records")
        for record in self.records("127.0.0.5"):
            self.assertEqual((record["backend"], record["ended_by"]),
                             ("-", "denied by client ACL 0"))

    def records(self, client: str) -> list[dict[str, Any]]:
        """The connection records penbal logged for C{client}."""
        return [record for record in self.proc.access_records()
                if str(record["client"]).startswith(client + ":")]

    def test_abuse_server(self) -> None:
        """With -B, denied clients are relayed to the abuse server instead."""
        abuse = NameBackend("go-away")
        self.addCleanup(abuse.stop)
        port = self.start("--acl", "0 deny 127.0.0.6", "-B", abuse.address)
        self.assertEqual(greeting(port, "127.0.0.6"), b"go-away\n")
        self.assertEqual(greeting(port, "127.0.0.7"), b"db\n")


class HygieneTests(EdgeProcessTests):
    """--max-per-client and --idle-timeout on real sockets."""

    def test_max_per_client(self) -> None:
        """The third connection from one address is closed; another address is served."""
        port = self.start("--max-per-client", "2")
        held = []
        for _ in range(2):
            sock = socket.socket()
            sock.bind(("127.0.0.20", 0))
            sock.connect(("127.0.0.1", port))
            sock.settimeout(10)
            self.assertEqual(sock.recv(3), b"db\n")
            held.append(sock)
            self.addCleanup(sock.close)
        self.assertEqual(greeting(port, "127.0.0.20"), b"")
        self.assertEqual(greeting(port, "127.0.0.21"), b"db\n")
        held[0].close()
        wait_for(lambda: greeting(port, "127.0.0.20") == b"db\n", 10, "a freed slot")

    def test_idle_timeout(self) -> None:
        """A connection idle both ways is closed after the idle timeout, not before."""
        port = self.start("--idle-timeout", "0.8")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            self.assertEqual(sock.recv(3), b"db\n")
            started = time.monotonic()
            for _ in range(3):  # activity keeps it open
                time.sleep(0.4)
                sock.sendall(b"x")
                self.assertEqual(sock.recv(1), b"x")
            self.assertGreater(time.monotonic() - started, 1.0)
            quiet = time.monotonic()
            self.assertEqual(sock.recv(1), b"")
            idle = time.monotonic() - quiet
        self.assertTrue(0.7 <= idle <= 2.0, idle)
        wait_for(lambda: "idle timeout (0.8s)" in [r["ended_by"] for r in
                                                   self.proc.access_records()],
                 5, "the access log record")
