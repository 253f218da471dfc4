# -*- test-case-name: tests.integration.test_tcp_relay -*-
"""
Small threaded backends on loopback for integration tests.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from typing import Any


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 1024


class _Server6(_Server):
    address_family = socket.AF_INET6


class Backend:
    """A loopback server running C{handle(sock, backend)} per connection in a thread."""

    def __init__(self, name: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.name = name
        self.connections = 0
        self.peers: list[str] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with owner.lock:
                    owner.connections += 1
                    owner.peers.append(self.client_address[0])
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                try:
                    owner.handle(self.request)
                except OSError:
                    pass

        self.host = host
        self.server = (_Server6 if ":" in host else _Server)((host, port), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def handle(self, sock: socket.socket) -> None:
        """Echo until EOF, then close."""
        while data := sock.recv(65536):
            sock.sendall(data)

    def stop(self) -> None:
        """Stop listening: new connects are refused."""
        self.server.shutdown()
        self.server.server_close()


class NameBackend(Backend):
    """Sends its name, then echoes."""

    def handle(self, sock: socket.socket) -> None:
        sock.sendall(self.name.encode() + b"\n")
        super().handle(sock)


class ReplyAfterEOFBackend(Backend):
    """Reads the request until EOF, then sends C{size} bytes and closes."""

    def __init__(self, name: str, size: int, **kw: Any) -> None:
        self.size = size
        super().__init__(name, **kw)

    def handle(self, sock: socket.socket) -> None:
        while sock.recv(65536):
            pass
        block = bytes(range(256)) * 256
        left = self.size
        while left:
            chunk = block[: min(left, len(block))]
            sock.sendall(chunk)
            left -= len(chunk)
        sock.close()


class FloodBackend(Backend):
    """Sends C{size} bytes on each connection; C{sent} counts what the kernel took on the last."""

    def __init__(self, name: str, size: int, **kw: Any) -> None:
        self.size = size
        self.sent = 0
        super().__init__(name, **kw)

    def handle(self, sock: socket.socket) -> None:
        block = b"x" * (1 << 20)
        self.sent = sent = 0
        while sent < self.size:
            sent += sock.send(block[: min(len(block), self.size - sent)])
            self.sent = sent
        sock.close()
