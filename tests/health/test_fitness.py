"""
Tests for L{penbal.health.fitness}: each scenario of the Galera notes, as recorded, judged.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from penbal.backend import Fitness
from penbal.health.fitness import (
    DonorPolicy,
    galera_verdict,
    reachability_verdict,
    state_name,
)
from penbal.health.result import CheckResult
from tests.health import rows


class GaleraRulesTests(SynchronousTestCase):
    """The Galera check's rules on the recorded status rows."""

    def assertUnfit(self, result: CheckResult, *words: str) -> None:
        verdict = galera_verdict(result)
        self.assertIs(verdict.fitness, Fitness.UNFIT)
        for word in words:
            self.assertIn(word, verdict.reason)

    def test_healthy(self) -> None:
        """A Synced, ready, connected, Primary node that accepts queries is fit, no reason."""
        verdict = galera_verdict(rows.seen(rows.HEALTHY))
        self.assertIs(verdict.fitness, Fitness.FIT)
        self.assertEqual(verdict.reason, "")

    def test_desynced_is_last_resort(self) -> None:
        """wsrep_desync=ON (state 2) is a last resort by default (--donor avoid)."""
        verdict = galera_verdict(rows.seen(rows.DESYNCED))
        self.assertIs(verdict.fitness, Fitness.LAST_RESORT)
        self.assertIn("wsrep_desync=ON", verdict.reason)

    def test_sst_donor_is_last_resort(self) -> None:
        """A real state-transfer donor (state 2, desync OFF) is a last resort too."""
        verdict = galera_verdict(rows.seen(rows.SST_DONOR))
        self.assertIs(verdict.fitness, Fitness.LAST_RESORT)
        self.assertIn("donor", verdict.reason)

    def test_donor_never(self) -> None:
        """--donor never: a donor is unfit."""
        verdict = galera_verdict(rows.seen(rows.DESYNCED), DonorPolicy.NEVER)
        self.assertIs(verdict.fitness, Fitness.UNFIT)
        self.assertIn("--donor never", verdict.reason)

    def test_donor_use(self) -> None:
        """--donor use: a donor is fit like any node."""
        verdict = galera_verdict(rows.seen(rows.DESYNCED), DonorPolicy.USE)
        self.assertIs(verdict.fitness, Fitness.FIT)

    def test_sst_donor_rejecting_queries(self) -> None:
        """A donor with wsrep_sst_donor_rejects_queries=ON rejects clients: unfit, any policy."""
        for policy in DonorPolicy:
            verdict = galera_verdict(rows.seen(rows.SST_DONOR_REJECTING), policy)
            self.assertIs(verdict.fitness, Fitness.UNFIT)
            self.assertIn("wsrep_sst_donor_rejects_queries=ON", verdict.reason)

    def test_rejecting_queries(self) -> None:
        """wsrep_reject_queries=ALL is unfit although the node still says 4/Synced."""
        self.assertUnfit(rows.seen(rows.REJECTING), "wsrep_reject_queries=ALL")

    def test_non_primary(self) -> None:
        """A node that lost quorum is unfit, and the reason names the cluster status."""
        self.assertUnfit(rows.seen(rows.NON_PRIMARY), "wsrep_cluster_status=non-Primary")

    def test_not_ready(self) -> None:
        """wsrep_ready=OFF alone is enough to be unfit."""
        self.assertUnfit(rows.seen(rows.row(wsrep_ready="OFF")), "wsrep_ready=OFF")

    def test_not_connected(self) -> None:
        """wsrep_connected=OFF is unfit."""
        self.assertUnfit(rows.seen(rows.row(wsrep_connected="OFF")), "wsrep_connected=OFF")

    def test_joining_and_joined(self) -> None:
        """States 1 (Joining) and 3 (Joined) are unfit, named in the reason."""
        self.assertUnfit(rows.seen(rows.JOINER), "1 (Joining)")
        self.assertUnfit(rows.seen(rows.JOINED), "3 (Joined)")

    def test_killed(self) -> None:
        """A refused connection (kill -9) is unfit with the driver's message."""
        self.assertUnfit(rows.REFUSED, "Connection refused")

    def test_frozen(self) -> None:
        """A timed-out check (kill -STOP) is unfit."""
        self.assertUnfit(rows.FROZEN, "timed out")

    def test_not_galera(self) -> None:
        """A MySQL server without wsrep status is unfit."""
        self.assertUnfit(CheckResult(True, values={"wsrep_on": "OFF"}), "not a Galera node")

    def test_state_name_without_comment(self) -> None:
        """The state's meaning comes from the table when the comment is missing."""
        self.assertEqual(state_name({"wsrep_local_state": "3"}), "3 (Joined)")


class ReachabilityTests(SynchronousTestCase):
    """The TCP check's rule."""

    def test_reachable(self) -> None:
        """A connection is fit."""
        self.assertIs(reachability_verdict(CheckResult(True)).fitness, Fitness.FIT)

    def test_unreachable(self) -> None:
        """A failed connection is unfit with the error as the reason."""
        verdict = reachability_verdict(CheckResult(False, error="Connection refused"))
        self.assertEqual((verdict.fitness, verdict.reason), (Fitness.UNFIT, "Connection refused"))
