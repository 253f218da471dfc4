# -*- test-case-name: tests.integration.test_edges_http -*-
"""
HTTP mode (-H) through a real penbal: every pipelined and kept-alive request reaches the
backend with X-Forwarded-For naming the client, bodies intact.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from penbal.testing.backends import Backend
from penbal.testing.process import PenbalProcess, free_port
from tests.edges.certs import Authority, certificate_directory


class HeadRecorder(Backend):
    """A tiny HTTP/1.1 server: answers each request with its X-Forwarded-For and body size."""

    def handle(self, sock: socket.socket) -> None:
        sock.settimeout(10)
        buffer = b""
        while True:
            while b"\r\n\r\n" not in buffer:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            headers = dict(
                line.split(b": ", 1) for line in head.split(b"\r\n")[1:] if b": " in line
            )
            if self.switches(head, headers):
                sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\n"
                             b"Connection: Upgrade\r\n\r\n" + buffer)
                while chunk := sock.recv(65536):
                    sock.sendall(chunk)  # the upgraded protocol: an echo of raw bytes
                return
            length = int(headers.get(b"Content-Length", b"0"))
            while len(buffer) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            body, buffer = buffer[:length], buffer[length:]
            answer = self.answer(head, headers, body)
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(answer), answer))

    def switches(self, head: bytes, headers: dict[bytes, bytes]) -> bool:
        """Whether to agree to this request's Upgrade: only for the path /yes."""
        return b"Upgrade" in headers and head.split(b" ")[1] == b"/yes"

    def answer(self, head: bytes, headers: dict[bytes, bytes], body: bytes) -> bytes:
        """The response body: path, X-Forwarded-For and body size."""
        return b"%s %s %d" % (
            head.split(b" ")[1], headers.get(b"X-Forwarded-For", b"-"), len(body)
        )


def read_responses(sock: socket.socket, count: int) -> list[bytes]:
    """Read C{count} Content-Length responses; return their bodies."""
    sock.settimeout(10)
    buffer, bodies = b"", list[bytes]()
    while len(bodies) < count:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                return bodies
            buffer += chunk
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        while len(buffer) < length:
            buffer += sock.recv(65536)
        bodies.append(buffer[:length])
        buffer = buffer[length:]
    return bodies


class ForwardedForTests(SynchronousTestCase):
    """-H adds X-Forwarded-For on every request of a connection."""

    def setUp(self) -> None:
        backend = HeadRecorder("http")
        self.addCleanup(backend.stop)
        self.port = free_port()
        proc = PenbalProcess(["-H", f"127.0.0.1:{self.port}", backend.address],
                             listen_port=self.port)
        self.addCleanup(proc.stop)

    def connect(self, source: str) -> socket.socket:
        sock = socket.socket()
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", self.port))
        self.addCleanup(sock.close)
        return sock

    def test_pipelined(self) -> None:
        """Five pipelined requests, with bodies, each carry the client's address."""
        sock = self.connect("127.0.0.12")
        body = b"GET /smuggled HTTP/1.1\r\n\r\n"
        requests = b"".join(
            b"POST /%d HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 127.66.66.66\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (i, len(body), body)
            for i in range(5)
        )
        sock.sendall(requests)
        answers = read_responses(sock, 5)
        self.assertEqual(answers, [b"/%d 127.0.0.12 %d" % (i, len(body)) for i in range(5)])

    def test_kept_alive(self) -> None:
        """Requests sent one after another on a kept-alive connection each carry it."""
        sock = self.connect("127.0.0.13")
        for i in range(3):
            sock.sendall(b"GET /k%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
            self.assertEqual(read_responses(sock, 1), [b"/k%d 127.0.0.13 0" % i])

    def test_split_head(self) -> None:
        """A head sent in small pieces is rewritten once, correctly."""
        sock = self.connect("127.0.0.14")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request = b"GET /split HTTP/1.1\r\nHost: x\r\n\r\n"
        for i in range(0, len(request), 3):
            sock.sendall(request[i : i + 3])
        self.assertEqual(read_responses(sock, 1), [b"/split 127.0.0.14 0"])

    def test_smuggling_attempt_closed(self) -> None:
        """Content-Length with Transfer-Encoding closes the connection; nothing is answered."""
        sock = self.connect("127.0.0.15")
        sock.sendall(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n"
                     b"\r\n0\r\n\r\n")
        sock.settimeout(10)
        self.assertEqual(sock.recv(100), b"")


    def test_declined_upgrade_cannot_smuggle(self) -> None:
        """
        A request pipelined after an Upgrade the backend declined is rewritten like any
        other: its forged X-Forwarded-For never reaches the backend.
        """
        sock = self.connect("127.0.0.16")
        sock.sendall(b"GET /no HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                     b"Connection: upgrade\r\n\r\n"
                     b"GET /forged HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 127.66.66.66\r\n\r\n")
        self.assertEqual(read_responses(sock, 2), [b"/no 127.0.0.16 0", b"/forged 127.0.0.16 0"])

    def test_agreed_upgrade_passes_bytes(self) -> None:
        """After the backend's 101 the bytes pass unchanged both ways (sent before and after)."""
        sock = self.connect("127.0.0.17")
        early = b"GET /x HTTP/1.1\r\nX-Forwarded-For: 127.66.66.66\r\n\r\n"
        sock.sendall(b"GET /yes HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\n"
                     b"Connection: Upgrade\r\n\r\n" + early)
        head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"
        self.assertEqual(receive(sock, len(head) + len(early)), head + early)
        late = b"\x81\x05hello\r\n\r\nPOST / HTTP/1.1\r\n\r\n"
        sock.sendall(late)
        self.assertEqual(receive(sock, len(late)), late)


def receive(sock: socket.socket, size: int) -> bytes:
    """Exactly C{size} bytes (fewer if the connection ends first)."""
    sock.settimeout(10)
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


class ForwardedProtoTests(SynchronousTestCase):
    """Behind an ssl: LISTEN endpoint, X-Forwarded-Proto is https."""

    def test_https(self) -> None:
        """A request over TLS reaches the backend with X-Forwarded-Proto: https."""
        directory = Path(self.mktemp())
        directory.mkdir()
        ca = Authority()
        issued = ca.issue(["front.test"]).write(directory, "front")
        backend = ProtoRecorder("http")
        self.addCleanup(backend.stop)
        port = free_port()
        proc = PenbalProcess(
            ["-H", f"ssl:{port}:interface=127.0.0.1:privateKey={issued.key_file}"
                   f":certKey={issued.cert_file}", backend.address],
            listen_port=port,
        )
        self.addCleanup(proc.stop)
        context = ssl.create_default_context(cadata=ca.cert_pem.decode())
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname="front.test") as tls:
            tls.sendall(b"GET /tls HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: http\r\n\r\n")
            self.assertEqual(read_responses(tls, 1), [b"/tls 127.0.0.1 https"])


    def test_https_tls_directory(self) -> None:
        """Behind a tls: directory endpoint (penbal's own SNI lookup) the proto is https."""
        certs, ca, _ = certificate_directory(Path(self.mktemp()))
        backend = ProtoRecorder("http")
        self.addCleanup(backend.stop)
        port = free_port()
        proc = PenbalProcess(["-H", f"tls:{certs}:port={port}:interface=127.0.0.1",
                              backend.address], listen_port=port)
        self.addCleanup(proc.stop)
        context = ssl.create_default_context(cadata=ca.cert_pem.decode())
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname="front.test") as tls:
            for i in range(2):  # kept alive: each request is rewritten
                tls.sendall(b"GET /sni%d HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: http\r\n"
                            b"X-Forwarded-For: 127.66.66.66\r\n\r\n" % i)
                self.assertEqual(read_responses(tls, 1), [b"/sni%d 127.0.0.1 https" % i])


class ProtoRecorder(HeadRecorder):
    """Answers each request with its path, X-Forwarded-For and X-Forwarded-Proto."""

    def answer(self, head: bytes, headers: dict[bytes, bytes], body: bytes) -> bytes:
        return b" ".join([head.split(b" ")[1], headers.get(b"X-Forwarded-For", b"-"),
                          headers.get(b"X-Forwarded-Proto", b"-")])
