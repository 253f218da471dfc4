# -*- test-case-name: tests.testing.test_galera_cluster -*-
"""
Command line for the Galera test cluster:
C{python -m penbal.testing.galera_cli start|stop|status DIR}.

C{start} leaves the nodes running after it exits; their pids and passwords go
to C{DIR/state.json} and the health-check credentials to C{DIR/check.cnf}.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from penbal.testing.galera_cluster import GaleraCluster, SQLError

_SHOWN = (
    "wsrep_local_state_comment",
    "wsrep_cluster_size",
    "wsrep_cluster_status",
    "wsrep_ready",
    "wsrep_desync",
    "wsrep_reject_queries",
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="galera-cluster",
        description="Run a MariaDB Galera cluster on 127.0.0.1 for tests and demos.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="create and start a fresh cluster")
    start.add_argument("dir", help="new base directory (under /tmp)")
    start.add_argument("--nodes", type=int, default=3)
    start.add_argument("--base-port", type=int, default=3310)
    start.add_argument("--gcomm-base", type=int, default=4557)
    start.add_argument("--name", default="penbal_test")
    start.add_argument("--timeout", type=float, default=120.0)
    stop = commands.add_parser("stop", help="stop the cluster started in DIR")
    stop.add_argument("dir")
    stop.add_argument("--timeout", type=float, default=60.0)
    status = commands.add_parser("status", help="show each node's wsrep state")
    status.add_argument("dir")
    return parser


def _start(args: argparse.Namespace) -> int:
    cluster = GaleraCluster(
        args.dir,
        nodes=args.nodes,
        base_port=args.base_port,
        name=args.name,
        gcomm_base=args.gcomm_base,
        keep_running=True,
    )
    began = time.monotonic()
    cluster.start(timeout=args.timeout)
    credentials = cluster.basedir / "check.cnf"
    cluster.write_credentials(str(credentials))
    print(f"{cluster.nodes} nodes Synced in {time.monotonic() - began:.1f}s")
    for i in range(1, cluster.nodes + 1):
        print(
            f"node{i}: 127.0.0.1:{cluster.node_port(i)} pid {cluster.pid(i)}"
            f" socket {cluster.socket_path(i)}"
        )
    print(f"check user {cluster.check_user}: {credentials}")
    print(
        f"app user {cluster.app_user}, database {cluster.database}:"
        f" password in {cluster.basedir / 'state.json'}"
    )
    return 0


def _stop(args: argparse.Namespace) -> int:
    GaleraCluster.from_state(args.dir).stop(timeout=args.timeout)
    print("stopped")
    return 0


def _status(args: argparse.Namespace) -> int:
    cluster = GaleraCluster.from_state(args.dir)
    for i in range(1, cluster.nodes + 1):
        try:
            status = cluster.status(i, timeout=3.0)
        except SQLError as e:
            print(f"node{i}: unreachable ({e})")
            continue
        shown = " ".join(f"{key[6:]}={status.get(key, '?')}" for key in _SHOWN)
        print(f"node{i}: {shown}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    handlers = {"start": _start, "stop": _stop, "status": _status}
    try:
        return handlers[args.command](args)
    except (OSError, RuntimeError, TimeoutError, ValueError, SQLError) as e:
        print(f"galera-cluster {args.command}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
