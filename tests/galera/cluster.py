# -*- test-case-name: tests.galera.test_failover -*-
"""
One real Galera cluster for the whole Galera suite, started on first use and stopped when the
test process exits, and the means to bring it back to three Synced nodes after a scenario.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from typing import Any

import pymysql

from penbal.testing.galera_cluster import GaleraCluster, SQLError

# Ports apart from the harness's own tests (3340/4657) and the default demo cluster (3310/4557).
SQL_BASE = int(os.environ.get("PENBAL_TEST_GALERA_SQL_BASE", "3360"))
GCOMM_BASE = int(os.environ.get("PENBAL_TEST_GALERA_GCOMM_BASE", "4857"))
NODES = (1, 2, 3)

_cluster: GaleraCluster | None = None
_failed: BaseException | None = None


def shared_cluster() -> GaleraCluster:
    """The suite's cluster, started (about 15 s) on the first call; a failed start fails
    every later call at once, with the same error."""
    global _cluster, _failed
    if _failed is not None:
        raise RuntimeError(f"the Galera test cluster did not start: {_failed}") from _failed
    if _cluster is None:
        basedir = tempfile.mkdtemp(prefix="penbal-galera-tests-", dir="/tmp")
        os.chmod(basedir, 0o755)
        cluster = GaleraCluster(basedir, nodes=3, base_port=SQL_BASE, gcomm_base=GCOMM_BASE)
        try:
            cluster.start()
        except BaseException as e:
            _failed = e
            raise
        cluster.write_credentials(os.path.join(basedir, "check.cnf"))
        _cluster = cluster
    return _cluster


def credentials_file(cluster: GaleraCluster) -> str:
    """The check user's my.cnf-style credentials file."""
    return str(cluster.basedir / "check.cnf")


def root(cluster: GaleraCluster, i: int) -> Any:
    """A root connection to node C{i} over its unix socket (to inject faults quickly)."""
    return pymysql.connect(unix_socket=cluster.socket_path(i), user="root", autocommit=True,
                           connect_timeout=5, read_timeout=10)


def set_global(cluster: GaleraCluster, i: int, assignment: str) -> tuple[float, float]:
    """Run C{SET GLOBAL assignment} on node C{i}; return when it started and ended."""
    connection = root(cluster, i)
    try:
        with connection.cursor() as cursor:
            started = time.monotonic()
            cursor.execute(f"SET GLOBAL {assignment}")
            return started, time.monotonic()
    finally:
        connection.close()


def bootstrap(cluster: GaleraCluster, i: int) -> None:
    """Make node C{i}, left alone in a non-Primary component, the Primary component again."""
    set_global(cluster, i, "wsrep_provider_options='pc.bootstrap=YES'")
    cluster.wait_synced(i, timeout=30)


def restore(cluster: GaleraCluster, timeout: float = 120.0) -> None:
    """Bring the cluster back to three Synced nodes in one configuration, whatever a scenario
    left: frozen nodes resumed, desync and reject_queries off, a lone non-Primary survivor
    bootstrapped, killed nodes restarted."""
    deadline = time.monotonic() + timeout
    running = [i for i in NODES if cluster.is_running(i)]
    if not running:
        raise RuntimeError("no Galera node runs any more: cannot restore the cluster")
    for i in running:
        cluster.thaw(i)  # SIGCONT: harmless for a node that is not frozen
    for i in running:
        with contextlib.suppress(SQLError, pymysql.err.MySQLError):
            set_global(cluster, i, "wsrep_desync=OFF")
            set_global(cluster, i, "wsrep_reject_queries=NONE")
    if len(running) == 1:
        # A lone survivor may still be on its way to non-Primary: let it get there first.
        (alone,) = running
        with contextlib.suppress(TimeoutError):
            cluster.wait_state(alone, lambda s: s.get("wsrep_cluster_status") != "Primary",
                               timeout=15)
        if cluster.status(alone).get("wsrep_cluster_status") != "Primary":
            bootstrap(cluster, alone)
        cluster.wait_synced(alone, timeout=max(1.0, deadline - time.monotonic()))
    else:
        for i in running:
            cluster.wait_rejoined(i, timeout=max(1.0, deadline - time.monotonic()))
    for i in NODES:
        if not cluster.is_running(i):
            cluster.restart(i, timeout=max(1.0, deadline - time.monotonic()))
    for i in NODES:
        cluster.wait_synced(i, timeout=max(1.0, deadline - time.monotonic()), cluster_size=3)
