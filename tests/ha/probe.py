# -*- test-case-name: tests.ha.test_pair -*-
"""
The client side of the HA tests, run inside the client's namespace as
C{python -m tests.ha.probe ...}; it prints JSON lines on standard output.

C{connect HOST PORT SECONDS INTERVAL}: a new TCP connection every INTERVAL seconds for SECONDS
seconds; an attempt succeeds when the MySQL server's greeting arrives within 0.2 s (so the whole
path to a Galera node works, not only the balancer's accept).  One line per attempt.

C{once HOST PORT}: one attempt; exit status 0 if it succeeded.

C{writer USER PASSWORD HOST...}: through each HOST:PORT, the node that answers
C{SELECT @@wsrep_node_name}; one line.
"""

from __future__ import annotations

import json
import socket
import sys
import time

ATTEMPT_TIMEOUT = 0.2


def attempt(host: str, port: int) -> str:
    """One new connection: "" if the server's greeting came, else why not."""
    try:
        with socket.create_connection((host, port), timeout=ATTEMPT_TIMEOUT) as s:
            s.settimeout(ATTEMPT_TIMEOUT)
            return "" if s.recv(64) else "closed without a greeting"
    except OSError as e:
        return type(e).__name__


def connect(host: str, port: int, seconds: float, interval: float) -> None:
    print(json.dumps({"ready": time.monotonic()}), flush=True)
    end = time.monotonic() + seconds
    while (start := time.monotonic()) < end:
        error = attempt(host, port)
        print(json.dumps({"start": start, "end": time.monotonic(), "error": error}), flush=True)
        time.sleep(max(0.0, start + interval - time.monotonic()))


def writers(user: str, password: str, addresses: list[str]) -> None:
    import pymysql

    names: dict[str, str] = {}
    for address in addresses:
        host, port = address.rsplit(":", 1)
        try:
            connection = pymysql.connect(host=host, port=int(port), user=user,
                                         password=password, connect_timeout=2, read_timeout=2)
            with connection, connection.cursor() as cursor:
                cursor.execute("SELECT @@wsrep_node_name")
                names[address] = str(cursor.fetchone()[0])
        except pymysql.MySQLError as e:
            names[address] = f"error: {e}"
    print(json.dumps(names), flush=True)


def main(args: list[str]) -> None:
    if args[0] == "connect":
        connect(args[1], int(args[2]), float(args[3]), float(args[4]))
    elif args[0] == "once":
        raise SystemExit(1 if attempt(args[1], int(args[2])) else 0)
    elif args[0] == "writer":
        writers(args[1], args[2], args[3:])
    else:
        raise SystemExit(f"probe: unknown mode {args[0]!r}: expected connect, once or writer")


if __name__ == "__main__":
    main(sys.argv[1:])
