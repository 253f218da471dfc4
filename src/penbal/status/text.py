# -*- test-case-name: tests.status.test_views -*-
"""
The status as plain lines: Pen's C{servers} format, C{recent}, and the summary that
C{status text} answers and SIGUSR1 logs.
"""

from __future__ import annotations

from penbal.status.snapshot import BackendStatus, Snapshot, WorkersStatus


def server_line(backend: BackendStatus) -> str:
    """Pen's C{servers} line, with penbal's state appended."""
    counters = backend.counters
    return (
        f"{backend.index} addr {backend.host} port {backend.port} "
        f"conn {counters.get('active', 0)} max {backend.maxc} hard {backend.hard} "
        f"weight {backend.weight} prio {backend.prio} "
        f"sx {counters.get('bytes_to_backend', 0)} rx {counters.get('bytes_from_backend', 0)} "
        f"state {backend.state}"
    )


def _backend_summary(backend: BackendStatus, udp: bool = False) -> str:
    counters = backend.counters
    why = f" ({backend.reason})" if backend.reason else ""
    health = " ".join(f"{key}={value}" for key, value in sorted(backend.health.items()))
    line = (
        f"server {backend.index} {backend.address} {backend.state}{why}: "
        f"conn {counters.get('active', 0)} total {counters.get('total', 0)} "
        f"failures {counters.get('failures', 0)} sent {counters.get('bytes_to_backend', 0)} "
        f"received {counters.get('bytes_from_backend', 0)}"
    )
    if udp:
        line += (f" datagrams sent {counters.get('datagrams_to_backend', 0)} "
                 f"received {counters.get('datagrams_from_backend', 0)}")
    return f"{line} health {health}" if health else line


def workers_line(workers: WorkersStatus) -> str:
    """The worker processes in one line."""
    spare = f"spare pid {workers.spare}" if workers.spare is not None else "no spare"
    pids = " ".join(map(str, workers.pids)) or "none"
    how = "steered by client address" if workers.steered else "spread by the kernel"
    return (f"workers: {len(workers.pids)} of {workers.count} relaying (pids {pids}), {spare}, "
            f"{workers.replaced} replaced, clients {how}")


def summary_lines(snapshot: Snapshot) -> list[str]:
    """A few lines saying how penbal is doing."""
    uptime = max(0.0, snapshot.time - snapshot.started)
    udp = snapshot.udp
    live, accepted = ("sessions", "started") if udp is not None else ("connections", "accepted")
    lines = [
        f"penbal {snapshot.version} pid {snapshot.pid}, up {uptime:.0f}s, "
        f"policy {snapshot.policy}, {snapshot.connections_active} {live} "
        f"({snapshot.connections_accepted} {accepted}), {len(snapshot.backends)} servers",
    ]
    lines.extend(_backend_summary(backend, udp is not None) for backend in snapshot.backends)
    workers = snapshot.workers
    if workers is not None:
        lines.append(workers_line(workers))
    if udp is not None:
        lines.append(
            f"udp: {udp.sessions_active} sessions (max {udp.sessions_max}, "
            f"{udp.sessions} started, {udp.moved} moved, {udp.evicted} evicted, "
            f"{udp.expired} expired), datagrams {udp.datagrams_in} in {udp.datagrams_out} out "
            f"{udp.resent} resent, dropped {udp.dropped} no_backend {udp.no_backend} "
            f"denied {udp.denied}"
        )
    queue = snapshot.queue
    if queue is not None:
        lines.append(
            f"queue: {queue.waiting} waiting (max {queue.max}, timeout {queue.timeout:g}s), "
            f"{queue.held} held, {queue.served} served, {queue.expired} expired, "
            f"{queue.refused} refused"
        )
    return lines


def recent_lines(snapshot: Snapshot, seconds: float) -> list[str]:
    """Clients seen in the last C{seconds}: live ones and those whose connection ended."""
    since = snapshot.time - seconds
    seen: dict[str, dict[str, int | float | str]] = {}

    def note(client: str, backend: str, when: float, sent: int, received: int) -> None:
        host = client.rpartition(":")[0] or client
        entry = seen.setdefault(host, {"connects": 0, "last": when, "server": backend,
                                       "sx": 0, "rx": 0})
        entry["connects"] = int(entry["connects"]) + 1
        entry["sx"] = int(entry["sx"]) + sent
        entry["rx"] = int(entry["rx"]) + received
        if when >= float(entry["last"]):
            entry["last"], entry["server"] = when, backend

    for ended in snapshot.recent:
        if ended.started + ended.duration >= since:
            note(ended.client, ended.backend, ended.started, ended.bytes_in, ended.bytes_out)
    for live in snapshot.connections:
        note(live.client, live.backend, snapshot.time - live.age, live.bytes_in, live.bytes_out)
    return [
        f"{host} connects {entry['connects']} last {snapshot.time - float(entry['last']):.0f}s "
        f"ago server {entry['server']} sx {entry['sx']} rx {entry['rx']}"
        for host, entry in sorted(seen.items(), key=lambda item: -float(item[1]["last"]))
    ]
