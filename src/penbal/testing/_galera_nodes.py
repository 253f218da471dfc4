# -*- test-case-name: tests.testing.test_galera_cluster -*-
"""
The nodes of a Galera test cluster: their layout, the server processes this
harness started (by pid), SQL as root over each node's unix socket, and
bounded waits on each node's wsrep status.
"""

from __future__ import annotations

import atexit
import json
import re
import secrets
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self

from penbal.testing._galera_config import (
    APP_DATABASE,
    APP_USER,
    CHECK_USER,
    LOOPBACK,
    NodeLayout,
    node_layouts,
    write_private,
)
from penbal.testing._galera_process import (
    Row,
    ServerProcess,
    SQLError,
    is_synced,
    poll_until,
    run_sql,
    tail,
)

MARIADBD = "/usr/sbin/mariadbd"
STATE_FILE = "state.json"


class GaleraNodes:
    """
    The nodes of a cluster of C{nodes} MariaDB Galera nodes under
    C{basedir}, node C{i} (1-based) serving SQL on 127.0.0.1:C{base_port + i}.
    """

    check_user = CHECK_USER
    app_user = APP_USER
    database = APP_DATABASE

    def __init__(
        self,
        basedir: str,
        nodes: int = 3,
        base_port: int = 3310,
        name: str = "penbal_test",
        *,
        gcomm_base: int = 4557,
        check_password: str | None = None,
        app_password: str | None = None,
        keep_running: bool = False,
    ) -> None:
        self.basedir = Path(basedir).absolute()
        self.nodes = nodes
        self.base_port = base_port
        self.name = name
        self.gcomm_base = gcomm_base
        self.check_password = check_password or secrets.token_hex(12)
        self.app_password = app_password or secrets.token_hex(12)
        for secret in (self.check_password, self.app_password):
            # They go into SQL string literals and option files unescaped.
            if not re.fullmatch(r"[A-Za-z0-9_.+/=-]+", secret):
                raise ValueError("passwords may hold only letters, digits and _.+/=-")
        self._layouts = node_layouts(self.basedir, nodes, base_port, gcomm_base)
        self._processes: dict[int, ServerProcess] = {}
        # Nodes that freeze() stopped and thaw() has not resumed.
        self._frozen: set[int] = set()
        # Unless asked to keep running (the command line), the nodes are
        # stopped when this Python process exits, even after Ctrl-C.
        self.keep_running = keep_running
        self._stop_at_exit = False

    @classmethod
    def from_state(cls, basedir: str) -> Self:
        """
        Rebuild the cluster object that L{start} recorded in
        C{basedir/state.json}, e.g. to stop it from another process.
        """
        state = json.loads((Path(basedir) / STATE_FILE).read_text())
        cluster = cls(
            basedir,
            nodes=int(state["nodes"]),
            base_port=int(state["base_port"]),
            name=str(state["name"]),
            gcomm_base=int(state["gcomm_base"]),
            check_password=str(state["check_password"]),
            app_password=str(state["app_password"]),
            keep_running=True,
        )
        for key, pid in state["pids"].items():
            node = cluster._node(int(key))
            cluster._processes[node.index] = ServerProcess(int(pid), node.config_file)
        cluster._frozen = {int(i) for i in state.get("frozen", [])}
        return cluster

    # Layout

    def _node(self, i: int) -> NodeLayout:
        if not 1 <= i <= self.nodes:
            raise ValueError(f"no node {i}: nodes are 1..{self.nodes}")
        return self._layouts[i - 1]

    def node_port(self, i: int) -> int:
        """The SQL port of node C{i} on 127.0.0.1."""
        return self._node(i).sql_port

    def socket_path(self, i: int) -> str:
        """The unix socket of node C{i} (root may log in there)."""
        return str(self._node(i).socket_path)

    def pid(self, i: int) -> int:
        """The pid of the C{mariadbd} of node C{i} started last."""
        process = self._processes.get(self._node(i).index)
        if process is None:
            raise LookupError(f"node {i} was never started")
        return process.pid

    def is_running(self, i: int) -> bool:
        """True if the server of node C{i} that this harness started runs."""
        process = self._processes.get(self._node(i).index)
        return process is not None and process.alive()

    # SQL and status

    def sql(self, i: int, statement: str, timeout: float = 10.0) -> list[Row]:
        """
        Run C{statement} on node C{i} as root over its unix socket and return
        its rows (values as strings, SQL NULL as C{None}).

        @raise SQLError: if the node cannot be reached in C{timeout} seconds or
            the statement fails.
        """
        return run_sql(self._node(i).socket_path, statement, timeout)

    def status(self, i: int, timeout: float = 10.0) -> dict[str, str]:
        """
        The C{wsrep%} global status and variables of node C{i}, merged into
        one dictionary.
        """
        rows = self.sql(
            i,
            "SHOW GLOBAL STATUS LIKE 'wsrep%'; SHOW GLOBAL VARIABLES LIKE 'wsrep%'",
            timeout,
        )
        return {str(row[0]): "" if row[1] is None else row[1] for row in rows}

    def wait_state(
        self,
        i: int,
        predicate: Callable[[dict[str, str]], bool],
        timeout: float = 60.0,
    ) -> dict[str, str]:
        """
        Poll L{status} of node C{i} until C{predicate} accepts it and return
        that status.  An unreachable node counts as not matching.

        @raise TimeoutError: after C{timeout} seconds, with the last status.
        @raise RuntimeError: at once if the server of node C{i} exits.
        """
        deadline = time.monotonic() + timeout
        process = self._processes.get(self._node(i).index)
        last: dict[str, str] | str = "never reached"
        while True:
            remaining = deadline - time.monotonic()
            try:
                status = self.status(i, timeout=max(1.0, min(5.0, remaining)))
            except SQLError as e:
                if process is not None and not process.alive():
                    raise RuntimeError(self._died_message(i)) from e
                last = str(e)
            else:
                if predicate(status):
                    return status
                last = {
                    k: status.get(k, "?")
                    for k in (
                        "wsrep_local_state_comment",
                        "wsrep_cluster_size",
                        "wsrep_cluster_status",
                        "wsrep_ready",
                    )
                }
            if time.monotonic() >= deadline:
                raise TimeoutError(f"node {i} not in the wanted state: {last}")
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def wait_synced(
        self, i: int, timeout: float = 60.0, cluster_size: int | None = None
    ) -> dict[str, str]:
        """Wait until node C{i} is Synced (and the cluster has C{cluster_size})."""

        def wanted(status: dict[str, str]) -> bool:
            size = status.get("wsrep_cluster_size")
            size_ok = cluster_size is None or size == str(cluster_size)
            return is_synced(status) and size_ok

        return self.wait_state(i, wanted, timeout)

    def _died_message(self, i: int) -> str:
        node = self._node(i)
        return f"node {i} is not running; end of {node.error_log}:\n" + tail(node.error_log)

    def launch(self, i: int, *extra: str) -> None:
        """
        Start the C{mariadbd} of node C{i} with C{extra} options, in its own
        session, without waiting for it.
        """
        node = self._node(i)
        with open(node.console_log, "ab") as console:
            popen = subprocess.Popen(
                [MARIADBD, f"--defaults-file={node.config_file}", *extra],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._processes[i] = ServerProcess(popen.pid, node.config_file, popen)
        self._save_state()
        if not self.keep_running and not self._stop_at_exit:
            atexit.register(self.stop)
            self._stop_at_exit = True

    def stop(self, timeout: float = 60.0) -> None:
        """Stop every node; see L{GaleraCluster.stop}."""
        raise NotImplementedError()

    def _save_state(self) -> None:
        state = {
            "name": self.name,
            "nodes": self.nodes,
            "base_port": self.base_port,
            "gcomm_base": self.gcomm_base,
            "check_password": self.check_password,
            "app_password": self.app_password,
            "pids": {str(i): p.pid for i, p in self._processes.items()},
            "frozen": sorted(self._frozen),
        }
        write_private(self.basedir / STATE_FILE, json.dumps(state, indent=2) + "\n")

    def layout(self, i: int) -> NodeLayout:
        """Paths and ports of node C{i}."""
        return self._node(i)

    def _peers(self, i: int) -> list[int]:
        """The other nodes that run and are not frozen."""
        return [
            j
            for j in range(1, self.nodes + 1)
            if j != i and j not in self._frozen and self.is_running(j)
        ]

    def _peer_status(self, i: int) -> list[dict[str, str]]:
        """The status of every reachable peer of node C{i}."""
        found = []
        for j in self._peers(i):
            try:
                found.append(self.status(j, timeout=2.0))
            except SQLError:
                continue
        return found

    def wait_evicted(self, i: int, timeout: float = 30.0) -> None:
        """
        Wait until no running peer lists node C{i} among the cluster's
        C{wsrep_incoming_addresses} any more (about 3 s after a kill).
        """
        address = f"{LOOPBACK}:{self.node_port(i)}"

        def evicted() -> bool:
            statuses = self._peer_status(i)
            return bool(statuses) and all(
                address not in s.get("wsrep_incoming_addresses", "").split(",") for s in statuses
            )

        if not poll_until(evicted, timeout):
            raise TimeoutError(f"the other nodes still list node {i} after {timeout}s")

    def wait_rejoined(self, i: int, timeout: float = 60.0) -> dict[str, str]:
        """
        Wait until node C{i} is Synced in the same configuration as a Synced
        peer.  Unlike L{wait_synced} this is not fooled by the stale Synced
        state that a frozen node reports for a few seconds after L{thaw}.
        """

        def rejoined(status: dict[str, str]) -> bool:
            conf = status.get("wsrep_cluster_conf_id")
            return is_synced(status) and any(
                is_synced(peer) and peer.get("wsrep_cluster_conf_id") == conf
                for peer in self._peer_status(i)
            )

        return self.wait_state(i, rejoined, timeout)
