"""
One measurement cell: start a relay in front of a backend, load it, stop it.

A failure inside a cell is recorded in the cell, so that the other cells
still run; every process a cell starts is stopped before it returns.
"""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from relaybench import backends, loads
from relaybench.procs import (
    LOOPBACK,
    BenchError,
    CoreMeter,
    CpuMeter,
    descendants,
    unpinned,
)
from relaybench.relays import Relay, RelaySpec, start_relay
from relaybench.report import Cell, JsonValue

SETTLE = 1.0


@dataclass(frozen=True)
class Setup:
    """What every cell shares."""

    logdir: Path
    relay_core: int
    load_core: int
    duration: int
    max_conns: int
    idle_conns: int
    wait_quiet: float = 0.0

    def relay(self, spec: RelaySpec, backend_port: int) -> Relay:
        return start_relay(
            spec,
            [backend_port],
            core=self.relay_core,
            logdir=self.logdir,
            max_conns=self.max_conns,
        )


def http(setup: Setup, spec: RelaySpec, nginx_port: int, *, close: bool,
         connections: int = loads.WRK_CONNECTIONS) -> Cell:
    """wrk through the relay to nginx: req/s and the relay's CPU.  With few C{connections}
    (row keepalive8) the relay polls for an event or two at a time, as in front of a
    database's few busy connections."""
    row = "newconn" if close else "keepalive"
    if connections != loads.WRK_CONNECTIONS:
        row = f"keepalive{connections}"
    try:
        relay = setup.relay(spec, nginx_port)
    except BenchError as e:
        return Cell(row, spec.name, None, error=str(e))
    try:
        meter, cores = CpuMeter(relay.proc), CoreMeter()
        meter.start()
        cores.start()
        result = loads.wrk(relay.port, setup.duration, close=close, connections=connections)
        cpu = meter.stop()
        busy = _json(cores.stop())
        errors = sum(result.socket_errors.values())
        detail: dict[str, JsonValue] = {
            "requests": result.requests,
            "socket_errors": dict(result.socket_errors),
            "non_2xx": result.non_2xx,
            "core_busy_percent": busy,
        }
        if relay.proc is not None:
            detail.update(cpu_per_request(meter, result.requests))
        cell = Cell(row, spec.name, result.requests_per_s, cpu, detail=detail)
        if errors > result.requests // 100:
            cell.error = f"wrk saw {errors} socket errors: {result.socket_errors}"
        return cell
    except BenchError as e:
        return Cell(row, spec.name, None, error=str(e))
    finally:
        relay.stop()


def cpu_per_request(meter: CpuMeter, requests: int) -> dict[str, JsonValue]:
    """The relay's CPU time over the load, user and system, in all and per request (µs)."""
    times = meter.times
    detail: dict[str, JsonValue] = {
        "relay_cpu_seconds": round(times.total, 3),
        "relay_user_seconds": round(times.user, 3),
        "relay_sys_seconds": round(times.system, 3),
    }
    if requests:
        detail["relay_user_us_per_request"] = round(1e6 * times.user / requests, 2)
        detail["relay_sys_us_per_request"] = round(1e6 * times.system / requests, 2)
    return detail


#: Seconds a relay with worker processes gets to start them after it listens.
WORKERS_START = 15.0


def workers_newconn(setup: Setup, spec: RelaySpec, nginx_port: int,
                    pinned: bool) -> list[Cell]:
    """wrk with a new connection per request: req/s, and the relay's CPU time (every process
    of it) per connection in microseconds.  Pinned: the relay on the relay core, wrk on the
    load core (what a connection costs, whatever the number of processes); unpinned: the
    relay and wrk on every core (what the relay can do with both cores)."""
    rows = ("w_pinned_newconn", "w_pinned_cpu_us") if pinned else ("w_newconn", "w_cpu_us")
    try:
        with contextlib.nullcontext() if pinned else unpinned():
            relay = start_relay(spec, [nginx_port], core=setup.relay_core if pinned else None,
                                logdir=setup.logdir, max_conns=setup.max_conns)
            try:
                _wait_workers(relay, spec)
                meter, cores = CpuMeter(relay.proc, tree=True), CoreMeter()
                meter.start()
                cores.start()
                result = loads.wrk(relay.port, setup.duration, close=True)
                cpu = meter.stop()
                busy = _json(cores.stop())
            finally:
                relay.stop()
    except BenchError as e:
        return [Cell(row, spec.name, None, error=str(e)) for row in rows]
    errors = sum(result.socket_errors.values())
    detail: dict[str, JsonValue] = {
        "requests": result.requests,
        "socket_errors": dict(result.socket_errors),
        "core_busy_percent": busy,
    }
    detail.update(cpu_per_request(meter, result.requests))
    per_connection = 1e6 * meter.seconds / result.requests if result.requests else None
    cells = [Cell(rows[0], spec.name, result.requests_per_s, cpu, detail=dict(detail)),
             Cell(rows[1], spec.name, per_connection, cpu, detail=dict(detail))]
    if errors > result.requests // 100:
        for cell in cells:
            cell.error = f"wrk saw {errors} socket errors: {result.socket_errors}"
    return cells


def _wait_workers(relay: Relay, spec: RelaySpec) -> None:
    """A relay started with --workers N listens at once (its main process binds); wait
    until its N workers and the spare run, and WORKERS_PROBES requests in a row get through
    quickly (the kernel spreads them over the workers)."""
    wanted = _workers(spec)
    if wanted < 2 or relay.proc is None:
        return
    deadline = time.monotonic() + WORKERS_START
    while len(descendants(relay.proc.pid)) < wanted + 1 or not _serving(relay.port):
        if time.monotonic() > deadline or not relay.proc.alive():
            raise BenchError(f"{spec.name}: its workers did not start:\n"
                             f"{relay.proc.log_tail()}")
        time.sleep(0.1)


#: Requests that must get through, each within PROBE_TIMEOUT, for workers to count as up.
WORKERS_PROBES = 20
PROBE_TIMEOUT = 0.5


def _serving(port: int) -> bool:
    for _ in range(WORKERS_PROBES):
        try:
            with socket.create_connection((LOOPBACK, port), timeout=PROBE_TIMEOUT) as sock:
                sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
                if not sock.recv(4096).startswith(b"HTTP/"):
                    return False
        except OSError:
            return False
    return True


def _workers(spec: RelaySpec) -> int:
    words = (spec.template or "").split()
    if "--workers" in words:
        return int(words[words.index("--workers") + 1])
    return 0


def _json(busy: dict[str, float]) -> dict[str, JsonValue]:
    return dict(busy.items())


def bulk(setup: Setup, spec: RelaySpec, nginx_port: int) -> Cell:
    """One stream of nginx's bulk file through the relay: Gbit/s and the relay's CPU."""
    try:
        relay = setup.relay(spec, nginx_port)
    except BenchError as e:
        return Cell("bulk", spec.name, None, error=str(e))
    try:
        meter, cores = CpuMeter(relay.proc), CoreMeter()
        meter.start()
        cores.start()
        result = loads.stream(relay.port, setup.duration, backends.BULK_PATH)
        cpu = meter.stop()
        busy = _json(cores.stop())
    except BenchError as e:
        return Cell("bulk", spec.name, None, error=str(e))
    finally:
        relay.stop()
    detail: dict[str, JsonValue] = {
        "bytes": result.bytes,
        "seconds": round(result.seconds, 3),
        "core_busy_percent": busy,
    }
    if relay.proc is not None:
        detail.update(cpu_per_request(meter, 0))
    return Cell("bulk", spec.name, result.gbit_per_s, cpu, detail=detail)


def memory(setup: Setup, spec: RelaySpec) -> list[Cell]:
    """The relay's RSS before and with ``idle_conns`` idle relayed connections."""
    if spec.template is None:
        return [Cell("idle_kib", spec.name, None), Cell("idle_mib", spec.name, None)]
    try:
        return _memory(setup, spec)
    except BenchError as e:
        return [
            Cell("idle_kib", spec.name, None, error=str(e)),
            Cell("idle_mib", spec.name, None, error=str(e)),
        ]


def _memory(setup: Setup, spec: RelaySpec) -> list[Cell]:
    server, port = backends.start_hold_server(setup.load_core, setup.logdir)
    try:
        relay = setup.relay(spec, port)
        try:
            proc = relay.proc
            assert proc is not None
            time.sleep(SETTLE)
            before = proc.rss_kib()
            socks = loads.open_idle(relay.port, setup.idle_conns)
            try:
                time.sleep(SETTLE)
                if not proc.alive():
                    raise BenchError(f"{spec.name} died:\n{proc.log_tail()}")
                during = proc.rss_kib()
            finally:
                loads.close_all(socks)
        finally:
            relay.stop()
    finally:
        server.stop()
    per_conn = (during - before) / setup.idle_conns
    detail: dict[str, float | int] = {
        "connections": setup.idle_conns,
        "rss_before_kib": before,
        "rss_with_connections_kib": during,
    }
    return [
        Cell("idle_kib", spec.name, per_conn, detail=dict(detail)),
        Cell("idle_mib", spec.name, during / 1024, detail=dict(detail)),
    ]
