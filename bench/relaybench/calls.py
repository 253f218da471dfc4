# -*- test-case-name: tests.bench.test_calls -*-
"""
Python calls per relayed request, from the ``pstats`` file of a relay profiled under load
(``cprofiled.py``): how much Python a connection costs, counted rather than sampled.

cProfile slows every call down, so its times are only good for comparing functions within one
profile; the call counts are exact.
"""

from __future__ import annotations

import pstats
from dataclasses import dataclass
from pathlib import Path

#: Path prefixes cut from file names, so that a tree's location does not matter.
_CUT = ("/site-packages/", "/src/", "/lib/python3")


@dataclass(frozen=True)
class Function:
    """One profiled function: where it is, how often it was called, its time."""

    name: str
    calls: int
    own_seconds: float
    cumulative_seconds: float


def where(filename: str, line: int, function: str) -> str:
    """``function (file:line)``, the file shortened; built-ins as cProfile names them."""
    if filename == "~":
        return function
    for cut in _CUT:
        if cut in filename:
            filename = filename.rsplit(cut, 1)[1].lstrip("/")
            if cut == "/lib/python3":
                filename = filename.split("/", 1)[-1]
            break
    return f"{function} ({filename}:{line})"


def load(path: Path) -> list[Function]:
    """The functions in a ``pstats`` file, most called first."""
    # (file, line, function) -> (primitive calls, calls, own time, cumulative time, callers)
    stats: dict[tuple[str, int, str], tuple[int, int, float, float, object]]
    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    functions = [
        Function(where(filename, line, name), calls, own, cumulative)
        for (filename, line, name), (_, calls, own, cumulative, _) in stats.items()
    ]
    return sorted(functions, key=lambda f: (-f.calls, f.name))


def summary(functions: list[Function], requests: int, limit: int) -> str:
    """Calls per request in all, and the ``limit`` most called functions: calls, own and
    cumulative µs per request."""
    if requests <= 0:
        return "no requests: nothing to divide by"
    total = sum(f.calls for f in functions)
    lines = [
        f"Python calls: {total:,} over {requests:,} requests = {total / requests:,.1f} per"
        " request",
        "",
        f"most called (top {limit}; times under cProfile, compare them only with each other):",
        f"{'calls/req':>9}  {'own us/req':>10}  {'cum us/req':>10}  function",
    ]
    for f in functions[:limit]:
        lines.append(
            f"{f.calls / requests:9.2f}  {1e6 * f.own_seconds / requests:10.2f}"
            f"  {1e6 * f.cumulative_seconds / requests:10.2f}  {f.name}"
        )
    return "\n".join(lines)
