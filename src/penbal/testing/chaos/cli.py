# -*- test-case-name: tests.testing.chaos.test_cli -*-
"""
C{bench/chaos --minutes N}: start a fresh 3-node Galera cluster on 127.0.0.1, run the chaos
run against it through penbal for N minutes of faults, print the per-fault table (markdown)
and every goal missed, and stop the cluster.  Exits 1 if a goal was missed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from penbal.testing.chaos.faults import DESCRIPTIONS, FAULTS
from penbal.testing.chaos.run import ChaosRun, Outcome, Settings
from penbal.testing.chaos.tally import markdown
from penbal.testing.galera_cluster import GaleraCluster, require_galera


def _kinds(text: str) -> list[str]:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in FAULTS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(
            f"unknown fault kind(s) {unknown}: expected a comma-separated list of"
            f" {','.join(FAULTS)}")
    return kinds


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 24 * 60:
        raise argparse.ArgumentTypeError(f"expected minutes between 0 and 1440, not {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench/chaos",
        description="Faults at random on a real 3-node Galera cluster, clients through"
                    " penbal; prints the per-fault table.")
    p.add_argument("--minutes", type=_minutes, default=2.0,
                   help="how long faults are injected (the last one is finished after)")
    p.add_argument("--seed", type=int, default=17, help="random seed (faults, nodes, clients)")
    p.add_argument("--clients", type=int, default=16, help="client connections through penbal")
    p.add_argument("--faults", type=_kinds, default=list(FAULTS),
                   help=f"fault kinds, comma-separated (default all: {','.join(FAULTS)})")
    p.add_argument("--sql-base", type=int,
                   default=int(os.environ.get("PENBAL_TEST_GALERA_SQL_BASE", "3390")),
                   help="node i serves SQL on 127.0.0.1:SQL_BASE+i")
    p.add_argument("--gcomm-base", type=int,
                   default=int(os.environ.get("PENBAL_TEST_GALERA_GCOMM_BASE", "5157")),
                   help="node i's group communication on GCOMM_BASE+10*i (and the next two)")
    p.add_argument("--json", metavar="FILE", help="also write the counts and faults as JSON")
    return p


def report(outcome: Outcome) -> str:
    """The table, what each fault kind does, and the goals missed."""
    lines = [markdown(outcome.tally), ""]
    lines += [f"- {kind}: {DESCRIPTIONS[kind]}" for kind in outcome.tally.rows
              if kind in DESCRIPTIONS]
    lines += ["", "Failures by kind and MySQL error:"]
    lines += [f"- {row.kind}: " + ", ".join(
        f"{what} x{n}" for what, n in sorted(row.errors.items(), key=lambda e: -e[1]))
        for row in outcome.tally.rows.values() if row.errors]
    lines += ["", f"{len(outcome.faults)} faults in {outcome.seconds / 60:.1f} min;"
              f" penbal's --queue-timeout {outcome.queue_timeout:g} s"]
    violations = outcome.violations()
    lines.append("goals met" if not violations else "goals missed:")
    lines += [f"- {v}" for v in violations]
    return "\n".join(lines)


def as_json(outcome: Outcome, **settings: float) -> dict[str, Any]:
    """The counts, every fault and the goals missed, as plain data."""
    return {"rows": [asdict(r) for r in outcome.tally.rows.values()],
            "faults": [asdict(x) for x in outcome.faults],
            "violations": outcome.violations(),
            "queue_timeout": outcome.queue_timeout, **settings}


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        require_galera()
    except RuntimeError as e:
        print(f"bench/chaos: {e}", file=sys.stderr)
        return 2
    basedir = tempfile.mkdtemp(prefix="penbal-chaos-", dir="/tmp")
    os.chmod(basedir, 0o755)
    cluster = GaleraCluster(basedir, nodes=3, base_port=args.sql_base,
                            gcomm_base=args.gcomm_base, name="penbal_chaos")
    settings = Settings(seconds=args.minutes * 60, seed=args.seed, clients=args.clients,
                        kinds=args.faults, log_dir=basedir)

    def progress(line: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)

    try:
        progress(f"starting a 3-node cluster in {basedir}")
        cluster.start()
        credentials = os.path.join(basedir, "check.cnf")
        cluster.write_credentials(credentials)
        progress(f"chaos for {args.minutes:g} min, seed {args.seed}")
        outcome = ChaosRun(cluster, credentials, settings, progress=progress).run()
    finally:
        cluster.stop()
    print(report(outcome))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(as_json(outcome, seed=args.seed, minutes=args.minutes), f, indent=2)
    progress(f"penbal's log: {outcome.penbal_log}")
    return 1 if outcome.violations() else 0
