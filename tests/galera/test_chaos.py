"""
The chaos run, two minutes of it, on the suite's real cluster through a real penbal: every
fault kind at least once, and the goals of issue 17 met.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from penbal.testing.chaos import ChaosRun, Settings, markdown
from penbal.testing.chaos.faults import FAULTS
from tests.galera.cluster import credentials_file, restore, shared_cluster
from tests.galera.scenario import report

SECONDS = 120.0
SEED = 17


class ChaosTests(SynchronousTestCase):
    """Faults at random under load."""

    def test_two_minutes(self) -> None:
        """
        Two minutes of faults (longer if needed for each kind to run once), 16 clients
        through penbal: no stale read, no balance violation, no failed connect while a node
        was fit (or became fit within the queue timeout), every failed transaction on a node
        the fault hit, traffic back on every node after each fault, and every node holding
        the opening total at the end.
        """
        cluster = shared_cluster()
        restore(cluster)
        self.addCleanup(restore, cluster)
        outcome = ChaosRun(cluster, credentials_file(cluster),
                           Settings(seconds=SECONDS, seed=SEED, every_kind=True),
                           progress=lambda line: print(f"[chaos] {line}")).run()
        print("\n" + markdown(outcome.tally))
        for row in outcome.tally.rows.values():
            print(f"[chaos] {row.kind} failures: {dict(row.errors)}")
        report("chaos", faults=len(outcome.faults), minutes=outcome.seconds / 60,
               queue_timeout=outcome.queue_timeout, writer_errors=outcome.writer_errors)
        self.assertEqual({f.kind for f in outcome.faults}, set(FAULTS))
        rows = outcome.tally.rows.values()
        self.assertGreater(sum(r.transactions - r.failed for r in rows), 1000)
        self.assertGreater(sum(r.connects for r in rows), 100)
        self.assertEqual(outcome.violations(), [], f"penbal's log: {outcome.penbal_log}")
