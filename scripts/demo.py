"""
penbal's demo: penbal in front of real local backends, printing where each connection went.

First three small TCP backends (the Galera docs' Pen line, rewritten for penbal); then, when
MariaDB Galera is installed, a real 3-node cluster on loopback with penbal's Galera check:
traffic spread over the nodes, one node desynced and drained, then back.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import sys
import tempfile
import time
from collections import Counter

from penbal.testing.backends import NameBackend
from penbal.testing.process import PenbalProcess, free_port, wait_for


def ask(port: int, source: str) -> str:
    """Connect from C{source} through penbal and return the backend's name."""
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as s:
        s.settimeout(10)
        return s.recv(100).decode().strip()


def spread(counts: Counter[str]) -> str:
    return ", ".join(f"{name}={count}" for name, count in sorted(counts.items()))


def tcp_demo(clients: int) -> bool:
    """Three name-telling backends behind penbal; one is stopped half-way."""
    backends = [NameBackend(f"node{i}") for i in (1, 2, 3)]
    port = free_port()
    args = ["-r", f"127.0.0.1:{port}", *(b.address for b in backends)]
    print("== TCP: three local backends ==")
    print("pen -l pen.log -p pen.pid localhost:3306 node1:3306 node2:3306 node3:3306")
    print("becomes:  twist penbal " + " ".join(args))
    logs = tempfile.mkdtemp(prefix="penbal-demo-logs-")
    proc = PenbalProcess(args, listen_port=port, probe=False, log_dir=logs)
    try:
        names = {b.name: b for b in backends}
        counts: Counter[str] = Counter()
        for i in range(clients):
            source = f"127.0.0.{2 + i % 6}"
            name = ask(port, source)
            counts[name] += 1
            print(f"  client {source:<11} -> {name} (127.0.0.1:{names[name].port})")
        print("connections per backend:", spread(counts))
        print("node2 stops; new connections fail over to the others without an error:")
        backends[1].stop()
        after = Counter(ask(port, f"127.0.0.{2 + i % 6}") for i in range(clients))
        print("connections per backend:", spread(after))
        return "node2" not in after
    finally:
        print(f"penbal stopped, exit status {proc.stop()}\n")
        shutil.rmtree(logs, ignore_errors=True)
        for b in (backends[0], backends[2]):
            b.stop()


def galera_demo(connections: int) -> bool:
    """A real 3-node Galera cluster behind penbal --check galera; node 2 is desynced."""
    import pymysql

    from penbal.testing.galera_cluster import GaleraCluster

    print("== Galera: a real 3-node MariaDB Galera cluster on loopback ==")
    work = tempfile.mkdtemp(prefix="penbal-demo-")
    cluster = GaleraCluster(work, base_port=3310)
    started = time.monotonic()
    cluster.start()
    print(f"cluster of 3 Synced nodes started in {time.monotonic() - started:.1f}s")
    credentials = f"{work}/check.cnf"
    cluster.write_credentials(credentials)
    port = free_port()
    nodes = [f"127.0.0.1:{cluster.node_port(i)}" for i in (1, 2, 3)]
    args = ["-r", "--check", "galera", "--check-credentials", credentials,
            "--check-interval", "0.5", "--check-timeout", "0.5", f"127.0.0.1:{port}", *nodes]
    print("twist penbal " + " ".join(args))
    proc = PenbalProcess(args, listen_port=port, probe=False, log_dir=work)

    def where() -> Counter[str]:
        counts: Counter[str] = Counter()
        for _ in range(connections):
            db = pymysql.connect(host="127.0.0.1", port=port, user=cluster.app_user,
                                 password=cluster.app_password, connect_timeout=5)
            with db.cursor() as cursor:
                cursor.execute("SELECT @@port")
                (node_port,) = cursor.fetchone()
            db.close()
            counts[f"node{int(node_port) - 3310}"] += 1
        return counts

    def health_events() -> list[dict[str, object]]:
        events = []
        for line in proc.log().splitlines():
            if '"penbal_event": "health"' in line:
                events.append(json.loads(line))
        return events

    try:
        before = where()
        print(f"{connections} connections (SELECT @@port):", spread(before))
        print("SET GLOBAL wsrep_desync=ON on node2 (a donor or a node being backed up):")
        cluster.desync(2, True)
        wait_for(lambda: any("unfit" in str(e.get("fitness")) or "last-resort" in
                             str(e.get("fitness")) for e in health_events()), 10,
                 "penbal to take node2 out")
        for event in health_events()[-1:]:
            print(f"  penbal: backend {event['backend']} is {event['fitness']}: {event['reason']}")
        drained = where()
        print(f"{connections} connections:", spread(drained))
        print("wsrep_desync=OFF on node2; it comes back after --rise good checks:")
        cluster.desync(2, False)
        wait_for(lambda: health_events()[-1].get("fitness") == "fit", 10, "node2 to come back")
        back = where()
        print(f"{connections} connections:", spread(back))
        return "node2" not in drained and "node2" in back and len(before) == 3
    finally:
        print(f"penbal stopped, exit status {proc.stop()}")
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=12, help="TCP connections to make")
    parser.add_argument("--no-galera", action="store_true", help="skip the Galera part")
    options = parser.parse_args()
    ok = tcp_demo(options.clients)
    if not options.no_galera:
        if shutil.which("mariadbd") is None:
            print("MariaDB Galera is not installed: skipping the Galera part "
                  "(scripts/install-galera installs it)")
        else:
            ok = galera_demo(30) and ok
    print("demo", "succeeded" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
