"""
Records check rounds from a real cluster while one node is frozen (SIGSTOP) and resumed, for the
replay tests (tests/health/test_replay.py).  Run by hand against a cluster started with
C{scripts/galera-cluster start DIR}:

    .venv/bin/python -m tests.health.record_rounds DIR OUT.json [--freeze 9.5] [--after 12]

Each round reads every node with the Galera check's own query (connect and read timeouts of
0.5 s) at the same moment, every 0.2 s; a node that does not answer is recorded with its error.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pymysql

from penbal.health.credentials import Credentials
from penbal.health.galera import read_wsrep
from penbal.health.scheduler import WSREP_KEYS

KEYS = (*WSREP_KEYS, "wsrep_sst_donor_rejects_queries")


def read_node(port: int, credentials: Credentials, out: dict[int, Any]) -> None:
    try:
        values = read_wsrep(pymysql.connect, "127.0.0.1", port, credentials, 0.5)
        out[port] = {k: values[k] for k in KEYS if k in values}
    except Exception as e:
        out[port] = {"error": f"{type(e).__name__}: {e}"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("cluster", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--node", type=int, default=3)
    parser.add_argument("--freeze", type=float, default=9.5)
    parser.add_argument("--after", type=float, default=12.0)
    args = parser.parse_args()
    state = json.loads((args.cluster / "state.json").read_text())
    check = dict(line.split("=", 1) for line in (args.cluster / "check.cnf").read_text()
                 .splitlines() if "=" in line)
    credentials = Credentials(check["user"].strip(), check["password"].strip())
    ports = [state["base_port"] + int(n) for n in sorted(state["pids"])]
    pid = state["pids"][str(args.node)]
    rounds: list[dict[str, Any]] = []
    start = time.monotonic()
    frozen_at = start + 2.0
    thawed_at = frozen_at + args.freeze
    end = thawed_at + args.after
    frozen = False
    try:
        while time.monotonic() < end:
            now = time.monotonic()
            if not frozen and frozen_at <= now < thawed_at:
                os.kill(pid, signal.SIGSTOP)
                frozen = True
            elif frozen and now >= thawed_at:
                os.kill(pid, signal.SIGCONT)
                frozen = False
            out: dict[int, Any] = {}
            threads = [threading.Thread(target=read_node, args=(p, credentials, out))
                       for p in ports]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            rounds.append({"t": round(now - start, 3), "frozen": frozen,
                           "nodes": [out[p] for p in ports]})
            time.sleep(max(0.0, now + 0.2 - time.monotonic()))
    finally:
        os.kill(pid, signal.SIGCONT)
    args.out.write_text(json.dumps({"freeze_at": 2.0, "thaw_at": 2.0 + args.freeze,
                                    "frozen_node": args.node, "rounds": rounds}, indent=0))


if __name__ == "__main__":
    main()
