# -*- test-case-name: tests.health.test_partition -*-
"""
The cluster-level view of one round of Galera checks.

Two rules, both about the nodes penbal reaches that say they are Primary:

- I{stale}: configuration ids (C{wsrep_cluster_conf_id}) only grow within one cluster history
  (C{wsrep_cluster_state_uuid}).  A Primary node reporting a lower id than another Primary node
  of the same cluster has missed a view change: a node frozen and resumed reports its old
  Synced/Primary view for about 2 s and serves old rows.  The highest id of each cluster is also
  remembered for a few seconds (L{ClusterViews}), so a stale node is not fit while it is the
  only Primary voter (the others between views), nor when a tie would have hidden it.
- I{partitioned}: a node of another cluster history than the majority of the Primary nodes is
  on the wrong side of a split.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from twisted.internet.interfaces import IReactorTime

from penbal.backend import Fitness
from penbal.health.result import CheckResult, Verdict

View = tuple[str, int]

#: Seconds the highest configuration id of a cluster is remembered after a node last reported
#: it (at least; L{ClusterViews} keeps it for three check intervals if that is longer).  A
#: resumed node's stale window lasts about 2 s; a whole cluster restarted (whose ids start
#: again from 1) takes far longer than this to come back.
REMEMBER_SECONDS = 5.0


def cluster_view(values: Mapping[str, str]) -> View | None:
    """A Primary node's (state UUID, configuration id), or None for a node that is not Primary
    or reports no usable view (a non-Primary node's id means nothing: it reports -1)."""
    if values.get("wsrep_cluster_status") != "Primary":
        return None
    uuid = values.get("wsrep_cluster_state_uuid")
    conf = values.get("wsrep_cluster_conf_id", "")
    if not uuid or not conf.isascii() or not conf.isdigit():
        return None
    return uuid, int(conf)


def voters(results: Iterable[CheckResult]) -> list[View]:
    """The views of the reachable Primary nodes of a round."""
    views = (cluster_view(r.values) for r in results if r.reachable)
    return [view for view in views if view is not None]


def majority_cluster(results: Iterable[CheckResult]) -> str | None:
    """The cluster state UUID held by more than half of the reachable Primary nodes, or None
    when there is no such majority (no vote, or a tie)."""
    votes = Counter(uuid for uuid, _ in voters(results))
    if not votes:
        return None
    (uuid, count), total = votes.most_common(1)[0], sum(votes.values())
    return uuid if count * 2 > total else None


def newest_ids(results: Iterable[CheckResult]) -> dict[str, int]:
    """The highest configuration id each cluster's reachable Primary nodes report."""
    newest: dict[str, int] = {}
    for uuid, conf in voters(results):
        if conf > newest.get(uuid, -1):
            newest[uuid] = conf
    return newest


def describe(view: View) -> str:
    """A view as an operator reads it."""
    return f"{view[0][:8]}.../conf {view[1]}"


def partition_verdict(
    verdict: Verdict, result: CheckResult, newest: Mapping[str, int], majority: str | None
) -> Verdict:
    """C{verdict}, or unfit if the node is usable but stale (a newer configuration of its own
    cluster is known: C{newest}) or of another cluster than the C{majority}."""
    if verdict.fitness is Fitness.UNFIT:
        return verdict
    view = cluster_view(result.values)
    if view is None:
        return verdict
    uuid, conf = view
    known = newest.get(uuid, -1)
    if conf < known:
        return Verdict(
            Fitness.UNFIT,
            f"cluster view {describe(view)} is older than conf {known}, seen on another"
            " Primary node (resumed or cut off, not rejoined yet)",
        )
    if majority is not None and uuid != majority:
        return Verdict(
            Fitness.UNFIT,
            f"cluster {uuid[:8]}... differs from the majority's {majority[:8]}... (partitioned)",
        )
    return verdict


class ClusterViews:
    """
    The cluster view of the rounds: each cluster's newest configuration id, from this round and
    remembered for a while, and the majority's cluster.

    L{judge} may be called once per node of a round, each time with the whole round: what it
    remembers from a round is the same however often it sees it.
    """

    def __init__(self, clock: IReactorTime, interval: float = 1.0) -> None:
        self._clock = clock
        #: Seconds an id is kept after it was last reported.
        self.keep = max(REMEMBER_SECONDS, 3 * interval)
        self._newest: dict[str, tuple[int, float]] = {}

    def remember(self, results: Iterable[CheckResult]) -> dict[str, int]:
        """Fold a round's ids into memory; return each cluster's newest id still known."""
        now = self._clock.seconds()
        for uuid, conf in newest_ids(results).items():
            known = self._newest.get(uuid)
            if known is None or conf >= known[0] or now - known[1] > self.keep:
                self._newest[uuid] = (conf, now)
        for uuid, (_, seen) in list(self._newest.items()):
            if now - seen > self.keep:
                del self._newest[uuid]
        return {uuid: conf for uuid, (conf, _) in self._newest.items()}

    def judge(
        self, verdict: Verdict, result: CheckResult, everything: Iterable[CheckResult]
    ) -> Verdict:
        """C{verdict} for the node of C{result}, given every result of its round."""
        round_ = list(everything)
        return partition_verdict(verdict, result, self.remember(round_), majority_cluster(round_))
