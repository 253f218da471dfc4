"""
sysbench oltp_read_only through penbal to the real cluster, end to end, next to the same run
straight to one node.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass

from twisted.trial.unittest import SynchronousTestCase

from penbal.testing.galera_cluster import GaleraCluster
from penbal.testing.process import PenbalProcess, free_port
from tests.galera.cluster import NODES, credentials_file, restore, shared_cluster
from tests.galera.scenario import report

TABLES = 4
TABLE_SIZE = 10_000
THREADS = 4
SECONDS = 8


@dataclass(frozen=True)
class Run:
    """What sysbench reported."""

    transactions: int
    tps: float
    errors: int
    p95_ms: float


def parse(output: str) -> Run:
    """The figures of a sysbench 1.0 report."""

    def number(pattern: str) -> str:
        found = re.search(pattern, output)
        if found is None:
            raise AssertionError(f"no {pattern!r} in sysbench's output:\n{output}")
        return found.group(1)

    return Run(
        transactions=int(number(r"transactions:\s+(\d+)")),
        tps=float(number(r"transactions:\s+\d+\s+\(([\d.]+) per sec")),
        errors=int(number(r"ignored errors:\s+(\d+)")),
        p95_ms=float(number(r"95th percentile:\s+([\d.]+)")),
    )


def sysbench(cluster: GaleraCluster, port: int, command: str, *extra: str) -> str:
    """Run C{sysbench oltp_read_only COMMAND} against 127.0.0.1:C{port} as the app user."""
    binary = shutil.which("sysbench")
    if binary is None:
        raise AssertionError("sysbench is missing: run scripts/install-galera")
    done = subprocess.run(
        [binary, "oltp_read_only", "--db-driver=mysql", "--mysql-host=127.0.0.1",
         f"--mysql-port={port}", f"--mysql-user={cluster.app_user}",
         f"--mysql-password={cluster.app_password}", f"--mysql-db={cluster.database}",
         f"--tables={TABLES}", f"--table-size={TABLE_SIZE}", *extra, command],
        capture_output=True, text=True, timeout=180, check=False)
    if done.returncode != 0:
        raise AssertionError(f"sysbench {command} failed ({done.returncode}):\n"
                             f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done.stdout


def connection_backends(penbal: PenbalProcess) -> set[str]:
    """The backends of the connections in penbal's access log."""
    return {str(record["backend"]) for record in penbal.access_records()}


class SysbenchTests(SynchronousTestCase):
    """A real MySQL workload through the balancer."""

    def test_oltp_read_only(self) -> None:
        """oltp_read_only through penbal (Galera check on) finishes without errors, its
        connections spread over the three nodes; the same run straight to node 1 is the
        reference."""
        cluster = shared_cluster()
        restore(cluster)
        node1 = cluster.node_port(1)
        sysbench(cluster, node1, "cleanup")
        sysbench(cluster, node1, "prepare")
        self.addCleanup(sysbench, cluster, node1, "cleanup")
        port = free_port()
        penbal = PenbalProcess(
            ["--check", "galera", "--check-credentials", credentials_file(cluster),
             "--policy", "roundrobin", f"127.0.0.1:{port}",
             *[f"127.0.0.1:{cluster.node_port(i)}" for i in NODES]],
            listen_port=port, access_log=True)
        self.addCleanup(penbal.stop)
        run = (f"--threads={THREADS}", f"--time={SECONDS}", "--report-interval=0")
        direct = parse(sysbench(cluster, node1, "run", *run))
        through = parse(sysbench(cluster, port, "run", *run))
        self.assertEqual(through.errors, 0)
        self.assertGreater(through.transactions, 100)
        wanted = {f"127.0.0.1:{cluster.node_port(i)}" for i in NODES}
        deadline = time.monotonic() + 10
        while (reached := connection_backends(penbal)) < wanted:
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(reached, wanted, "sysbench's connections did not spread")
        self.assertNotIn('"fitness": "unfit"', penbal.log())
        report("sysbench oltp_read_only", threads=THREADS, direct_tps=direct.tps,
               direct_p95_ms=direct.p95_ms, penbal_tps=through.tps,
               penbal_p95_ms=through.p95_ms, penbal_errors=through.errors)
