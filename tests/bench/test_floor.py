# -*- test-case-name: tests.bench.test_floor -*-
"""
Tests of the featureless relay the benchmarks compare with (relaybench.floor, alias 'floor').
"""

import socket
import subprocess
import threading
import time

from twisted.trial.unittest import SynchronousTestCase

from relaybench import relays
from relaybench.procs import LOOPBACK, free_port
from tests.integration.test_edges_http import receive

#: Seconds any step may take before the test fails.
DEADLINE = 10.0


class FloorRelayTests(SynchronousTestCase):
    """The floor relay, a real process in front of a listening socket of the test's."""

    alias = "floor"

    def setUp(self) -> None:
        self.backend = socket.socket()
        self.backend.bind((LOOPBACK, 0))
        self.backend.listen(8)
        self.backend.settimeout(DEADLINE)
        self.addCleanup(self.backend.close)
        self.port = free_port()
        backends = [f"{LOOPBACK}:{self.backend.getsockname()[1]}"]
        fields = relays.template_fields(self.port, free_port(), backends, 10)
        argv = relays.argv(relays.expand_template(self.alias), fields, backends)
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(self._stop)

    def _stop(self) -> None:
        self.proc.kill()
        self.proc.wait(DEADLINE)
        assert self.proc.stderr is not None
        self.proc.stderr.close()

    def _connect(self) -> socket.socket:
        deadline = time.monotonic() + DEADLINE
        while True:
            try:
                client = socket.create_connection((LOOPBACK, self.port), timeout=DEADLINE)
            except ConnectionRefusedError:
                if self.proc.poll() is not None:
                    assert self.proc.stderr is not None
                    self.fail(f"the floor relay exited ({self.proc.returncode}):"
                              f" {self.proc.stderr.read().decode(errors='replace')[-2000:]}")
                self.assertLess(time.monotonic(), deadline, "the floor relay never listened")
                time.sleep(0.05)
                continue
            self.addCleanup(client.close)
            return client

    def test_relays_both_ways_and_closes(self) -> None:
        """Bytes both ways unchanged; the client's close closes the backend's side."""
        client = self._connect()
        server, _ = self.backend.accept()
        self.addCleanup(server.close)
        server.settimeout(DEADLINE)
        request = bytes(range(256)) * 40
        client.sendall(request)
        self.assertEqual(receive(server, len(request)), request)
        server.sendall(b"reply")
        self.assertEqual(receive(client, 5), b"reply")
        client.close()
        self.assertEqual(server.recv(10), b"")


class FloorCallsRelayTests(FloorRelayTests):
    """The floor making penbal's system calls (alias 'floor-calls'): the same, and an end of
    stream is relayed as a half-close."""

    alias = "floor-calls"

    def test_half_close_both_ways(self) -> None:
        """The client's end of stream reaches the backend as one (the client still reads the
        reply); the backend's end then closes both."""
        client = self._connect()
        server, _ = self.backend.accept()
        self.addCleanup(server.close)
        server.settimeout(DEADLINE)
        client.sendall(b"query")
        client.shutdown(socket.SHUT_WR)
        self.assertEqual(receive(server, 5), b"query")
        self.assertEqual(server.recv(10), b"")  # the client's end of stream
        server.sendall(b"the whole reply")
        self.assertEqual(receive(client, 15), b"the whole reply")
        server.shutdown(socket.SHUT_WR)
        self.assertEqual(client.recv(10), b"")


class FloorSockmapRelayTests(FloorCallsRelayTests):
    """The floor with the kernel relaying (alias 'floor-sockmap', a BPF sockmap): the same,
    and a large stream each way, byte-exact, with the end of stream behind its last byte."""

    alias = "floor-sockmap"

    def test_large_streams_byte_exact(self) -> None:
        """4 MiB each way through the kernel's redirect; each end of stream comes after every
        byte before it (the relay waits for the other socket to have queued them)."""
        client = self._connect()
        server, _ = self.backend.accept()
        self.addCleanup(server.close)
        server.settimeout(DEADLINE)
        client.sendall(b"hello")  # the first bytes, before or after the pair joins the map
        self.assertEqual(receive(server, 5), b"hello")
        up = bytes(range(251)) * (4 * 4177)
        down = bytes(range(241)) * (4 * 4351)
        def send_up() -> None:
            client.sendall(up)
            client.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send_up)
        sender.start()
        self.assertEqual(receive_all(server), up)
        sender.join(DEADLINE)
        server.sendall(down)
        server.shutdown(socket.SHUT_WR)
        self.assertEqual(receive_all(client), down)


def receive_all(sock: socket.socket) -> bytes:
    """Everything until the end of stream (each read within the test's deadline)."""
    chunks = []
    while chunk := sock.recv(1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)
