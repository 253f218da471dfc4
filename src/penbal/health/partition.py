# -*- test-case-name: tests.health.test_partition -*-
"""
The cluster-level view: a node whose cluster view (C{wsrep_cluster_state_uuid} and
C{wsrep_cluster_conf_id}) differs from the majority of the Primary nodes penbal reaches is on
the wrong side of a partition, or is a resumed node still reporting a stale Synced state.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from penbal.backend import Fitness
from penbal.health.result import CheckResult, Verdict

View = tuple[str, str]


def cluster_view(values: Mapping[str, str]) -> View | None:
    """A node's (state UUID, configuration id), or None if it reports no such thing."""
    uuid = values.get("wsrep_cluster_state_uuid")
    conf = values.get("wsrep_cluster_conf_id")
    if not uuid or not conf:
        return None
    return uuid, conf


def majority_view(results: Iterable[CheckResult]) -> View | None:
    """
    The view shared by more than half of the reachable nodes that say they are Primary, or
    None when there is no such majority (no vote, or a tie).

    A non-Primary node's configuration id means nothing (it reports -1), so it has no vote;
    it is unfit on its own account anyway.
    """
    votes: Counter[View] = Counter()
    for result in results:
        if not result.reachable or result.values.get("wsrep_cluster_status") != "Primary":
            continue
        view = cluster_view(result.values)
        if view is not None:
            votes[view] += 1
    if not votes:
        return None
    (view, count), total = votes.most_common(1)[0], sum(votes.values())
    return view if count * 2 > total else None


def describe(view: View) -> str:
    """A view as an operator reads it."""
    return f"{view[0][:8]}.../conf {view[1]}"


def partition_verdict(verdict: Verdict, result: CheckResult, majority: View | None) -> Verdict:
    """C{verdict}, or unfit if the node is usable but disagrees with the majority's view."""
    if verdict.fitness is Fitness.UNFIT or majority is None:
        return verdict
    view = cluster_view(result.values)
    if view is None or view == majority:
        return verdict
    return Verdict(
        Fitness.UNFIT,
        f"cluster view {describe(view)} differs from the majority's {describe(majority)}"
        " (partitioned, or resumed and not rejoined yet)",
    )
