# -*- test-case-name: tests.bench.test_harness -*-
"""
Results: one cell per (row, relay), the printed table and the JSON file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]


@dataclass(frozen=True)
class Row:
    """One line of the comparison: what is measured and how it prints."""

    key: str
    title: str
    unit: str
    digits: int


ROWS: dict[str, Row] = {
    row.key: row
    for row in (
        Row("keepalive", "kept-alive", "req/s", 0),
        Row("keepalive8", "kept-alive, 8 connections", "req/s", 0),
        Row("newconn", "new connection per request", "req/s", 0),
        Row("bulk", "bulk, one stream", "Gbit/s", 2),
        Row("idle_kib", "idle connections", "KiB/conn", 2),
        Row("idle_mib", "RSS with the idle connections", "MiB", 1),
        Row("w_pinned_newconn", "new connection per request, relay on one core", "req/s", 0),
        Row("w_pinned_cpu_us", "relay CPU per new connection, one core (all processes)", "us",
            1),
        Row("w_newconn", "new connection per request, relay and wrk unpinned", "req/s", 0),
        Row("w_cpu_us", "relay CPU per new connection, unpinned (all processes)", "us", 1),
        Row("sb_point_select", "sysbench oltp_point_select, 8 threads", "TPS", 0),
        Row("sb_read_only", "sysbench oltp_read_only, 8 threads", "TPS", 0),
    )
}

# The rows each ``--rows`` choice produces.
ROW_GROUPS: dict[str, tuple[str, ...]] = {
    "keepalive": ("keepalive",),
    "keepalive8": ("keepalive8",),
    "newconn": ("newconn",),
    "bulk": ("bulk",),
    "memory": ("idle_kib", "idle_mib"),
    "sysbench": ("sb_point_select", "sb_read_only"),
    "workers": ("w_pinned_newconn", "w_pinned_cpu_us", "w_newconn", "w_cpu_us"),
}

# What runs without ``--rows``: sysbench needs a Galera cluster, so only on request.
DEFAULT_ROWS: tuple[str, ...] = ("keepalive", "newconn", "bulk", "memory")


@dataclass
class Cell:
    """One measurement: ``value`` is None when the cell failed or is n/a."""

    row: str
    relay: str
    value: float | None
    cpu_percent: float | None = None
    error: str | None = None
    detail: dict[str, JsonValue] = field(default_factory=dict)


def median_cell(runs: list[Cell]) -> Cell:
    """The run with the median value (the lower one for an even count).

    The other runs' values go into ``detail["runs"]``; the cell fails only
    if every run failed.
    """
    good = sorted(
        (cell for cell in runs if cell.error is None and cell.value is not None),
        key=lambda cell: cell.value or 0.0,
    )
    chosen = good[(len(good) - 1) // 2] if good else runs[-1]
    if len(runs) > 1:
        chosen.detail["runs"] = [cell.value for cell in runs]
        # Each round's figures, None where it failed: what paired_ratio() pairs.
        chosen.detail["rounds"] = [cell.value if cell.error is None else None for cell in runs]
        chosen.detail["rounds_us_per_request"] = [us_per_request(cell) for cell in runs]
        failed: list[JsonValue] = [cell.error for cell in runs if cell.error is not None]
        if failed:
            chosen.detail["failed_runs"] = failed
    return chosen


def ratio(cells: list[Cell], cell: Cell, relay: str) -> float | None:
    """``cell.value`` divided by the same row's value for ``relay``."""
    for other in cells:
        if other.row == cell.row and other.relay == relay and other.value:
            return None if cell.value is None else cell.value / other.value
    return None


def us_per_request(cell: Cell) -> float | None:
    """The relay's CPU time per request (user + system, µs), None where not measured."""
    user = cell.detail.get("relay_user_us_per_request")
    system = cell.detail.get("relay_sys_us_per_request")
    if cell.error is not None or not isinstance(user, float | int):
        return None
    if not isinstance(system, float | int):
        return None
    return float(user + system)


def _rounds(cell: Cell, key: str) -> list[float | None]:
    """``cell``'s value (``key`` ``rounds``) or CPU per request (``rounds_us_per_request``) in
    each round, in order, None where the round failed; a single round's cell has no list,
    only its own figures."""
    found = cell.detail.get(key)
    if isinstance(found, list):
        return [value if isinstance(value, float | int) else None for value in found]
    if key == "rounds":
        return [cell.value if cell.error is None else None]
    return [us_per_request(cell)]


def paired_ratio(cells: list[Cell], cell: Cell, relay: str, key: str = "rounds"
                 ) -> float | None:
    """The median, over the rounds, of ``cell``'s figure divided by ``relay``'s in the same
    round (``key``: ``rounds`` for the values, ``rounds_us_per_request`` for the CPU per
    request).

    Each round runs every relay one after the other, so a round's two figures were taken
    minutes apart at most: a machine that drifts during the run (another tenant's load, a
    slow hour) moves both, and the ratio of each pair cancels it where the ratio of the
    two medians, taken from different rounds, does not. Rounds where either failed are left
    out; None if none is left."""
    other = next((c for c in cells if c.row == cell.row and c.relay == relay), None)
    if other is None:
        return None
    pairs = [
        mine / theirs
        for mine, theirs in zip(_rounds(cell, key), _rounds(other, key), strict=False)
        if mine is not None and theirs
    ]
    if not pairs:
        return None
    pairs.sort()
    middle = len(pairs) // 2
    return pairs[middle] if len(pairs) % 2 else (pairs[middle - 1] + pairs[middle]) / 2


def _number(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def per_request(cell: Cell) -> str:
    """The relay's CPU time per request, user + system, in µs (``-`` where not measured)."""
    if us_per_request(cell) is None:
        return "-"
    detail = cell.detail
    return f"{detail['relay_user_us_per_request']:.1f}+{detail['relay_sys_us_per_request']:.1f}"


def table(cells: list[Cell], relays: list[str], relay_core: str) -> str:
    """The side-by-side table, grouped by row, relays in the given order.

    Notes below it give failures, and how busy the relay core was while
    ``direct`` ran (no relay on it): other processes competing with the relays.
    """
    head = ("row", "relay", "value", "relay CPU", "us/req usr+sys", "vs direct", "vs pen",
            "paired", "CPU/req paired")
    lines: list[tuple[str, ...]] = [head]
    notes: list[str] = []
    for row in ROWS.values():
        first = True
        for relay in relays:
            cell = next((c for c in cells if c.row == row.key and c.relay == relay), None)
            if cell is None:
                continue
            value = _number(cell.value, row.digits)
            if cell.error is not None:
                value = "FAILED"
                notes.append(f"{row.title} / {relay}: {cell.error}")
            elif cell.value is None:
                value = "n/a"
            cpu = "-" if cell.cpu_percent is None else f"{cell.cpu_percent:.0f} %"
            title = f"{row.title} ({row.unit})" if first else ""
            first = False
            lines.append(
                (
                    title,
                    relay,
                    value,
                    cpu,
                    per_request(cell),
                    _ratio(ratio(cells, cell, "direct")),
                    _ratio(ratio(cells, cell, "pen")),
                    _ratio(paired_ratio(cells, cell, "pen")),
                    _ratio(paired_ratio(cells, cell, "pen", "rounds_us_per_request")),
                )
            )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for n, line in enumerate(lines):
        cols = [line[0].ljust(widths[0]), line[1].ljust(widths[1])]
        cols += [text.rjust(width) for text, width in zip(line[2:], widths[2:], strict=True)]
        out.append("  ".join(cols).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    out += [f"note: {note}" for note in notes]
    background = _background(cells, relay_core)
    if background:
        out.append(
            f"relay core {relay_core} busy while direct ran (no relay on it; others' load):"
            f" {background}"
        )
    return "\n".join(out)


def _background(cells: list[Cell], relay_core: str) -> str:
    found = []
    for cell in cells:
        busy = cell.detail.get("core_busy_percent")
        if cell.relay == "direct" and isinstance(busy, dict) and relay_core in busy:
            found.append(f"{cell.row} {busy[relay_core]} %")
    return ", ".join(found)


def write_json(path: Path, meta: dict[str, JsonValue], cells: list[Cell]) -> None:
    """Write the run's metadata and every cell, with its ratios, to ``path``."""
    results: list[JsonValue] = []
    for cell in cells:
        row = ROWS[cell.row]
        record: dict[str, JsonValue] = {"title": row.title, "unit": row.unit}
        record.update(asdict(cell))
        record["ratio_to_direct"] = ratio(cells, cell, "direct")
        record["ratio_to_pen"] = ratio(cells, cell, "pen")
        record["paired_ratio_to_pen"] = paired_ratio(cells, cell, "pen")
        record["paired_cpu_per_request_ratio_to_pen"] = paired_ratio(
            cells, cell, "pen", "rounds_us_per_request")
        results.append(record)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
