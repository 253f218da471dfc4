# -*- test-case-name: tests.ha.test_pair -*-
"""
What a client saw of a failover: from its attempts (one new connection every few ms, each with
when it started and ended and its error, "" if it worked), when new connections first failed
after the fault and when they succeeded again for good.

"For good" means a run of successes lasting L{STABLE} seconds: a lone success between failures
(the VIP still on the frozen host, a late ARP update) is not a recovery, and a lone failure long
after (a loaded machine delays one greeting) does not undo one; such failures are counted apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

STABLE = 0.5

Attempt = Mapping[str, Any]


@dataclass(frozen=True)
class Outage:
    """Times from the fault, in seconds, and counts of failed attempts."""

    first_failure: float | None
    recovered: float | None
    failed: int
    attempts: int
    failed_before: int
    failed_later: int


def measure(attempts: Sequence[Attempt], fault: float, stable: float = STABLE) -> Outage:
    """The outage the C{attempts} show for a fault at C{fault} (same clock)."""
    before = [a for a in attempts if a["end"] < fault]
    after = [a for a in attempts if a["start"] >= fault]
    failures = [a for a in after if a["error"]]
    first = failures[0]["start"] - fault if failures else None
    recovered: float | None = None
    window_end = 0.0
    for i, attempt in enumerate(after):
        if attempt["error"] or not failures or attempt["start"] < failures[0]["start"]:
            continue
        window_end = attempt["start"] + stable
        window = [a for a in after[i:] if a["start"] <= window_end]
        complete = after[-1]["start"] > window_end
        if complete and not any(a["error"] for a in window):
            recovered = attempt["end"] - fault
            break
    during = [a for a in failures if recovered is None or a["start"] < fault + recovered]
    return Outage(
        first_failure=first,
        recovered=recovered,
        failed=len(during),
        attempts=len(after),
        failed_before=sum(1 for a in before if a["error"]),
        failed_later=len(failures) - len(during),
    )
