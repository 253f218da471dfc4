"""
Each failure mode of the Galera notes, on a real cluster, through a running penbal: the node
is out of new traffic within fall * interval + timeout of its fault, no client fails while a
fit node exists, and the node gets traffic again only after rise good checks.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pymysql
from twisted.trial.unittest import SynchronousTestCase

from tests.galera.cluster import bootstrap, set_global
from tests.galera.observe import (
    Sample,
    failures,
    first_good_after,
    fitness_runs,
    last_bad_before,
    last_fit,
    last_primary,
    to_port,
)
from tests.galera.scenario import (
    BOUND,
    CLOCKS,
    INTERVAL,
    RISE,
    SLACK,
    TIMEOUT,
    Scenario,
    after,
    report,
)


class FailureModeTests(SynchronousTestCase):
    """One scenario per test, on the suite's cluster, restored afterwards."""

    def out_within_bound(self, s: Scenario, node: int, t_fault: float, name: str,
                         reached: list[Sample] | None = None) -> float:
        """Assert that the last new connection to reach C{node} started within the bound
        after C{t_fault}; return that time."""
        samples = s.wait_until(t_fault + BOUND + 1.5)
        if reached is None:
            reached = to_port(after(samples, t_fault), s.ports[node])
        last = max((x.start for x in reached), default=t_fault) - t_fault
        later = [x for x in after(samples, t_fault + BOUND) if x.port is not None]
        self.assertTrue(later, "no connection succeeded after the bound")
        self.assertLessEqual(last, BOUND, f"{name}: node {node} got new connections {last:.3f}s"
                             " after the fault")
        return last

    def readmitted(self, s: Scenario, node: int, t_fix: float, name: str,
                   within: float = 30.0) -> tuple[float, float]:
        """Wait for new connections to reach C{node} again after C{t_fix}; assert that penbal
        re-admitted it (logged it fit) after RISE good checks: at least (RISE - 1) intervals
        after the node was last seen unfit, and at most RISE intervals and a timeout after it
        was first seen fit; and that no client reached it before that."""
        port = s.ports[node]
        samples = s.traffic.wait_for(lambda ss: any(x.port == port for x in after(ss, t_fix)),
                                     within, f"{name}: new connections to node {node} again")
        # A client that started while no node was fit (the merge of a resumed node can leave
        # all three non-Primary for a moment) is held and sent on when one is: when it
        # started says nothing of when the node was chosen, but it reached the node after.
        reached = min(x.connected for x in to_port(after(samples, t_fix), port))
        admitted = s.logged_change(node, "fit", t_fix + s.wall_offset) - s.wall_offset
        self.assertLessEqual(admitted, reached + CLOCKS,
                             f"{name}: a client reached node {node} at {reached:.3f}, before"
                             f" penbal re-admitted it at {admitted:.3f}")
        observations = s.poller.observations()
        # Unfit states that lasted a check interval and the time a check takes to read the
        # status: penbal reads a node once an interval, at a moment that moves within its
        # check by up to SLACK, so a shorter state may fall between two of its reads.
        since_bad = admitted - last_bad_before(observations, node, admitted,
                                               lasting=INTERVAL + SLACK)
        since_good = admitted - first_good_after(observations, node, t_fix)
        self.assertGreaterEqual(since_bad, (RISE - 1) * INTERVAL - SLACK,
                                f"{name}: node {node} re-admitted {since_bad:.3f}s after it was"
                                f" last seen unfit (penbal logged it fit at {admitted:.3f}); the"
                                f" poller saw:\n"
                                f"{fitness_runs(observations, node, t_fix, admitted)}"
                                f"\npenbal's health log: {s.health_events()}")
        # RISE checks take RISE * INTERVAL + TIMEOUT at most; twice that leaves room for one
        # check that a loaded machine made miss its timeout.
        self.assertLessEqual(since_good, 2 * (RISE * INTERVAL + TIMEOUT))
        return since_bad, since_good

    def variable_fault(self, node: int, fault: str, fix: str, what: str, label: str) -> None:
        """SET GLOBAL C{fault} on C{node}: out within the bound with no client failing; SET
        GLOBAL C{fix}: back after RISE good checks."""
        s = Scenario(self)
        t_fault, _ = set_global(s.cluster, node, fault)
        last = self.out_within_bound(s, node, t_fault, what)
        self.assertEqual(failures(after(s.traffic.samples(), t_fault)), [])
        t_fix, _ = set_global(s.cluster, node, fix)
        since_bad, since_good = self.readmitted(s, node, t_fix, what)
        report(label, last_connection_after_fault=last, bound=BOUND,
               readmitted_after_last_unfit=since_bad, readmitted_after_first_fit=since_good)

    def test_desync(self) -> None:
        """wsrep_desync=ON (Donor/Desynced): out within the bound while two synced nodes are
        fit, no client fails; back after RISE checks once desync is off."""
        self.variable_fault(2, "wsrep_desync=ON", "wsrep_desync=OFF", "desync", "desync")

    def test_reject_queries(self) -> None:
        """wsrep_reject_queries=ALL (still 4/Synced): out within the bound, back after RISE."""
        self.variable_fault(3, "wsrep_reject_queries=ALL", "wsrep_reject_queries=NONE",
                            "reject_queries", "reject_queries=ALL")

    def test_kill9(self) -> None:
        """kill -9: no client fails (refused connects fail over), penbal marks the node unfit
        within the bound; after a restart (IST) it is back after RISE checks."""
        s = Scenario(self)
        wall, t_fault = time.time(), time.monotonic()
        s.cluster.kill9(3)
        last = self.out_within_bound(s, 3, t_fault, "kill -9")
        self.assertEqual(failures(after(s.traffic.samples(), t_fault)), [])
        marked = s.logged_change(3, "unfit", wall) - wall
        self.assertLessEqual(marked, BOUND + SLACK)
        t_fix = time.monotonic()
        s.cluster.restart(3)
        since_bad, since_good = self.readmitted(s, 3, t_fix, "kill -9", within=60)
        report("kill -9", last_connection_after_fault=last, marked_unfit_after=marked,
               bound=BOUND, restart_took=time.monotonic() - t_fix,
               readmitted_after_last_unfit=since_bad, readmitted_after_first_fit=since_good)

    def test_frozen(self) -> None:
        """kill -STOP: a client sent to the frozen node after the fault is failed over when
        the node does not greet within --first-byte-timeout (the connect timeout, 1 s here),
        so none fails; only a query in flight at the fault hangs until its timeout.  No new
        connection reaches the node; after SIGCONT it reports a stale or non-Primary state
        and gets traffic only once it really rejoined, after RISE checks."""
        s = Scenario(self, "-t", "1", threads=6)
        t_fault = time.monotonic()
        s.cluster.freeze(3)
        samples = s.wait_until(t_fault + BOUND + s.traffic.timeout + 1.5)
        self.assertEqual(failures(after(samples, t_fault)), [],
                         f"penbal's log: {s.penbal.log()[-4000:]}")
        in_flight = [x for x in failures(samples) if x.end >= t_fault]
        for sample in in_flight:
            self.assertTrue("timed out" in sample.error or "Lost connection" in sample.error,
                            sample.error)
        last = self.out_within_bound(s, 3, t_fault, "frozen")
        self.assertIn("sent nothing within 1s", s.penbal.log())
        t_fix = time.monotonic()
        s.cluster.thaw(3)
        since_bad, since_good = self.readmitted(s, 3, t_fix, "frozen", within=60)
        report("kill -STOP", last_connection_after_fault=last, bound=BOUND,
               in_flight_timed_out=len(in_flight), readmitted_after_last_unfit=since_bad,
               readmitted_after_first_fit=since_good,
               rejoined_after_thaw=first_good_after(s.poller.observations(), 3, t_fix) - t_fix)

    def test_non_primary(self) -> None:
        """Two nodes killed: the survivor serves until it loses quorum, then is out within
        the bound; with --on-unfit close its open connections are closed as well."""
        s = Scenario(self, "--on-unfit", "close")
        held, closed = self.hold_connection_to(s, 1)
        s.cluster.kill9(2)
        s.cluster.kill9(3)
        # Only from here can no new client reach node 2 or 3: one sent to node 3 while
        # node 2 was being killed may still lose its connection mid-query, as it should.
        t_kill = time.monotonic()
        s.traffic.wait_for(
            lambda ss: any(o.node == 1 and o.values.get("wsrep_cluster_status") == "non-Primary"
                           for o in s.poller.observations()), 30, "node 1 to go non-Primary")
        t_fault = last_primary(s.poller.observations(), 1, t_kill)
        last = self.out_within_bound_no_success(s, 1, t_fault)
        # Clients that came after the bound are held by the wait queue until its deadline:
        # wait for a few of them to end.
        samples = s.traffic.wait_for(lambda ss: len(after(ss, t_fault + BOUND)) >= 4, 15,
                                     "clients started after the bound to end")
        # Clients must not fail while node 1 is still fit by every rule penbal applies: the
        # node may turn unfit (wsrep_ready, wsrep_local_state) a little before it reports
        # non-Primary, and penbal rightly acts on the first change.
        t_unfit = last_fit(s.poller.observations(), 1, t_kill)
        while_fit = [x for x in samples if t_kill <= x.start and x.end < t_unfit]
        self.assertTrue(while_fit)
        self.assertEqual(failures(while_fit), [],
                         f"clients failed while node 1 was fit; penbal's health log: "
                         f"{s.health_events()}")
        refused = after(samples, t_fault + BOUND)
        self.assertTrue(refused)
        self.assertEqual(failures(refused), refused)
        # No node fit: each client is held by the wait queue (--queue-timeout, 2 s by default
        # with --check galera) and refused at its deadline (or at its own 2 s read timeout),
        # never left hanging.
        self.assertTrue(all(x.end - x.start < 2.0 + 1.0 for x in refused),
                        "no-backend must come within the queue timeout")
        held_closed = closed.wait(10) and held["at"] - t_fault
        self.assertIsNot(held_closed, False, "the connection to the unfit node was not closed")
        self.assertLessEqual(held_closed, BOUND + SLACK)
        t_fix = time.monotonic()
        bootstrap(s.cluster, 1)
        since_bad, since_good = self.readmitted(s, 1, t_fix, "non-Primary")
        report("non-Primary", lost_quorum_after_kill=t_fault - t_kill,
               unfit_before_non_primary=t_fault - t_unfit,
               last_connection_after_fault=last, held_connection_closed_after=held_closed,
               bound=BOUND, readmitted_after_last_unfit=since_bad,
               readmitted_after_first_fit=since_good)

    def out_within_bound_no_success(self, s: Scenario, node: int, t_fault: float) -> float:
        """As L{out_within_bound}, when no other node can take connections."""
        samples = s.wait_until(t_fault + BOUND + 1.5)
        last = max((x.start for x in to_port(after(samples, t_fault), s.ports[node])),
                   default=t_fault) - t_fault
        self.assertLessEqual(last, BOUND)
        return last

    def hold_connection_to(self, s: Scenario, node: int) -> tuple[dict[str, Any],
                                                                    threading.Event]:
        """A client connection through penbal that reached C{node}, kept busy in a long
        query; the returned event is set (and C{["at"]} noted) when the connection ends."""
        for _ in range(30):
            connection = pymysql.connect(
                host="127.0.0.1", port=s.port, user=s.cluster.app_user,
                password=s.cluster.app_password, connect_timeout=2, read_timeout=120)
            with connection.cursor() as cursor:
                cursor.execute("SELECT @@port")
                (port,) = cursor.fetchone()
            if port == s.ports[node]:
                break
            connection.close()
        else:
            self.fail(f"no connection reached node {node}")
        held: dict[str, Any] = {}
        closed = threading.Event()

        def sleep() -> None:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT SLEEP(60)")
            except Exception as e:
                held["error"] = repr(e)
            held["at"] = time.monotonic()
            closed.set()

        threading.Thread(target=sleep, daemon=True).start()
        self.addCleanup(connection.close)
        return held, closed

    def test_donor_only(self) -> None:
        """A desynced node gets nothing while a synced node is fit; when every synced node is
        unfit it takes all new connections and no client fails; it is left again once a
        synced node is back (after RISE checks)."""
        s = Scenario(self)
        t_desync, _ = set_global(s.cluster, 1, "wsrep_desync=ON")
        self.out_within_bound(s, 1, t_desync, "donor avoided")
        t_fault, _ = set_global(s.cluster, 2, "wsrep_reject_queries=ALL")
        set_global(s.cluster, 3, "wsrep_reject_queries=ALL")
        samples = s.wait_until(t_fault + BOUND + 1.5)
        self.assertEqual(failures(after(samples, t_desync)), [])
        others = [x for x in after(samples, t_fault) if x.port != s.ports[1]]
        last_other = max((x.start for x in others), default=t_fault) - t_fault
        self.assertLessEqual(last_other, BOUND)
        donor_only = after(samples, t_fault + BOUND)
        self.assertTrue(donor_only)
        self.assertEqual({x.port for x in donor_only}, {s.ports[1]})
        t_fix, _ = set_global(s.cluster, 2, "wsrep_reject_queries=NONE")
        since_bad, _since_good = self.readmitted(s, 2, t_fix, "synced node back")
        samples = s.wait_until(time.monotonic() + 1.0)
        # Once a client's query has come back from node 2, penbal has readmitted it: any client
        # that starts later connects later, so must not reach the donor.  (A client's start
        # time is taken before it connects; a client thread held up for a while on a loaded
        # machine can connect after one that started 50 ms later, so starts alone prove no
        # order.)
        back = min(x.end for x in to_port(after(samples, t_fix), s.ports[2]))
        self.assertEqual(to_port(after(samples, back), s.ports[1]), [])
        self.assertEqual(failures(after(samples, t_desync)), [])
        report("donor only", others_out_after=last_other, bound=BOUND,
               donor_connections=len(donor_only), synced_back_after_last_unfit=since_bad)
