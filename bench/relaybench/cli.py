"""
Command line: run every (row, relay) cell, print the table, write the JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from relaybench import backends, measure, sysbench
from relaybench.procs import (
    BenchError,
    Proc,
    machine_busy,
    pin_self,
    raise_nofile,
    require_tools,
    wait_quiet,
)
from relaybench.relays import (
    PENBAL_CMD,
    PORTFORWARD_CMD,
    PRODUCTION_CMD,
    RelaySpec,
    default_specs,
    parse_extra,
    workers_specs,
)
from relaybench.report import (
    DEFAULT_ROWS,
    ROW_GROUPS,
    Cell,
    JsonValue,
    median_cell,
    table,
    write_json,
)

BENCH = Path(__file__).resolve().parents[1]
DEFAULT_JSON = BENCH / "results" / "latest.json"
QUICK_DURATION = 3
BUSY_WARNING = 10.0
PACKAGES = (
    "pen",
    "haproxy",
    "wrk",
    "nginx-light",
    "sysbench",
    "mariadb-server",
    "galera-4",
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run",
        description=(
            "Benchmark penbal beside Pen, HAProxy and no relay (direct), on"
            " loopback, in one run: kept-alive HTTP and new connection per"
            " request (wrk + nginx), bulk (one stream of a large file from nginx) and"
            " memory per idle"
            " connection. Relays run on --relay-core, everything else on"
            " --load-core. On request (--rows sysbench), sysbench OLTP through"
            " each relay to a local 3-node Galera cluster, all unpinned."
        ),
        epilog=(
            "Relay command templates may use {listen} and {backend}"
            " (127.0.0.1:PORT), {backends} (every backend), {listen_port},"
            " {backend_port}, {control} (127.0.0.1:PORT, free, for penbal's -C),"
            " {control_port} and {max_conns}; the aliases"
            f" 'penbal' ({PENBAL_CMD}), 'production' ({PRODUCTION_CMD}: issue 15's"
            f" command) and 'portforward' ({PORTFORWARD_CMD}) are accepted where a"
            " template is."
        ),
    )
    parser.add_argument(
        "--duration", type=int, default=10, metavar="SEC",
        help="seconds of load per cell (default: 10)",
    )  # fmt: skip
    parser.add_argument(
        "--quick", action="store_true",
        help=f"{QUICK_DURATION} s per cell (overrides --duration)",
    )  # fmt: skip
    parser.add_argument(
        "--repeat", type=int, default=1, metavar="N",
        help="rounds per load row; each cell reports its median (default: 1)",
    )  # fmt: skip
    parser.add_argument(
        "--wait-quiet", type=float, default=0.0, metavar="SEC",
        help=f"before each cell, wait up to SEC s until every core is under"
        f" {BUSY_WARNING:.0f} %% busy (for shared machines; default: 0, no wait)",
    )  # fmt: skip
    parser.add_argument(
        "--penbal-cmd", default="penbal", metavar="TEMPLATE",
        help="command that runs penbal (default: the 'penbal' alias; 'production' for"
        " issue 15's command)",
    )  # fmt: skip
    parser.add_argument(
        "--extra-relay", action="append", default=[], metavar="NAME=TEMPLATE",
        help="another relay to compare, e.g. pf=portforward (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--relays", default=None, metavar="LIST",
        help="comma-separated relays to run (default: direct,penbal,pen,haproxy"
        " and every --extra-relay)",
    )  # fmt: skip
    parser.add_argument(
        "--rows", default=",".join(DEFAULT_ROWS), metavar="LIST",
        help=f"comma-separated rows to run, of {','.join(ROW_GROUPS)}"
        f" (default: {','.join(DEFAULT_ROWS)})",
    )  # fmt: skip
    parser.add_argument(
        "--idle-conns", type=int, default=2000, metavar="N",
        help="idle connections for the memory row (default: 2000)",
    )  # fmt: skip
    parser.add_argument(
        "--max-conns", type=int, default=8000, metavar="N",
        help="penbal and Pen -x, HAProxy maxconn (default: 8000; HAProxy needs"
        " 2 descriptors per connection under RLIMIT_NOFILE)",
    )  # fmt: skip
    parser.add_argument("--relay-core", type=int, default=1, metavar="CPU")
    parser.add_argument("--load-core", type=int, default=0, metavar="CPU")
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, metavar="PATH",
        help=f"where to write the results (default: {DEFAULT_JSON})",
    )  # fmt: skip
    parser.add_argument(
        "--logdir", type=Path, default=None, metavar="DIR",
        help="keep configs and process logs here (default: a removed temp dir)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = QUICK_DURATION
    return args


def select_relays(args: argparse.Namespace) -> list[RelaySpec]:
    specs = default_specs(args.penbal_cmd)
    for value in args.extra_relay:
        extra = parse_extra(value)
        specs[extra.name] = extra
    names = list(specs) if args.relays is None else args.relays.split(",")
    unknown = [name for name in names if name not in specs]
    if unknown:
        raise BenchError(f"unknown relays {unknown}; known: {list(specs)}")
    return [specs[name] for name in names]


def select_rows(args: argparse.Namespace) -> list[str]:
    rows: list[str] = args.rows.split(",")
    unknown = [row for row in rows if row not in ROW_GROUPS]
    if unknown:
        raise BenchError(f"unknown rows {unknown}; known: {list(ROW_GROUPS)}")
    return rows


def needed_tools(rows: list[str], relays: list[RelaySpec]) -> list[str]:
    tools = {spec.tool for spec in relays if spec.tool is not None}
    if {"keepalive", "keepalive8", "newconn", "workers"} & set(rows):
        tools |= {"wrk", "nginx"}
    if "workers" in rows:
        tools.add("pen")
    if "bulk" in rows:
        tools.add("nginx")
    if "sysbench" in rows:
        tools |= set(sysbench.TOOLS)
    return sorted(tools)


def versions() -> dict[str, JsonValue]:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${Version}\n", *PACKAGES],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    found: dict[str, JsonValue] = {}
    for line in done.stdout.splitlines():
        name, _, version = line.partition(" ")
        found[name] = version
    return found


def commit() -> str:
    """The project's checked-out commit (read-only ``git rev-parse``)."""
    done = subprocess.run(
        ["git", "-C", str(BENCH), "rev-parse", "HEAD"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return done.stdout.strip() or "unknown"


def run_cells(
    setup: measure.Setup, rows: list[str], relays: list[RelaySpec], repeat: int
) -> list[Cell]:
    """Every row in turn; within a row, ``repeat`` rounds over all relays."""
    cells: list[Cell] = []
    nginx: Proc | None = None
    nginx_port = 0
    with contextlib.ExitStack() as stack:
        bulk = stack.enter_context(backends.bulk_file()) if "bulk" in rows else None
        for row in rows:
            if row == "sysbench":
                cells += sysbench.run(setup, relays, repeat, _progress, _summary)
                continue
            if row in NGINX_ROWS and nginx is None:
                nginx, nginx_port = backends.start_nginx(setup.load_core, setup.logdir, bulk)
                stack.callback(nginx.stop)
            rounds = 1 if row == "memory" else repeat
            runs: dict[tuple[str, str], list[Cell]] = {}
            for n in range(rounds):
                for spec in workers_specs() if row == "workers" else relays:
                    _progress(f"[{row} {n + 1}/{rounds}] {spec.name} ...")
                    quiet = _quiet(setup)
                    for cell in _cell(setup, row, spec, nginx_port):
                        if quiet is not None:
                            cell.detail["core_busy_before_percent"] = quiet
                        _progress(f"    {_summary(cell)}")
                        runs.setdefault((cell.row, cell.relay), []).append(cell)
            cells += [median_cell(got) for got in runs.values()]
    return cells


#: The rows whose backend is nginx (started once, on the first of them).
NGINX_ROWS = ("keepalive", "keepalive8", "newconn", "bulk", "workers")


def _quiet(setup: measure.Setup) -> dict[str, JsonValue] | None:
    if setup.wait_quiet <= 0:
        return None
    busy = wait_quiet(setup.wait_quiet, BUSY_WARNING)
    if max(busy.values(), default=0.0) >= BUSY_WARNING:
        _progress(f"    still busy after {setup.wait_quiet:.0f} s: {busy}")
    return _json_floats(busy)


def _cell(setup: measure.Setup, row: str, spec: RelaySpec, nginx_port: int) -> list[Cell]:
    if row == "workers":
        return (measure.workers_newconn(setup, spec, nginx_port, pinned=True)
                + measure.workers_newconn(setup, spec, nginx_port, pinned=False))
    if row in ("keepalive", "newconn"):
        return [measure.http(setup, spec, nginx_port, close=row == "newconn")]
    if row == "keepalive8":
        return [measure.http(setup, spec, nginx_port, close=False, connections=8)]
    if row == "bulk":
        return [measure.bulk(setup, spec, nginx_port)]
    return measure.memory(setup, spec)


def _summary(cell: Cell) -> str:
    if cell.error is not None:
        return f"{cell.row}: FAILED: {cell.error}"
    if cell.value is None:
        return f"{cell.row}: n/a"
    cpu = "" if cell.cpu_percent is None else f" (relay CPU {cell.cpu_percent:.0f} %)"
    busy = cell.detail.get("core_busy_percent")
    cores = ""
    if isinstance(busy, dict):
        cores = ", cores busy " + " ".join(f"{core}:{pct} %" for core, pct in busy.items())
    return f"{cell.row}: {cell.value:,.2f}{cpu}{cores}"


def _json_floats(values: dict[str, float]) -> dict[str, JsonValue]:
    return dict(values.items())


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return _main(args)
    except BenchError as e:
        print(f"bench/run: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench/run: interrupted", file=sys.stderr)
        return 130


def _main(args: argparse.Namespace) -> int:
    relays = select_relays(args)
    rows = select_rows(args)
    require_tools(needed_tools(rows, relays))
    if "sysbench" in rows:
        sysbench.check_galera()
    cores = os.sched_getaffinity(0)
    for core in (args.relay_core, args.load_core):
        if core not in cores:
            raise BenchError(f"core {core} is not available (have {sorted(cores)})")
    pin_self(args.load_core)
    before = machine_busy()
    if max(before.values(), default=0.0) > BUSY_WARNING:
        _progress(
            f"warning: the machine is not idle before the run (per-core busy %: {before});"
            " expect noisy numbers"
        )
    nofile = raise_nofile()
    if 2 * args.max_conns + 100 > nofile:
        raise BenchError(
            f"--max-conns {args.max_conns} needs RLIMIT_NOFILE"
            f" {2 * args.max_conns + 100}; the limit here is {nofile}"
        )
    if args.idle_conns + 100 > args.max_conns:
        raise BenchError("--max-conns must exceed --idle-conns by at least 100")
    with tempfile.TemporaryDirectory(prefix="relaybench-") as tmp:
        logdir = args.logdir if args.logdir is not None else Path(tmp)
        logdir.mkdir(parents=True, exist_ok=True)
        setup = measure.Setup(
            logdir=logdir.resolve(),
            relay_core=args.relay_core,
            load_core=args.load_core,
            duration=args.duration,
            max_conns=args.max_conns,
            idle_conns=args.idle_conns,
            wait_quiet=args.wait_quiet,
        )
        started = datetime.datetime.now(datetime.UTC)
        cells = run_cells(setup, rows, relays, max(1, args.repeat))
    names = [spec.name for spec in relays]
    if "workers" in rows:
        print("\nworkers rows (one core: the relay, all its processes, on the relay core;"
              " unpinned: the relay and wrk on every core; nginx on the load core):")
        for spec in workers_specs():
            print(f"  {spec.name}: {spec.describe()}")
            if spec.name not in names:
                names.append(spec.name)
    print(
        f"\nrelay benchmark: {args.duration} s per cell, relay on core"
        f" {args.relay_core}, load and backends on core {args.load_core},"
        f" {args.idle_conns} idle connections"
    )
    for spec in relays:
        print(f"  {spec.name}: {spec.describe()}")
    if "sysbench" in rows:
        print(
            f"sysbench rows: {sysbench.NODES}-node Galera cluster, direct = node 1, relays over"
            " all nodes round-robin; cluster, relays and sysbench unpinned"
        )
        for spec in relays:
            if sysbench.row_spec(spec) != spec:
                print(f"  {spec.name} (sysbench): {sysbench.row_spec(spec).describe()}")
    print()
    print(table(cells, names, str(args.relay_core)))
    meta: dict[str, JsonValue] = {
        "started": started.isoformat(timespec="seconds"),
        "duration_s": args.duration,
        "repeat": args.repeat,
        "wait_quiet_s": args.wait_quiet,
        "relay_core": args.relay_core,
        "load_core": args.load_core,
        "idle_connections": args.idle_conns,
        "max_conns": args.max_conns,
        "relays": {spec.name: spec.describe() for spec in relays},
        "rows": list(rows),
        "core_busy_percent_before": _json_floats(before),
        "versions": versions(),
        "commit": commit(),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
    }
    if "sysbench" in rows:
        meta["sysbench"] = sysbench.describe()
    write_json(args.json, meta, cells)
    print(f"\nJSON: {args.json}")
    return 1 if any(cell.error is not None for cell in cells) else 0
