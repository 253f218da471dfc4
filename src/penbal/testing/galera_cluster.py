# -*- test-case-name: tests.testing.test_galera_cluster -*-
"""
Start and control a real MariaDB Galera cluster on 127.0.0.1 for integration
tests and demos.

L{GaleraCluster} is plain blocking Python built on subprocesses: call it
directly from scripts, or through C{deferToThread} from Twisted code.  Every
wait has a deadline, and only processes it started are ever signalled, by pid.

Run C{python -m penbal.testing.galera_cli start|stop|status DIR} to manage
a cluster by hand; its pids and passwords are kept in C{DIR/state.json}.
"""

from __future__ import annotations

import atexit
import contextlib
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from penbal.testing._galera_config import require_galera, write_private
from penbal.testing._galera_nodes import GaleraNodes
from penbal.testing._galera_process import ServerProcess, SQLError, is_synced
from penbal.testing._galera_start import (
    recover_position,
    remaining,
    safe_to_bootstrap,
    start_cluster,
)

__all__ = ["GaleraCluster", "SQLError", "is_synced", "require_galera"]


class GaleraCluster(GaleraNodes):
    """
    A real MariaDB Galera cluster of C{nodes} nodes under C{basedir} (a
    fresh directory under /tmp), node C{i} (1-based) serving SQL on
    127.0.0.1:C{base_port + i} and group communication on
    127.0.0.1:C{gcomm_base + 10 * i} (IST on the next port, SST on the one
    after).

    Users created by L{start}: C{penbal_check} (USAGE only, for health
    checks) and C{penbal_app} (all privileges on database C{sbtest}), both
    reachable over TCP from 127.0.0.1 with C{check_password} and
    C{app_password}.
    """

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
        self._save_state()

    def thaw(self, i: int) -> None:
        """
        SIGCONT a node frozen by L{freeze}.  It reports a stale Synced state
        for a few seconds: use L{wait_rejoined}, not L{wait_synced}, to wait
        until it is really back.
        """
        process = self._processes.get(i)
        if process is not None:
            process.signal(signal.SIGCONT)
        self._frozen.discard(i)
        self._save_state()

    def restart(self, i: int, timeout: float = 120.0) -> None:
        """
        Restart node C{i} (typically after L{kill9}): stop it if it still
        runs, find its last committed position with C{--wsrep-recover}, start
        it with C{--wsrep_start_position} so that it catches up by IST, and
        wait until it is Synced.
        """
        deadline = time.monotonic() + timeout
        if self.is_running(i):
            self._stop_node(i, timeout=remaining(deadline))
        if not self._peers(i):
            raise RuntimeError(f"cannot restart node {i}: no other node runs to join")
        # Rejoining before the peers dropped the old incarnation takes ~14 s
        # instead of ~4 s: wait for them first (a few seconds after a kill).
        with contextlib.suppress(TimeoutError):
            self.wait_evicted(i, timeout=min(15.0, remaining(deadline)))
        position = recover_position(self._node(i), timeout=remaining(deadline))
        self.launch(i, f"--wsrep_start_position={position}")
        self.wait_synced(i, timeout=remaining(deadline))
        self.wait_rejoined(i, timeout=remaining(deadline))

    # Outages

    def shut_down(self, i: int, timeout: float = 60.0) -> None:
        """
        Stop node C{i} cleanly (SIGTERM by pid, SIGKILL if it outlives
        C{timeout}): it leaves the cluster gracefully, so the others stay
        Primary, and the last node of a cluster to stop is the one that is
        safe to bootstrap from.
        """
        self._stop_node(i, timeout)
        self._save_state()

    def bootstrap(self, i: int, timeout: float = 30.0) -> None:
        """
        Make node C{i}, left alone in a non-Primary component, the Primary
        component again (C{pc.bootstrap=YES}) and wait until it is Synced.
        """
        self.sql(i, "SET GLOBAL wsrep_provider_options='pc.bootstrap=YES'")
        self.wait_synced(i, timeout=timeout)

    def restart_cluster(self, order: Sequence[int] | None = None, timeout: float = 180.0) -> int:
        """
        Stop every node cleanly, one after another in C{order} (default:
        highest first), then bring the cluster back from the last one stopped:
        it alone says C{safe_to_bootstrap: 1}, so it starts with
        C{--wsrep-new-cluster}; the others join it one at a time, each
        waiting to be Synced.  Return the node bootstrapped.
        """
        deadline = time.monotonic() + timeout
        order = list(order or range(self.nodes, 0, -1))
        if sorted(order) != list(range(1, self.nodes + 1)):
            raise ValueError(f"the order must name every node once, not {order}")
        for i in order:
            self.thaw(i)
            self.shut_down(i, timeout=max(5.0, min(60.0, remaining(deadline))))
        last = order[-1]
        if not safe_to_bootstrap(self._node(last)):
            raise RuntimeError(f"node {last} stopped last but is not safe to bootstrap from")
        self.launch(last, "--wsrep-new-cluster")
        self.wait_synced(last, timeout=remaining(deadline), cluster_size=1)
        for size, i in enumerate(order[:-1], start=2):
            self.launch(i)
            self.wait_synced(i, timeout=remaining(deadline), cluster_size=size)
        return last

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
        if self._stop_at_exit:
            atexit.unregister(self.stop)
            self._stop_at_exit = False
        deadline = time.monotonic() + timeout
        frozen = sorted(self._frozen)
        for i in frozen:
            self.thaw(i)
        for i in frozen:
            # A resumed node shuts down slowly until it has rejoined.
            budget = min(20.0, deadline - time.monotonic() - 10.0)
            if budget > 0:
                with contextlib.suppress(TimeoutError, SQLError):
                    self.wait_rejoined(i, timeout=budget)
        for i in sorted(self._processes, reverse=True):
            self._stop_node(i, timeout=max(5.0, min(30.0, deadline - time.monotonic())))
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

