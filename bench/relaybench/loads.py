# -*- test-case-name: tests.bench.test_harness -*-
"""
The loads: wrk (kept-alive and connection-per-request), one bulk stream, idle connections.

Each returns its measurement; the caller measures the relay's CPU around it.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass, field

from relaybench.procs import LOOPBACK, BenchError, run_tool

WRK_CONNECTIONS = 50
TOOL_GRACE = 30.0


@dataclass
class WrkResult:
    """What wrk reported."""

    requests_per_s: float
    requests: int
    socket_errors: dict[str, int] = field(default_factory=dict)
    non_2xx: int = 0


def wrk(port: int, duration: int, *, close: bool, connections: int = WRK_CONNECTIONS
        ) -> WrkResult:
    """``wrk -t1 -c{connections}`` against http://127.0.0.1:port/ for ``duration`` s."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s"]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(f"http://{LOOPBACK}:{port}/")
    return parse_wrk(run_tool(argv, duration + TOOL_GRACE))


def parse_wrk(out: str) -> WrkResult:
    """Parse wrk's text report."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if rate is None or total is None:
        raise BenchError(f"cannot parse wrk output:\n{out}")
    result = WrkResult(float(rate.group(1)), int(total.group(1)))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if errors is not None:
        kinds = ("connect", "read", "write", "timeout")
        result.socket_errors = dict(zip(kinds, map(int, errors.groups()), strict=True))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx is not None:
        result.non_2xx = int(non_2xx.group(1))
    return result


@dataclass(frozen=True)
class StreamResult:
    """One stream read to its end of time: bytes received over seconds."""

    bytes: int
    seconds: float

    @property
    def gbit_per_s(self) -> float:
        return 8 * self.bytes / self.seconds / 1e9 if self.seconds > 0 else 0.0


#: The bulk client's read size: large reads keep the client's own cost per byte small (one
#: system call and one copy per up to 1 MiB), so that it reads faster than any relay sends.
STREAM_READ = 1 << 20
STREAM_TIMEOUT = 5.0


def stream(port: int, duration: float, path: str) -> StreamResult:
    """GET ``path`` from 127.0.0.1:port on one connection and read the body for ``duration``
    s, then close: what one stream carried.  The body must last longer than ``duration``."""
    request = f"GET {path} HTTP/1.1\r\nHost: relaybench\r\n\r\n".encode()
    buffer = bytearray(STREAM_READ)
    received = 0
    try:
        with socket.create_connection((LOOPBACK, port), timeout=STREAM_TIMEOUT) as sock:
            sock.sendall(request)
            start = time.monotonic()
            end = start + duration
            head = sock.recv_into(buffer)
            if not buffer[:head].startswith(b"HTTP/1.1 200 "):
                raise BenchError(f"bulk: GET {path} answered {bytes(buffer[:80])!r}")
            received = head
            now = time.monotonic()
            while now < end:
                got = sock.recv_into(buffer)
                if not got:
                    raise BenchError(
                        f"bulk: the stream ended after {received:,} bytes,"
                        f" {now - start:.1f} s of {duration} s"
                    )
                received += got
                now = time.monotonic()
    except OSError as e:
        raise BenchError(f"bulk: after {received:,} bytes: {e}") from e
    return StreamResult(received, now - start)


def open_idle(
    port: int, count: int, *, batch: int = 100, timeout: float = 15.0
) -> list[socket.socket]:
    """Open ``count`` connections to 127.0.0.1:port, each proven end to end.

    Every connection sends one byte and waits for the hold server's echo,
    so the relay has both sides of each pair open when this returns.
    """
    opened: list[socket.socket] = []
    try:
        while len(opened) < count:
            group: list[socket.socket] = []
            for _ in range(min(batch, count - len(opened))):
                sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
                group.append(sock)
                opened.append(sock)
                sock.sendall(b"x")
            for sock in group:
                if sock.recv(1) != b"x":
                    raise BenchError(
                        f"connection {opened.index(sock) + 1} of {count}"
                        " closed before the echo came back"
                    )
    except OSError as e:
        close_all(opened)
        raise BenchError(f"opening idle connection {len(opened)}: {e}") from e
    except BaseException:
        close_all(opened)
        raise
    return opened


def close_all(socks: list[socket.socket]) -> None:
    """Close every socket in ``socks``."""
    for sock in socks:
        sock.close()
    socks.clear()
