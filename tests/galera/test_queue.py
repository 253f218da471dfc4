"""
The wait queue (C{--queue-timeout}) on the real cluster: every node goes non-Primary at once (a
view change that leaves no Primary component, as when a resumed node merges back), and the
clients that connect through penbal while no node is fit are held and served once a node is
fit again, none of them failing.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass

import pymysql
from twisted.trial.unittest import SynchronousTestCase

from penbal.testing.galera_cluster import SQLError
from tests.galera.cluster import NODES
from tests.galera.scenario import Scenario, report

TABLE = "sbtest.penbal_queue_probe"
#: Long enough to outlast the window: 2 to 5 s of no fit node on a quiet machine, 14 s once on
#: a loaded CI machine (the merge after gmcast.isolate took 12.6 s there).
QUEUE_TIMEOUT = 30.0


@dataclass(frozen=True)
class Query:
    """One client: connect through penbal, read a table (fails with 1047 on a non-Primary
    node), disconnect."""

    start: float
    end: float
    error: str | None


class TableClients:
    """C{threads} clients reading a table through penbal, one new connection after another,
    each allowed to wait longer than the queue timeout."""

    def __init__(self, port: int, user: str, password: str, threads: int = 4,
                 max_seconds: float = 120.0) -> None:
        self.port, self.user, self.password = port, user, password
        self.max_seconds = max_seconds
        self.queries: list[Query] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> list[Query]:
        self._stop.set()
        for thread in self._threads:
            thread.join(QUEUE_TIMEOUT + 10)
        with self._lock:
            return sorted(self.queries, key=lambda q: q.start)

    def _run(self) -> None:
        ends = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < ends:
            start = time.monotonic()
            error = None
            try:
                connection = pymysql.connect(
                    host="127.0.0.1", port=self.port, user=self.user, password=self.password,
                    connect_timeout=5, read_timeout=QUEUE_TIMEOUT + 5, write_timeout=5)
                try:
                    with connection.cursor() as cursor:
                        cursor.execute(f"SELECT COUNT(*) FROM {TABLE}")
                finally:
                    connection.close()
            except Exception as e:
                error = f"{type(e).__name__}: {e}"
            with self._lock:
                self.queries.append(Query(start, time.monotonic(), error))
            self._stop.wait(0.02)


class QueueOnClusterTests(SynchronousTestCase):
    """No Primary component for a few seconds costs no client that connects meanwhile."""

    def isolate(self, scenario: Scenario, nodes: tuple[int, ...], on: bool) -> None:
        value = 1 if on else 0
        for i in nodes:
            scenario.cluster.sql(i, f"SET GLOBAL wsrep_provider_options='gmcast.isolate={value}'")

    def all_nodes(self, scenario: Scenario, status: str, timeout: float) -> float:
        """Wait until every node reports C{wsrep_cluster_status} C{status}; when (monotonic)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(SQLError):
                seen = [scenario.cluster.status(i, timeout=2).get("wsrep_cluster_status")
                        for i in NODES]
                if all(each == status for each in seen):
                    return time.monotonic()
            time.sleep(0.05)
        raise AssertionError(f"the nodes never all became {status} within {timeout}s")

    def test_no_primary_component_costs_no_client(self) -> None:
        """Nodes 2 and 3 are cut off from the group (gmcast.isolate) until all three are
        non-Primary, then let back: penbal holds the clients that come while no node is fit
        and serves them when one is; none fails."""
        scenario = Scenario(self, "--queue-timeout", str(QUEUE_TIMEOUT), threads=1)
        # The merge can take long on a loaded machine: every wait below is bounded.
        scenario.traffic.stop()
        cluster = scenario.cluster
        cluster.sql(1, f"CREATE TABLE IF NOT EXISTS {TABLE} (id INT PRIMARY KEY)")
        cluster.sql(1, f"REPLACE INTO {TABLE} VALUES (1)")
        clients = TableClients(scenario.port, cluster.app_user, cluster.app_password, threads=8)
        self.addCleanup(clients.stop)
        deadline = time.monotonic() + 20
        while len(clients.queries) < 8:  # clients running in a healthy cluster first
            self.assertLess(time.monotonic(), deadline, "no client query through penbal")
            time.sleep(0.05)
        wall_offset = scenario.wall_offset
        fault = time.monotonic()
        self.isolate(scenario, (2, 3), True)
        self.addCleanup(self.isolate, scenario, (2, 3), False)
        none_primary = self.all_nodes(scenario, "non-Primary", 20)
        # Held until penbal has seen it (the check's fall hysteresis takes a few rounds): from
        # then on no node is fit for penbal, and new clients must wait.
        unfit_wall = max(scenario.logged_change(i, "unfit", fault + wall_offset) for i in NODES)
        none_fit = unfit_wall - wall_offset
        self.isolate(scenario, (2, 3), False)
        back = self.all_nodes(scenario, "Primary", QUEUE_TIMEOUT)
        fit_wall = min(scenario.logged_change(i, "fit", unfit_wall) for i in NODES)
        fit_again = fit_wall - wall_offset
        queries = clients.stop()
        # Held: started while no node was fit for penbal, and ended once one was again.
        held = [q for q in queries if q.start < fit_again - 1.0 and q.end >= fit_again - 0.3]
        since_none_fit = [q for q in queries if q.start >= none_fit]
        lag = [q for q in queries if fault <= q.start < none_fit and q.error is not None]
        before_fault = [q for q in queries if q.end < fault]
        report("queue", no_primary_after=none_primary - fault,
               penbal_none_fit_after=none_fit - fault, primary_again_after=back - fault,
               penbal_fit_again_after=fit_again - fault, clients=len(queries), held=len(held),
               failed_held=sum(q.error is not None for q in held),
               failed_since_none_fit=sum(q.error is not None for q in since_none_fit),
               failed_before_penbal_saw_it=len(lag),
               longest_wait=max((q.end - q.start for q in held), default=0.0))
        self.assertTrue(before_fault and all(q.error is None for q in before_fault))
        self.assertGreaterEqual(len(held), 4, "no client waited for a fit node")
        self.assertEqual([q for q in held if q.error is not None], [])
        self.assertEqual([q for q in since_none_fit if q.error is not None], [])
