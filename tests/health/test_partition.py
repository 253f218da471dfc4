"""
Tests for L{penbal.health.partition}: the majority view of the nodes penbal reaches.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from penbal.backend import Fitness
from penbal.health.partition import majority_view, partition_verdict
from penbal.health.result import FIT, Verdict
from tests.health import rows


class MajorityTests(SynchronousTestCase):
    """Which cluster view the majority holds."""

    def test_all_agree(self) -> None:
        """Three healthy nodes agree on one view."""
        results = [rows.seen(rows.HEALTHY)] * 3
        self.assertEqual(majority_view(results), (rows.UUID, "3"))

    def test_stale_node_outvoted(self) -> None:
        """Two nodes at conf 4 outvote a resumed node still at conf 3."""
        results = [rows.seen(rows.AFTER_EVICTION)] * 2 + [rows.seen(rows.STALE_RESUMED)]
        self.assertEqual(majority_view(results), (rows.UUID, "4"))

    def test_tie_is_no_majority(self) -> None:
        """One against one is no majority."""
        results = [rows.seen(rows.AFTER_EVICTION), rows.seen(rows.HEALTHY)]
        self.assertIsNone(majority_view(results))

    def test_unreachable_and_non_primary_do_not_vote(self) -> None:
        """Unreachable and non-Primary nodes have no vote: the one Primary node decides."""
        results = [rows.REFUSED, rows.seen(rows.NON_PRIMARY), rows.seen(rows.NON_PRIMARY),
                   rows.seen(rows.HEALTHY)]
        self.assertEqual(majority_view(results), (rows.UUID, "3"))

    def test_nothing_reachable(self) -> None:
        """No reachable node, no view."""
        self.assertIsNone(majority_view([rows.REFUSED, rows.FROZEN]))


class PartitionVerdictTests(SynchronousTestCase):
    """A node that disagrees with the majority is unfit."""

    def test_minority_view_unfit(self) -> None:
        """A stale resumed node, fit on its own account, is unfit by the cluster view."""
        verdict = partition_verdict(FIT, rows.seen(rows.STALE_RESUMED), (rows.UUID, "4"))
        self.assertIs(verdict.fitness, Fitness.UNFIT)
        self.assertIn("conf 3", verdict.reason)
        self.assertIn("conf 4", verdict.reason)

    def test_majority_view_unchanged(self) -> None:
        """A node with the majority's view keeps its verdict."""
        last = Verdict(Fitness.LAST_RESORT, "desynced")
        self.assertIs(partition_verdict(last, rows.seen(rows.HEALTHY), (rows.UUID, "3")), last)

    def test_no_majority_unchanged(self) -> None:
        """Without a majority nothing changes."""
        self.assertIs(partition_verdict(FIT, rows.seen(rows.HEALTHY), None), FIT)

    def test_already_unfit_keeps_its_reason(self) -> None:
        """An unfit verdict keeps its own reason."""
        unfit = Verdict(Fitness.UNFIT, "rejecting")
        self.assertIs(partition_verdict(unfit, rows.seen(rows.HEALTHY), (rows.UUID, "4")), unfit)
