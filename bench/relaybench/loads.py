"""
The loads: wrk (kept-alive and connection-per-request), iperf3, idle connections.

Each returns its measurement; the caller measures the relay's CPU around it.
"""

from __future__ import annotations

import json
import re
import socket
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


def wrk(port: int, duration: int, *, close: bool) -> WrkResult:
    """``wrk -t1 -c50`` against http://127.0.0.1:port/ for ``duration`` s."""
    argv = ["wrk", "-t1", f"-c{WRK_CONNECTIONS}", f"-d{duration}s"]
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


@dataclass
class IperfResult:
    """What iperf3 reported for one stream."""

    gbit_per_s: float
    sent_gbit_per_s: float
    retransmits: int


def iperf3(port: int, duration: int) -> IperfResult:
    """One iperf3 stream to 127.0.0.1:port for ``duration`` s."""
    argv = [
        "iperf3", "-c", LOOPBACK, "-p", str(port), "-t", str(duration),
        "-J", "--connect-timeout", "5000",
    ]  # fmt: skip
    return parse_iperf3(run_tool(argv, duration + TOOL_GRACE))


def parse_iperf3(out: str) -> IperfResult:
    """Parse ``iperf3 -J`` output."""
    try:
        report = json.loads(out)
        if "error" in report:
            raise BenchError(f"iperf3: {report['error']}")
        end = report["end"]
        return IperfResult(
            end["sum_received"]["bits_per_second"] / 1e9,
            end["sum_sent"]["bits_per_second"] / 1e9,
            int(end["sum_sent"].get("retransmits", 0)),
        )
    except (ValueError, KeyError, TypeError) as e:
        raise BenchError(f"cannot parse iperf3 output: {e}\n{out[-800:]}") from e


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
