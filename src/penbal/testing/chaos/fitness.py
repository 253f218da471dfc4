# -*- test-case-name: tests.testing.chaos.test_fitness -*-
"""
When was a node fit for traffic, in two views: the balancer's (its logged health changes) and
the harness's (direct reads of each node's wsrep state).  A client's failed connect breaks the
goal only if some node was fit in both views at once while the client waited: neither the
balancer's detection delay (it cannot know a node died the instant it died) nor its hysteresis
(it re-admits a node only after several good checks) counts against it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from typing import Any

from penbal.testing.galera_poller import Observation

Interval = tuple[float, float]

#: Fitness words in the balancer's health events under which it still sends clients.
USABLE = ("fit", "last-resort")


def health_events(log_text: str) -> list[dict[str, Any]]:
    """The balancer's health changes, in order, from its JSON log (C{twist --log-format json})."""
    events = []
    for line in log_text.split("\n"):
        try:
            event = json.loads(line.lstrip("\x1e"))
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("penbal_event") == "health":
            events.append(event)
    return events


def balancer_fit(events: Iterable[Mapping[str, Any]], address: str, begin: float,
                 end: float) -> list[Interval]:
    """
    When the balancer sent clients to the backend at C{address}, between C{begin} and C{end}:
    fit from the start (as the balancer starts), then as each health change says.
    """
    intervals: list[Interval] = []
    since: float | None = begin
    for event in events:
        if event.get("backend") != address:
            continue
        when = float(event["log_time"])
        usable = event.get("fitness") in USABLE
        if usable and since is None:
            since = max(begin, when)
        elif not usable and since is not None:
            if when > since:
                intervals.append((since, min(when, end)))
            since = None
    if since is not None and end > since:
        intervals.append((since, end))
    return [(a, b) for a, b in intervals if b > a]


def serves(values: Mapping[str, str]) -> bool:
    """The node's own state says it can serve clients (Synced or desynced, Primary, ready)."""
    return (
        values.get("wsrep_local_state") in ("4", "2")
        and values.get("wsrep_ready") == "ON"
        and values.get("wsrep_connected") == "ON"
        and values.get("wsrep_cluster_status") == "Primary"
        and values.get("wsrep_reject_queries", "NONE") == "NONE"
    )


def _conf_id(values: Mapping[str, str]) -> int:
    try:
        return int(values.get("wsrep_cluster_conf_id", "-1"))
    except ValueError:
        return -1


def observed_fit(observations: Sequence[Observation], recent: float = 2.0
                 ) -> dict[int, list[Interval]]:
    """
    When each node was seen fit: it served (L{serves}) and no Primary node of the same
    cluster seen in the last C{recent} seconds reported a higher configuration id (which a
    resumed frozen node does for a while: it still shows its old view).  A node counts as fit
    from the start of one fit read to the end of the next, when both were fit; a failed or
    unfit read ends it.
    """
    latest: dict[int, Observation] = {}
    judged: dict[int, list[tuple[Observation, bool]]] = {}
    for o in sorted(observations, key=lambda o: o.end):
        if not o.error:
            latest[o.node] = o
        fit = not o.error and serves(o.values) and not any(
            other.node != o.node and o.end - other.end <= recent
            and other.values.get("wsrep_cluster_status") == "Primary"
            and other.values.get("wsrep_cluster_state_uuid")
            == o.values.get("wsrep_cluster_state_uuid")
            and _conf_id(other.values) > _conf_id(o.values)
            for other in latest.values())
        judged.setdefault(o.node, []).append((o, fit))
    intervals: dict[int, list[Interval]] = {}
    for node, reads in judged.items():
        spans = intervals.setdefault(node, [])
        for (first, fit1), (second, fit2) in pairwise(reads):
            if fit1 and fit2:
                if spans and spans[-1][1] >= first.start:
                    spans[-1] = (spans[-1][0], second.end)
                else:
                    spans.append((first.start, second.end))
    return intervals


def intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """The times in both sorted, non-overlapping interval lists."""
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        low, high = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if high > low:
            out.append((low, high))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


class FitTimeline:
    """For each node, when it was fit in both views, and when in the direct reads alone."""

    def __init__(self, both: Mapping[int, Sequence[Interval]], margin: float = 0.05,
                 seen: Mapping[int, Sequence[Interval]] | None = None) -> None:
        self.both = {node: list(spans) for node, spans in both.items()}
        self.seen = {node: list(spans) for node, spans in (seen or both).items()}
        self.margin = margin

    @classmethod
    def build(cls, events: Sequence[Mapping[str, Any]], addresses: Mapping[int, str],
              observations: Sequence[Observation], begin: float, end: float,
              margin: float = 0.05) -> FitTimeline:
        seen = observed_fit(observations)
        return cls({node: intersect(balancer_fit(events, address, begin, end),
                                    seen.get(node, []))
                    for node, address in addresses.items()}, margin, seen)

    def seen_unfit(self, node: int, start: float, end: float) -> bool:
        """
        True if the direct reads did not find C{node} fit all the way from C{start} to
        C{end}: a failure there is the cluster's doing (a node that lost the Primary
        component while a frozen one merged back, say), not the balancer's.
        """
        return not any(low <= start and end <= high for low, high in self.seen.get(node, []))

    def fit_within(self, start: float, wait: float) -> bool:
        """
        True if some node was fit in both views at some moment from C{start} to C{start +
        wait}, for more than the margin on each side (clocks and logs are not exact).
        """
        for spans in self.both.values():
            for low, high in spans:
                low, high = low + self.margin, high - self.margin
                if high >= low and low <= start + wait and high >= start:
                    return True
        return False
