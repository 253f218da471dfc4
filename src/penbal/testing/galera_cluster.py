# -*- test-case-name: tests.testing.test_galera_cluster -*-
"""
Start and control a real MariaDB Galera cluster on 127.0.0.1 for integration
tests and demos.

L{GaleraCluster} is plain blocking Python built on subprocesses: call it
directly from scripts, or through C{deferToThread} from Twisted code.  Every
wait has a deadline, and only processes it started are ever signalled, by pid.

Run C{python -m penbal.testing.galera_cluster start|stop|status DIR} to manage
a cluster by hand; its pids and passwords are kept in C{DIR/state.json}.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from penbal.testing._galera_config import (
    APP_DATABASE,
    APP_USER,
    CHECK_USER,
    NodeLayout,
    node_layouts,
    require_galera,
    write_private,
)
from penbal.testing._galera_process import (
    Row,
    ServerProcess,
    SQLError,
    is_synced,
    run_sql,
    tail,
)
from penbal.testing._galera_start import (
    MARIADBD,
    recover_position,
    remaining,
    start_cluster,
)

__all__ = ["GaleraCluster", "SQLError", "is_synced", "require_galera"]

STATE_FILE = "state.json"


class GaleraCluster:
    """
    A cluster of C{nodes} MariaDB Galera nodes under C{basedir}, node C{i}
    (1-based) serving SQL on 127.0.0.1:C{base_port + i}.

    Users created by L{start}: C{penbal_check} (USAGE only, for health
    checks) and C{penbal_app} (all privileges on C{sbtest}), both reachable
    over TCP from 127.0.0.1 with L{check_password} and L{app_password}.
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
    ) -> None:
        self.basedir = Path(basedir).absolute()
        self.nodes = nodes
        self.base_port = base_port
        self.name = name
        self.gcomm_base = gcomm_base
        self.check_password = check_password or secrets.token_hex(12)
        self.app_password = app_password or secrets.token_hex(12)
        self._layouts = node_layouts(self.basedir, nodes, base_port, gcomm_base)
        self._processes: dict[int, ServerProcess] = {}
        self._frozen: set[int] = set()

    @classmethod
    def from_state(cls, basedir: str) -> GaleraCluster:
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
        )
        for key, pid in state["pids"].items():
            node = cluster._node(int(key))
            cluster._processes[node.index] = ServerProcess(int(pid), node.config_file)
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
        """
        deadline = time.monotonic() + timeout
        last: dict[str, str] | str = "never reached"
        while True:
            remaining = deadline - time.monotonic()
            try:
                status = self.status(i, timeout=max(1.0, min(5.0, remaining)))
            except SQLError as e:
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

        process = self._processes.get(i)
        if process is not None and not process.alive():
            raise RuntimeError(self._died_message(i))
        try:
            return self.wait_state(i, wanted, timeout)
        except TimeoutError:
            if process is not None and not process.alive():
                raise RuntimeError(self._died_message(i)) from None
            raise

    def _died_message(self, i: int) -> str:
        node = self._node(i)
        return f"node {i} is not running; end of {node.error_log}:\n" + tail(node.error_log)

    # Life cycle

    def start(self, timeout: float = 120.0) -> None:
        """
        Create fresh data directories, bootstrap node 1, create the users and
        the C{sbtest} database, then join the other nodes one at a time, each
        time waiting until the new node is Synced.  On failure every node
        started so far is stopped.
        """
        deadline = time.monotonic() + timeout
        try:
            start_cluster(self, self._layouts, deadline)
        except BaseException:
            self.stop()
            raise

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

    def _save_state(self) -> None:
        state = {
            "name": self.name,
            "nodes": self.nodes,
            "base_port": self.base_port,
            "gcomm_base": self.gcomm_base,
            "check_password": self.check_password,
            "app_password": self.app_password,
            "pids": {str(i): p.pid for i, p in self._processes.items()},
        }
        write_private(self.basedir / STATE_FILE, json.dumps(state, indent=2) + "\n")

    def layout(self, i: int) -> NodeLayout:
        """Paths and ports of node C{i}."""
        return self._node(i)

    # Faults

    def desync(self, i: int, on: bool = True, timeout: float = 30.0) -> None:
        """
        Set C{wsrep_desync} on node C{i} and wait until it reports state 2
        (Donor/Desynced) when on, or 4 (Synced) when off.
        """
        self.sql(i, f"SET GLOBAL wsrep_desync={'ON' if on else 'OFF'}")
        want = "2" if on else "4"
        self.wait_state(i, lambda s: s.get("wsrep_local_state") == want, timeout)

    def reject_queries(self, i: int, value: str = "ALL") -> None:
        """Set C{wsrep_reject_queries} (NONE, ALL or ALL_KILL) on node C{i}."""
        value = value.upper()
        if value not in ("NONE", "ALL", "ALL_KILL"):
            raise ValueError(f"wsrep_reject_queries cannot be {value!r}")
        self.sql(i, f"SET GLOBAL wsrep_reject_queries={value}")

    def kill9(self, i: int, timeout: float = 30.0) -> None:
        """SIGKILL the server of node C{i} and wait until it is gone."""
        process = self._running(i)
        process.signal(signal.SIGKILL)
        self._frozen.discard(i)
        if not process.wait_exit(timeout):
            raise TimeoutError(f"node {i} (pid {process.pid}) survived SIGKILL")

    def freeze(self, i: int) -> None:
        """SIGSTOP node C{i}: it accepts connections and never answers."""
        self._running(i).signal(signal.SIGSTOP)
        self._frozen.add(i)

    def thaw(self, i: int) -> None:
        """SIGCONT a node frozen by L{freeze}."""
        self._running(i).signal(signal.SIGCONT)
        self._frozen.discard(i)

    def restart(self, i: int, timeout: float = 120.0) -> None:
        """
        Restart node C{i} (typically after L{kill9}): stop it if it still
        runs, find its last committed position with C{--wsrep-recover}, start
        it with C{--wsrep_start_position} so that it catches up by IST, and
        wait until it is Synced.
        """
        deadline = time.monotonic() + timeout
        node = self._node(i)
        if self.is_running(i):
            self._stop_node(i, timeout=remaining(deadline))
        if not any(self.is_running(j) for j in range(1, self.nodes + 1) if j != i):
            raise RuntimeError(f"cannot restart node {i}: no other node runs to join")
        position = recover_position(node, timeout=remaining(deadline))
        self.launch(i, f"--wsrep_start_position={position}")
        self.wait_synced(i, timeout=remaining(deadline))

    def _running(self, i: int) -> ServerProcess:
        process = self._processes.get(self._node(i).index)
        if process is None or not process.alive():
            raise RuntimeError(f"node {i} is not running")
        return process

    # Credentials

    def write_credentials(self, path: str) -> None:
        """
        Write a my.cnf-style C{[client]} file with the check user's
        credentials, mode 600.
        """
        write_private(
            Path(path),
            f"[client]\nuser={self.check_user}\npassword={self.check_password}\n",
        )

    # Stopping

    def _stop_node(self, i: int, timeout: float) -> None:
        """SIGTERM node C{i}, then SIGKILL it if it outlives C{timeout}."""
        process = self._processes.get(i)
        if process is None:
            return
        process.signal(signal.SIGCONT)
        if process.signal(signal.SIGTERM) and not process.wait_exit(timeout):
            process.signal(signal.SIGKILL)
            process.wait_exit(10.0)
        self._frozen.discard(i)

    def stop(self, timeout: float = 60.0) -> None:
        """
        Stop every node this harness started, highest first: resume frozen
        nodes (and give them a bounded chance to resync), SIGTERM each by pid,
        and SIGKILL those that outlive the deadline.  Safe to call twice.
        """
        deadline = time.monotonic() + timeout
        frozen = sorted(self._frozen)
        for i in frozen:
            self._processes[i].signal(signal.SIGCONT)
        for i in frozen:
            remaining = min(20.0, deadline - time.monotonic() - 10.0)
            if remaining > 0:
                with contextlib.suppress(TimeoutError, RuntimeError):
                    self.wait_synced(i, timeout=remaining)
        for i in sorted(self._processes, reverse=True):
            remaining = deadline - time.monotonic()
            self._stop_node(i, timeout=max(5.0, min(30.0, remaining)))
        if self._processes and self.basedir.exists():
            self._save_state()

    def __enter__(self) -> GaleraCluster:
        if not self._processes:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


if __name__ == "__main__":
    from penbal.testing._galera_cli import main

    raise SystemExit(main())
