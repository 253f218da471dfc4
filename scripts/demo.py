"""
penbal's demo: three local backends, penbal in front (the Galera docs' Pen line, rewritten),
clients from several loopback addresses, and where each connection went.
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.integration.penbalproc import PenbalProcess, free_port
from tests.integration.servers import NameBackend


def ask(port: int, source: str) -> str:
    """Connect from C{source} through penbal and return the backend's name."""
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as s:
        s.settimeout(10)
        return s.recv(100).decode().strip()


def tcp_demo(clients: int) -> int:
    backends = [NameBackend(f"node{i}") for i in (1, 2, 3)]
    port = free_port()
    args = [f"127.0.0.1:{port}", *(b.address for b in backends)]
    print("pen -l pen.log -p pen.pid localhost:3306 node1:3306 node2:3306 node3:3306")
    print("becomes:")
    print("twist penbal " + " ".join(args))
    print()
    proc = PenbalProcess(args, listen_port=port)
    try:
        names = {b.name: b for b in backends}
        print(f"{clients} connections from 127.0.0.2..:")
        counts: dict[str, int] = {}
        for i in range(clients):
            source = f"127.0.0.{2 + i % 6}"
            name = ask(port, source)
            counts[name] = counts.get(name, 0) + 1
            print(f"  client {source:<11} -> {name} (port {names[name].port})")
        print("connections per backend:", ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
        print()
        print("node2 is stopped; new connections fail over without an error:")
        backends[1].stop()
        after: dict[str, int] = {}
        for i in range(clients):
            name = ask(port, f"127.0.0.{2 + i % 6}")
            after[name] = after.get(name, 0) + 1
        print("connections per backend:", ", ".join(f"{k}={v}" for k, v in sorted(after.items())))
        failed = "node2" in after
        return 1 if failed else 0
    finally:
        code = proc.stop()
        print(f"penbal stopped with exit status {code}")
        for b in backends:
            if b is not backends[1]:
                b.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=12, help="connections to make")
    options = parser.parse_args()
    return tcp_demo(options.clients)


if __name__ == "__main__":
    sys.exit(main())
