"""
Tests for L{penbal.health.partition}: stale views (configuration ids only grow), the memory of
the newest id, and the majority's cluster.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from penbal.backend import Fitness
from penbal.health.fitness import galera_verdict
from penbal.health.partition import (
    REMEMBER_SECONDS,
    ClusterViews,
    cluster_view,
    majority_cluster,
    newest_ids,
    partition_verdict,
)
from penbal.health.result import FIT, CheckResult, Verdict
from tests.health import rows

OTHER_UUID = "0f1e2d3c-aaaa-11f1-962f-e314c3a6cd23"


class ViewTests(SynchronousTestCase):
    """What counts as a vote."""

    def test_primary_view(self) -> None:
        """A Primary node's view is its state UUID and its configuration id as a number."""
        self.assertEqual(cluster_view(rows.HEALTHY), (rows.UUID, 3))

    def test_non_primary_has_no_view(self) -> None:
        """A non-Primary node reports -1 as its id (unsigned): no view."""
        self.assertIsNone(cluster_view(rows.NON_PRIMARY))

    def test_garbled_id_has_no_view(self) -> None:
        """An id that is not ASCII digits is no view."""
        self.assertIsNone(cluster_view(rows.row(wsrep_cluster_conf_id="٣")))
        self.assertIsNone(cluster_view(rows.row(wsrep_cluster_conf_id="")))

    def test_newest_per_cluster(self) -> None:
        """The highest id of each cluster among reachable Primary nodes: ids are compared as
        numbers (conf 10 is newer than conf 9)."""
        results = [rows.seen(rows.row(wsrep_cluster_conf_id="9")),
                   rows.seen(rows.row(wsrep_cluster_conf_id="10")),
                   rows.seen(rows.row(wsrep_cluster_state_uuid=OTHER_UUID)),
                   rows.seen(rows.NON_PRIMARY), rows.REFUSED]
        self.assertEqual(newest_ids(results), {rows.UUID: 10, OTHER_UUID: 3})

    def test_majority_cluster(self) -> None:
        """Two nodes of one cluster history outvote one of another; a tie is no majority."""
        ours = rows.seen(rows.HEALTHY)
        theirs = rows.seen(rows.row(wsrep_cluster_state_uuid=OTHER_UUID))
        self.assertEqual(majority_cluster([ours, ours, theirs]), rows.UUID)
        self.assertIsNone(majority_cluster([ours, theirs]))
        self.assertIsNone(majority_cluster([rows.REFUSED, rows.seen(rows.NON_PRIMARY)]))


class PartitionVerdictTests(SynchronousTestCase):
    """A stale or partitioned node is unfit."""

    def test_stale_node_unfit(self) -> None:
        """A resumed node at conf 3, fit on its own account, is unfit when conf 4 is known."""
        verdict = partition_verdict(FIT, rows.seen(rows.STALE_RESUMED), {rows.UUID: 4}, None)
        self.assertIs(verdict.fitness, Fitness.UNFIT)
        self.assertIn("conf 3", verdict.reason)
        self.assertIn("conf 4", verdict.reason)

    def test_newest_node_keeps_its_verdict(self) -> None:
        """A node at the newest id keeps its verdict, even against a majority at an older id
        (it saw the view change first)."""
        last = Verdict(Fitness.LAST_RESORT, "desynced")
        result = rows.seen(rows.AFTER_EVICTION)
        self.assertIs(partition_verdict(last, result, {rows.UUID: 4}, rows.UUID), last)

    def test_other_cluster_unfit(self) -> None:
        """A node of another cluster history than the majority's is unfit."""
        result = rows.seen(rows.row(wsrep_cluster_state_uuid=OTHER_UUID))
        verdict = partition_verdict(FIT, result, {OTHER_UUID: 3, rows.UUID: 3}, rows.UUID)
        self.assertIs(verdict.fitness, Fitness.UNFIT)
        self.assertIn("partitioned", verdict.reason)

    def test_already_unfit_keeps_its_reason(self) -> None:
        """An unfit verdict keeps its own reason."""
        unfit = Verdict(Fitness.UNFIT, "rejecting")
        result = rows.seen(rows.STALE_RESUMED)
        self.assertIs(partition_verdict(unfit, result, {rows.UUID: 4}, rows.UUID), unfit)


def replay(views: ClusterViews, clock: Clock, rounds: list[list[CheckResult]]) -> list[Fitness]:
    """Judge the last node of each round, one round per second."""
    out = []
    for round_ in rounds:
        node = round_[-1]
        out.append(views.judge(galera_verdict(node), node, round_).fitness)
        clock.advance(1.0)
    return out


class ClusterViewsTests(SynchronousTestCase):
    """Rounds judged with memory."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.views = ClusterViews(self.clock, interval=1.0)

    def test_tie_replay(self) -> None:
        """Recorded rows of a resumed node (conf 3) beside one current node (conf 4), the
        third node's check timing out: a majority rule sees a tie and would pass the stale
        node; it is unfit in every round."""
        round_ = [rows.FROZEN, rows.seen(rows.AFTER_EVICTION), rows.seen(rows.STALE_RESUMED)]
        self.assertEqual(replay(self.views, self.clock, [round_] * 5), [Fitness.UNFIT] * 5)

    def test_lone_voter(self) -> None:
        """The current nodes go non-Primary during a view change and the stale node is the
        only Primary voter: unfit while conf 4 is remembered, judged on its own after."""
        current = [rows.seen(rows.AFTER_EVICTION), rows.seen(rows.AFTER_EVICTION),
                   rows.seen(rows.HEALTHY)]
        lone = [rows.seen(rows.NON_PRIMARY), rows.seen(rows.NON_PRIMARY),
                rows.seen(rows.STALE_RESUMED)]
        verdicts = replay(self.views, self.clock, [current] + [lone] * 8)
        remembered = int(REMEMBER_SECONDS)
        self.assertEqual(verdicts[: 1 + remembered], [Fitness.UNFIT] * (1 + remembered))
        self.assertEqual(verdicts[-1], Fitness.FIT)

    def test_memory_refreshed_while_reported(self) -> None:
        """An id reported every round is never forgotten, however long it lasts."""
        current = [rows.seen(rows.AFTER_EVICTION), rows.seen(rows.STALE_RESUMED)]
        verdicts = replay(self.views, self.clock, [current] * 20)
        self.assertEqual(verdicts, [Fitness.UNFIT] * 20)

    def test_healthy_rounds_unchanged(self) -> None:
        """Three nodes that agree are all fit, round after round."""
        round_ = [rows.seen(rows.HEALTHY)] * 3
        self.assertEqual(replay(self.views, self.clock, [round_] * 10), [Fitness.FIT] * 10)

    def test_restarted_cluster_fit_after_memory(self) -> None:
        """A whole cluster restarted starts its ids again from 1: once the old id has not been
        seen for longer than the memory, the new ids are fit."""
        old = [rows.seen(rows.row(wsrep_cluster_conf_id="40"))] * 3
        new = [rows.seen(rows.row(wsrep_cluster_conf_id="1"))] * 3
        verdicts = replay(self.views, self.clock, [old] + [new] * 10)
        self.assertEqual(verdicts[0], Fitness.FIT)
        self.assertEqual(verdicts[-1], Fitness.FIT)

    def test_keep_follows_slow_intervals(self) -> None:
        """With rounds further apart than the memory, an id is kept for three intervals."""
        self.assertEqual(ClusterViews(self.clock, interval=4.0).keep, 12.0)
        self.assertEqual(ClusterViews(self.clock, interval=0.5).keep, REMEMBER_SECONDS)
