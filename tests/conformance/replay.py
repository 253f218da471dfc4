# -*- test-case-name: tests.conformance.test_pen_selection -*-
"""
Replaying one sequence of client connections, from chosen source addresses, through a balancer.

A step is C{"N"} (a client from 127.0.0.N, or from the full address given, connects, reads
the backend's name and ends the connection), C{"N+"} (the same, but the connection is kept
open), C{"-K"} (the K-th kept connection ends) or C{"~S"} (S seconds pass: for Pen's clock,
which counts whole seconds, two events more than one second apart always fall in different
seconds).  Every connection is ended by a half-close and waits for the balancer to close its
side, so the balancer has forgotten it before the next step: the replay is deterministic.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Sequence

from penbal.testing.backends import NameBackend

CLOSED = "closed"


def finish(sock: socket.socket, timeout: float = 10) -> None:
    """End a relayed connection: half-close, then read until the balancer closes its side."""
    try:
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while sock.recv(65536):
            if time.monotonic() > deadline:
                raise AssertionError("the balancer did not close a finished connection")
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        sock.close()


def connect(port: int, source: str, timeout: float = 10) -> tuple[str, socket.socket | None]:
    """Connect from C{source}; the backend's name, or C{CLOSED} if the balancer closed us."""
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    data = b""
    try:
        while not data.endswith(b"\n"):
            chunk = sock.recv(100)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        data = b""
    if not data.endswith(b"\n"):
        sock.close()
        return CLOSED, None
    return data.decode().strip(), sock


def replay(port: int, steps: Sequence[str]) -> list[tuple[str, str]]:
    """Run C{steps} against the balancer on C{port}; return (client, backend or "closed")."""
    results: list[tuple[str, str]] = []
    kept: list[socket.socket | None] = []
    try:
        for step in steps:
            if step.startswith("~"):
                time.sleep(float(step[1:]))  # the input is elapsed time, not a wait for a result
                continue
            if step.startswith("-"):
                sock = kept[int(step[1:])]
                kept[int(step[1:])] = None
                if sock is not None:
                    finish(sock)
                continue
            hold = step.endswith("+")
            source = step.rstrip("+")
            if source.isdigit():
                source = f"127.0.0.{source}"
            name, sock = connect(port, source)
            results.append((source, name))
            if hold:
                kept.append(sock)
            elif sock is not None:
                finish(sock)
    finally:
        for sock in kept:
            if sock is not None:
                sock.close()
    return results


def grouping(results: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """Which clients each backend got, in order (a client appears once per connection)."""
    groups: dict[str, list[str]] = {}
    for client, backend in results:
        groups.setdefault(backend, []).append(client)
    return groups


def counts(results: Sequence[tuple[str, str]]) -> Counter[str]:
    """Connections per backend (and how many were closed)."""
    return Counter(backend for _, backend in results)


class BlackholeBackend:
    """A backend that never answers a connect: its accept queue is full and never drained,
    so new SYNs are dropped and a balancer's connect times out."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = int(self.listener.getsockname()[1])
        self.fillers: list[socket.socket] = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            try:
                filler.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            self.fillers.append(filler)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        for sock in [*self.fillers, self.listener]:
            sock.close()


__all__ = ["CLOSED", "BlackholeBackend", "NameBackend", "counts", "grouping", "replay"]
