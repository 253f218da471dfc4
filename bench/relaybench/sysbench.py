"""
The sysbench rows: OLTP load through each relay to a real 3-node Galera cluster.

The cluster (``penbal.testing.galera_cluster``) runs on 127.0.0.1, SQL on
ports 3381-3383 and group communication from 5067, apart from the test
clusters. It is started once, its tables prepared once through node 1, and it
is stopped at the end, also after a failure. ``direct`` goes to node 1; the
relays balance over the three nodes, round-robin (penbal and Pen with ``-r``,
HAProxy's default; a ``--penbal-cmd`` template such as ``production`` runs as given, with
``{backends}`` the three nodes and ``{control}`` its own control port). Each round runs every
relay in the order given, so Pen and penbal alternate, and each cell is the median of its
rounds. For these rows the cluster, the relays and sysbench are
unpinned: they run on every core.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from penbal.testing.galera_cluster import GaleraCluster, require_galera
from relaybench.measure import Setup, cpu_per_request
from relaybench.procs import (
    LOOPBACK,
    BenchError,
    CoreMeter,
    CpuMeter,
    Proc,
    run_tool,
    unpinned,
)
from relaybench.relays import PENBAL_CMD, PENBAL_RR_CMD, RelaySpec, start_relay
from relaybench.report import ROW_GROUPS, Cell, JsonValue, median_cell

NODES = 3
BASE_PORT = 3380
GCOMM_BASE = 5057
CLUSTER_NAME = "relaybench"
START_TIMEOUT = 120.0
PREPARE_TIMEOUT = 300.0
THREADS = 8
TABLES = 4
TABLE_SIZE = 10_000
# Galera applies writes on the other nodes asynchronously: let them catch up.
SETTLE_AFTER_PREPARE = 2.0

# Row key -> sysbench test, in the order they run.
TESTS: dict[str, str] = {
    "sb_point_select": "oltp_point_select",
    "sb_read_only": "oltp_read_only",
}
assert tuple(TESTS) == ROW_GROUPS["sysbench"]

TOOLS = ("sysbench",)


@dataclass(frozen=True)
class Result:
    """What one ``sysbench ... run`` reports."""

    transactions: int
    tps: float
    queries: int
    qps: float
    ignored_errors: int
    reconnects: int
    latency_avg_ms: float
    latency_p95_ms: float


@dataclass(frozen=True)
class Database:
    """Where and as whom sysbench connects (the relay's port replaces ``port``)."""

    port: int
    user: str
    password: str
    database: str


def check_galera() -> None:
    """Fail before anything starts unless MariaDB and Galera are installed."""
    try:
        require_galera()
    except RuntimeError as e:
        raise BenchError(str(e)) from e


def _match(pattern: str, text: str) -> re.Match[str]:
    found = re.search(pattern, text)
    if found is None:
        raise BenchError(f"no {pattern!r} in the sysbench output:\n{text[-800:]}")
    return found


def parse(text: str) -> Result:
    """Parse the report of ``sysbench ... run``."""
    per_sec = r":\s+(\d+)\s+\(([\d.]+) per sec\.\)"
    transactions = _match("transactions" + per_sec, text)
    queries = _match(r"\bqueries" + per_sec, text)
    return Result(
        transactions=int(transactions[1]),
        tps=float(transactions[2]),
        queries=int(queries[1]),
        qps=float(queries[2]),
        ignored_errors=int(_match(r"ignored errors:\s+(\d+)", text)[1]),
        reconnects=int(_match(r"reconnects:\s+(\d+)", text)[1]),
        latency_avg_ms=float(_match(r"avg:\s+([\d.]+)", text)[1]),
        latency_p95_ms=float(_match(r"95th percentile:\s+([\d.]+)", text)[1]),
    )


def sysbench_argv(test: str, db: Database, *extra: str) -> list[str]:
    """``sysbench TEST`` with the connection and table options, then ``extra``."""
    return [
        "sysbench",
        test,
        "--db-driver=mysql",
        f"--mysql-host={LOOPBACK}",
        f"--mysql-port={db.port}",
        f"--mysql-user={db.user}",
        f"--mysql-password={db.password}",
        f"--mysql-db={db.database}",
        f"--tables={TABLES}",
        f"--table-size={TABLE_SIZE}",
        *extra,
    ]


def load_argv(test: str, db: Database, duration: int) -> list[str]:
    """The measured run: ``THREADS`` threads for ``duration`` s, no prepared statements."""
    return sysbench_argv(
        test,
        db,
        f"--threads={THREADS}",
        f"--time={duration}",
        "--events=0",
        "--db-ps-mode=disable",
        "--percentile=95",
        "run",
    )


def _shown(argv: list[str]) -> str:
    """The command for the report, without the password."""
    return " ".join(
        "--mysql-password=..." if arg.startswith("--mysql-password=") else arg for arg in argv
    )


def describe() -> dict[str, JsonValue]:
    """The rows' fixed settings, for the JSON file."""
    return {
        "nodes": NODES,
        "sql_ports": [BASE_PORT + i for i in range(1, NODES + 1)],
        "threads": THREADS,
        "tables": TABLES,
        "table_size": TABLE_SIZE,
        "options": "--db-ps-mode=disable --percentile=95",
        "pinning": "none: cluster, relays and sysbench on every core",
        "direct": "node 1",
    }


def row_spec(spec: RelaySpec) -> RelaySpec:
    """The relay as this row runs it: penbal's default command round-robin."""
    if spec.template == PENBAL_CMD:
        return RelaySpec(spec.name, PENBAL_RR_CMD, spec.tool)
    return spec


def run(
    setup: Setup,
    relays: list[RelaySpec],
    repeat: int,
    progress: Callable[[str], None],
    summary: Callable[[Cell], str],
) -> list[Cell]:
    """Start the cluster, prepare, run ``repeat`` rounds over ``relays``, stop.

    Returns the median cell of each (row, relay); a cluster that does not
    start or prepare fails every cell.
    """
    with unpinned():
        basedir = Path(tempfile.mkdtemp(prefix="relaybench-galera-"))
        cluster = GaleraCluster(
            str(basedir),
            nodes=NODES,
            base_port=BASE_PORT,
            name=CLUSTER_NAME,
            gcomm_base=GCOMM_BASE,
        )
        try:
            try:
                db = _start(cluster, progress)
            except Exception as e:
                error = f"the Galera cluster did not start or prepare: {e}"
                return [Cell(row, spec.name, None, error=error) for row in TESTS for spec in relays]
            return _rounds(setup, cluster, db, relays, repeat, progress, summary)
        finally:
            progress("[sysbench] stopping the Galera cluster ...")
            cluster.stop()
            shutil.rmtree(basedir, ignore_errors=True)


def _start(cluster: GaleraCluster, progress: Callable[[str], None]) -> Database:
    progress(f"[sysbench] starting a {NODES}-node Galera cluster under {cluster.basedir} ...")
    cluster.start(timeout=START_TIMEOUT)
    db = Database(cluster.node_port(1), cluster.app_user, cluster.app_password, cluster.database)
    progress(f"[sysbench] preparing {TABLES} tables of {TABLE_SIZE} rows through node 1 ...")
    run_tool(
        sysbench_argv("oltp_read_only", db, f"--threads={TABLES}", "prepare"),
        PREPARE_TIMEOUT,
    )
    time.sleep(SETTLE_AFTER_PREPARE)
    return db


def _rounds(
    setup: Setup,
    cluster: GaleraCluster,
    db: Database,
    relays: list[RelaySpec],
    repeat: int,
    progress: Callable[[str], None],
    summary: Callable[[Cell], str],
) -> list[Cell]:
    ports = [cluster.node_port(i) for i in range(1, NODES + 1)]
    runs: dict[tuple[str, str], list[Cell]] = {}
    for n in range(repeat):
        for spec in relays:
            progress(f"[sysbench {n + 1}/{repeat}] {spec.name} ...")
            for cell in _relay_cells(setup, row_spec(spec), ports, db):
                progress(f"    {summary(cell)}")
                runs.setdefault((cell.row, cell.relay), []).append(cell)
    return [median_cell(got) for got in runs.values()]


def _relay_cells(setup: Setup, spec: RelaySpec, ports: list[int], db: Database) -> list[Cell]:
    """Both tests through one started relay (unpinned); the relay is stopped after."""
    try:
        relay = start_relay(spec, ports, core=None, logdir=setup.logdir, max_conns=setup.max_conns)
    except BenchError as e:
        return [Cell(row, spec.name, None, error=str(e)) for row in TESTS]
    try:
        target = Database(relay.port, db.user, db.password, db.database)
        return [_cell(setup, spec, row, test, target, relay.proc) for row, test in TESTS.items()]
    finally:
        relay.stop()


def _cell(
    setup: Setup, spec: RelaySpec, row: str, test: str, db: Database, proc: Proc | None
) -> Cell:
    """One sysbench run through the relay: TPS, p95 latency, errors, relay CPU."""
    argv = load_argv(test, db, setup.duration)
    detail: dict[str, JsonValue] = {"command": _shown(argv), "relay_command": spec.describe()}
    try:
        meter, cores = CpuMeter(proc), CoreMeter()
        meter.start()
        cores.start()
        result = parse(run_tool(argv, setup.duration + 30))
        cpu = meter.stop()
        busy: dict[str, JsonValue] = dict(cores.stop().items())
    except BenchError as e:
        return Cell(row, spec.name, None, error=str(e), detail=detail)
    detail.update(asdict(result))
    detail.update(cpu_per_request(meter, result.queries))  # per query, the relay's own
    detail["all_cores_busy_percent"] = busy
    cell = Cell(row, spec.name, result.tps, cpu, detail=detail)
    if result.ignored_errors or result.reconnects:
        cell.error = (
            f"sysbench saw {result.ignored_errors} errors and {result.reconnects} reconnects"
        )
    return cell
