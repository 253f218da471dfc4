"""
The galera-writer policy on a real cluster: penbal instances agree on one writer (the node with
the lowest C{wsrep_local_index}) whatever order they are given the nodes in, fail over together
when it becomes unfit, and fail back (or not, with --no-failback).
"""

from __future__ import annotations

import time

from twisted.trial.unittest import SynchronousTestCase

from tests.galera.cluster import set_global
from tests.galera.observe import Traffic, failures, to_port
from tests.galera.scenario import BOUND, INTERVAL, RISE, TIMEOUT, Scenario, after, report


class WriterTests(SynchronousTestCase):
    """One writer for everyone."""

    def test_two_instances_one_writer(self) -> None:
        """Two instances with one configuration send everything to the node of lowest
        wsrep_local_index, move to the next within the bound when it is desynced, and come back
        after RISE checks; a third with --no-failback stays on the next."""
        s = Scenario(self, policy="galera-writer", threads=2, expect_all_nodes=False)
        first, second = s.writer_ranking()[:2]
        _second, second_port = s.start_penbal(policy="galera-writer")
        _sticky, sticky_port = s.start_penbal("--no-failback", policy="galera-writer")
        clients: dict[str, Traffic] = {
            "first": s.traffic,
            "second": s.clients(second_port, 2),
            "no-failback": s.clients(sticky_port, 2),
        }
        for name, traffic in clients.items():
            traffic.wait_for(lambda ss: len(ss) >= 20 and {x.port for x in ss[-10:]} == {
                s.ports[first]}, 20, f"{name}: connections through penbal to node {first}")
        started = time.monotonic()
        time.sleep(INTERVAL * 2)
        t_fault, _ = set_global(s.cluster, first, "wsrep_desync=ON")
        for name, traffic in clients.items():
            before = [x for x in after(traffic.samples(), started) if x.end < t_fault]
            self.assertTrue(before, name)
            self.assertEqual({x.port for x in before}, {s.ports[first]}, name)
        settled = t_fault + BOUND
        for name, traffic in clients.items():
            traffic.wait_for(lambda ss: len(after(ss, settled)) >= 2, BOUND + 10,
                             f"{name}: connections that started after the bound")
        moved = {}
        for name, traffic in clients.items():
            samples = traffic.samples()
            moved[name] = max((x.start for x in to_port(after(samples, t_fault), s.ports[first])),
                              default=t_fault) - t_fault
            self.assertLessEqual(moved[name], BOUND, name)
            self.assertEqual({x.port for x in after(samples, settled)}, {s.ports[second]}, name)
        t_fix, _ = set_global(s.cluster, first, "wsrep_desync=OFF")
        for name in ("first", "second"):
            clients[name].wait_for(
                lambda ss: any(x.port == s.ports[first] for x in after(ss, t_fix)),
                RISE * INTERVAL + TIMEOUT + 5, f"{name} to fail back to node {first}")
        time.sleep(RISE * INTERVAL + TIMEOUT + 1.0)
        back = {}
        for name in ("first", "second"):
            samples = clients[name].samples()
            back[name] = min(x.start for x in to_port(after(samples, t_fix),
                                                      s.ports[first])) - t_fix
        self.assertEqual(to_port(after(clients["no-failback"].samples(), t_fix), s.ports[first]),
                         [])
        for name, traffic in clients.items():
            self.assertEqual(failures(after(traffic.samples(), started)), [], name)
        report("galera-writer", moved_first=moved["first"], moved_second=moved["second"],
               moved_no_failback=moved["no-failback"], back_first=back["first"],
               back_second=back["second"], bound=BOUND)

    def test_different_orders_one_writer(self) -> None:
        """Three instances given the nodes in three different orders, and one with two worker
        processes (--workers 2: the view index reaches them with the health verdicts), send
        every connection to the same node, the one of lowest wsrep_local_index, and move
        together to the next when it is desynced."""
        s = Scenario(self, policy="galera-writer", threads=1, expect_all_nodes=False)
        first, second = s.writer_ranking()[:2]
        orders = {"1,2,3": s.traffic, **{
            ",".join(map(str, order)): s.clients(s.start_penbal(
                policy="galera-writer", order=order)[1], 1)
            for order in ((3, 2, 1), (2, 3, 1))}}
        orders["workers 2, 3,1,2"] = s.clients(s.start_penbal(
            "--workers", "2", policy="galera-writer", order=(3, 1, 2))[1], 1)
        for name, traffic in orders.items():
            traffic.wait_for(lambda ss: len(ss) >= 10 and {x.port for x in ss[-5:]} == {
                s.ports[first]}, 20, f"order {name}: connections to node {first}")
        t_fault, _ = set_global(s.cluster, first, "wsrep_desync=ON")
        for name, traffic in orders.items():
            traffic.wait_for(lambda ss: any(x.port == s.ports[second] for x in after(ss, t_fault)),
                             BOUND + 5, f"order {name}: connections to node {second}")
        settled = t_fault + BOUND
        for name, traffic in orders.items():
            traffic.wait_for(lambda ss: len(after(ss, settled)) >= 2, BOUND + 10,
                             f"order {name}: connections that started after the bound")
        for name, traffic in orders.items():
            self.assertEqual({x.port for x in after(traffic.samples(), settled)},
                             {s.ports[second]}, name)
            self.assertEqual(failures(traffic.samples()), [], name)
        report("galera-writer orders", writer=f"node{first}", next=f"node{second}",
               instances=len(orders))
