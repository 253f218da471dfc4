# -*- test-case-name: tests.integration.test_tcp_relay -*-
"""
A real penbal relaying real sockets on loopback: bytes, half-close, backpressure, failover.
"""

from __future__ import annotations

import hashlib
import random
import socket
import threading
import time
from collections.abc import Sequence

from twisted.trial.unittest import SynchronousTestCase

from penbal.testing.backends import (
    Backend,
    FloodBackend,
    NameBackend,
    ReplyAfterEOFBackend,
)
from penbal.testing.process import PenbalProcess, free_port, rss_kib, wait_for


def recv_all(sock: socket.socket, limit: float = 60) -> bytes:
    """Read until EOF (bounded in time)."""
    sock.settimeout(limit)
    chunks = []
    while data := sock.recv(1 << 20):
        chunks.append(data)
    return b"".join(chunks)


class RelayIntegrationTests(SynchronousTestCase):
    """Bytes through a real balancer."""

    #: The twist reactor to run penbal on (None: penbal's default, the lean penbal-epoll).
    reactor: str | None = None
    #: Options every test's penbal gets (the relay path under test).
    path: tuple[str, ...] = ()

    def start(self, backends: Sequence[Backend], *options: str) -> int:
        for backend in backends:
            self.addCleanup(backend.stop)
        port = free_port()
        proc = PenbalProcess(
            [*self.path, *options, f"127.0.0.1:{port}", *(b.address for b in backends)],
            listen_port=port,
            reactor=self.reactor,
            access_log=True,
        )
        self.proc = proc
        self.addCleanup(proc.stop)
        return port

    def test_byte_exact_concurrent(self) -> None:
        """Random payloads in random chunk sizes over 40 concurrent connections come back intact."""
        port = self.start([Backend("a"), Backend("b"), Backend("c")])
        rng = random.Random(1234)
        payloads = [rng.randbytes(rng.randrange(1, 300_000)) for _ in range(40)]
        results: dict[int, bytes] = {}
        errors: list[BaseException] = []

        def client(i: int) -> None:
            try:
                local = random.Random(i)
                with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                    received: list[bytes] = []
                    reader = threading.Thread(target=lambda: received.append(recv_all(s)))
                    reader.start()
                    data, pos = payloads[i], 0
                    while pos < len(data):
                        step = local.choice([1, 7, 100, 1500, 65536, 200_000])
                        s.sendall(data[pos : pos + step])
                        pos += step
                    s.shutdown(socket.SHUT_WR)
                    reader.join(60)
                    results[i] = received[0]
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(len(payloads))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        for i, data in enumerate(payloads):
            self.assertEqual(hashlib.sha256(results[i]).digest(), hashlib.sha256(data).digest())

    def test_ipv6_listen_and_backend(self) -> None:
        """An IPv6 LISTEN and an IPv6 backend: bytes both ways, the client's address logged."""
        backend = Backend("v6", host="::1")
        self.addCleanup(backend.stop)
        port = free_port("::1")
        proc = PenbalProcess([*self.path, f"[::1]:{port}", backend.address], listen_port=port,
                             host="::1", reactor=self.reactor, access_log=True)
        self.addCleanup(proc.stop)
        payload = random.Random(6).randbytes(200_000)
        with socket.create_connection(("::1", port), timeout=10) as s:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_all(s), payload)
        self.assertEqual(set(backend.peers), {"::1"})  # the start-up probe is one more

        def events() -> list[dict[str, object]]:
            return [e for e in proc.access_records() if e["bytes_in"] == len(payload)]

        wait_for(lambda: bool(events()), 10, "the connection's log line")
        (event,) = events()
        self.assertTrue(str(event["client"]).startswith("::1:"), event["client"])
        self.assertEqual(event["bytes_out"], len(payload))

    def test_half_close_gets_whole_reply(self) -> None:
        """A client that sends then shuts down its sending side gets every byte of the reply."""
        for size in (1_004, 100_000, 4 << 20):
            port = self.start([ReplyAfterEOFBackend("big", size)])
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                s.sendall(b"SELECT everything\n")
                s.shutdown(socket.SHUT_WR)
                reply = recv_all(s)
            expected = (bytes(range(256)) * 256 * (size // 65536 + 1))[:size]
            self.assertEqual(len(reply), size)
            self.assertEqual(reply, expected)
            self.proc.stop()

    def test_non_reading_client_bounded_memory(self) -> None:
        """A backend sending 1 GiB to a client that does not read cannot grow penbal's memory."""
        flood = FloodBackend("flood", 1 << 30)
        port = self.start([flood])
        before = rss_kib(self.proc.pid)
        with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            wait_for(lambda: flood.sent > 0, 10, "the backend to start sending")
            # The flow stalls once kernel buffers and penbal's bounded buffer are full.
            last, stable_since = -1, time.monotonic()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and time.monotonic() - stable_since < 1.0:
                if flood.sent != last:
                    last, stable_since = flood.sent, time.monotonic()
                time.sleep(0.05)
            grown = rss_kib(self.proc.pid) - before
            self.assertLess(flood.sent, 64 << 20, "backpressure did not stop the backend")
            self.assertLess(grown, 8 * 1024, f"penbal grew by {grown} KiB")
            total = len(recv_all(s, limit=120))
        self.assertEqual(total, 1 << 30)

    def test_killed_backend_no_client_error(self) -> None:
        """After a backend dies, every new connection still reaches a live backend."""
        backends = [NameBackend("a"), NameBackend("b"), NameBackend("c")]
        port = self.start(backends, "--blacklist", "30", "--policy", "roundrobin")
        backends[1].stop()
        seen = []
        for _ in range(30):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.settimeout(10)
                name = s.recv(100)
                self.assertIn(name, (b"a\n", b"c\n"))
                seen.append(name)
        self.assertEqual(set(seen), {b"a\n", b"c\n"})
        self.assertIn("blacklisted", self.proc.log())

    def test_silent_backend_failed_over(self) -> None:
        """--first-byte-timeout: a backend that accepts and never speaks (a frozen server)
        costs one wait, then the client reaches a live backend, and the silent one is
        blacklisted."""
        silent = socket.socket()
        self.addCleanup(silent.close)
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # the kernel completes handshakes; nobody ever accepts or speaks
        alive = NameBackend("a")
        self.addCleanup(alive.stop)
        port = free_port()
        # The silent backend is first in the table: the first client is sent there.
        self.proc = PenbalProcess(
            [*self.path, "--first-byte-timeout", "0.3", "--policy", "roundrobin",
             f"127.0.0.1:{port}", f"127.0.0.1:{silent.getsockname()[1]}", alive.address],
            listen_port=port, reactor=self.reactor, probe=False)
        self.addCleanup(self.proc.stop)
        started = time.monotonic()
        for _ in range(4):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.settimeout(10)
                self.assertEqual(s.recv(100), b"a\n")
        self.assertLess(time.monotonic() - started, 5)
        wait_for(lambda: "sent nothing within 0.3s" in self.proc.log(), 10,
                 "penbal to log the silent backend")

    def test_max_connections_holds_under_a_burst(self) -> None:
        """60 clients at once against -x 5: exactly 5 are served, the others wait in the
        backlog (an accept batch used to take them all), and all are served in the end."""
        port = self.start([NameBackend("a")], "-x", "5")
        clients = [socket.socket() for _ in range(60)]
        for s in clients:
            self.addCleanup(s.close)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))

        def served(s: socket.socket) -> bool:
            try:
                return s.recv(10) == b"a\n"
            except BlockingIOError:
                return False

        first: list[socket.socket] = []
        deadline = time.monotonic() + 10
        while len(first) < 5 and time.monotonic() < deadline:
            first += [s for s in clients if s not in first and served(s)]
            time.sleep(0.02)
        self.assertEqual(len(first), 5)
        time.sleep(0.5)  # a bounded look for a sixth: none may be served while 5 are live
        self.assertEqual([s for s in clients if s not in first and served(s)], [])
        rest = [s for s in clients if s not in first]
        for s in first:
            s.close()
        done = 0
        deadline = time.monotonic() + 30
        while rest and time.monotonic() < deadline:
            for s in [s for s in rest if served(s)]:
                rest.remove(s)
                s.close()
                done += 1
            time.sleep(0.01)
        self.assertEqual((done, rest), (55, []))

    def test_max_connections_waits_not_drops(self) -> None:
        """Beyond -x, a client waits in the backlog and is served once another leaves."""
        port = self.start([NameBackend("a")], "-x", "2")
        first = socket.create_connection(("127.0.0.1", port), timeout=10)
        second = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.assertEqual(first.recv(10), b"a\n")
        self.assertEqual(second.recv(10), b"a\n")
        third = socket.create_connection(("127.0.0.1", port), timeout=10)
        third.settimeout(0.5)
        with self.assertRaises(socket.timeout):
            third.recv(10)
        first.close()
        third.settimeout(10)
        self.assertEqual(third.recv(10), b"a\n")
        for s in (second, third):
            s.close()

    def test_sigterm_exits_zero(self) -> None:
        """SIGTERM stops penbal cleanly with exit status 0."""
        self.start([NameBackend("a")])
        self.assertEqual(self.proc.stop(), 0)

    def test_early_sigterm_exits_zero(self) -> None:
        """SIGTERM the moment penbal listens (while its reactor starts) still exits 0."""
        backend = NameBackend("a")
        self.addCleanup(backend.stop)
        for _ in range(6):
            port = free_port()
            proc = PenbalProcess([f"127.0.0.1:{port}", backend.address], listen_port=port,
                                 probe=False, reactor=self.reactor)
            self.assertEqual(proc.stop(), 0, proc.log())

    def test_connection_log_json(self) -> None:
        """Each ended connection is one JSON line of the access log with client, backend and
        bytes, and no event of the event log."""
        port = self.start([Backend("echo")])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"12345")
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_all(s), b"12345")

        def events() -> list[dict[str, object]]:
            return [e for e in self.proc.access_records() if e["bytes_in"]]

        wait_for(lambda: bool(events()), 10, "the connection's log line")
        (event,) = events()
        self.assertEqual((event["bytes_in"], event["bytes_out"]), (5, 5))
        self.assertTrue(str(event["client"]).startswith("127.0.0.1:"))
        self.assertIn(":", event["backend"])
        self.assertIn("duration", event)
        self.assertIn(event["ended_by"], ("client", "backend"))
        self.assertNotIn("bytes in", self.proc.log())

    def test_accept_proxy_split_header(self) -> None:
        """--accept-proxy: a PROXY v1 header sent in two writes, the client's bytes right
        behind it in the second, then 3 MiB and a half-close: the backend gets the bytes
        after the header, byte-exact, the client all of the reply, and the access log the
        client the header named."""
        port = self.start([Backend("echo")], "--accept-proxy")
        payload = random.Random(15).randbytes(3 << 20)
        header = b"PROXY TCP4 127.0.9.7 127.0.0.1 40123 3306\r\n"
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            received: list[bytes] = []
            reader = threading.Thread(target=lambda: received.append(recv_all(s)))
            reader.start()
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # two writes, two segments
            s.sendall(header[:9])
            s.sendall(header[9:] + payload[:1000])
            s.sendall(payload[1000:])
            s.shutdown(socket.SHUT_WR)
            reader.join(60)
        self.assertEqual(hashlib.sha256(received[0]).digest(), hashlib.sha256(payload).digest())

        def events() -> list[dict[str, object]]:
            return [e for e in self.proc.access_records() if e["bytes_in"]]

        wait_for(lambda: bool(events()), 10, "the connection's log line")
        (event,) = events()
        self.assertEqual(event["client"], "127.0.9.7:40123")
        self.assertEqual((event["bytes_in"], event["bytes_out"]), (len(payload), len(payload)))


class StockReactorRelayTests(RelayIntegrationTests):
    """The same guarantees on Twisted's own epoll reactor (twist --reactor epoll penbal)."""

    reactor = "epoll"


class StockPathRelayTests(RelayIntegrationTests):
    """The same guarantees on the stock path, Twisted's own transports with none of its
    internals touched (--relay-path twisted; also what TLS and unix-socket legs use on the
    lean path)."""

    path = ("--relay-path", "twisted")


class SmallReadRelayTests(RelayIntegrationTests):
    """The lean path with 64 KiB reads at most instead of 1 MiB."""

    path = ("--read-size", "65536")
