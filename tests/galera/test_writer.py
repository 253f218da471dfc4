"""
The galera-writer policy on a real cluster: two penbal instances agree on one writer, fail
over together when it becomes unfit, and fail back (or not, with --no-failback).
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
        """Two instances with one configuration send everything to node 1, move to node 2
        within the bound when node 1 is desynced, and come back after RISE checks; a third
        with --no-failback stays on node 2."""
        s = Scenario(self, policy="galera-writer", threads=2, expect_all_nodes=False)
        _second, second_port = s.start_penbal(policy="galera-writer")
        _sticky, sticky_port = s.start_penbal("--no-failback", policy="galera-writer")
        clients: dict[str, Traffic] = {
            "first": s.traffic,
            "second": s.clients(second_port, 2),
            "no-failback": s.clients(sticky_port, 2),
        }
        for name, traffic in clients.items():
            traffic.wait_for(lambda ss: len(ss) >= 20 and {x.port for x in ss[-10:]} == {
                s.ports[1]}, 20, f"{name}: connections through penbal to node 1")
        started = time.monotonic()
        time.sleep(INTERVAL * 2)
        t_fault, _ = set_global(s.cluster, 1, "wsrep_desync=ON")
        for name, traffic in clients.items():
            before = [x for x in after(traffic.samples(), started) if x.end < t_fault]
            self.assertTrue(before, name)
            self.assertEqual({x.port for x in before}, {s.ports[1]}, name)
        time.sleep(BOUND + 1.0)
        moved = {}
        for name, traffic in clients.items():
            samples = traffic.samples()
            moved[name] = max((x.start for x in to_port(after(samples, t_fault), s.ports[1])),
                              default=t_fault) - t_fault
            self.assertLessEqual(moved[name], BOUND, name)
            self.assertEqual({x.port for x in after(samples, t_fault + BOUND)}, {s.ports[2]},
                             name)
        t_fix, _ = set_global(s.cluster, 1, "wsrep_desync=OFF")
        for name in ("first", "second"):
            clients[name].wait_for(
                lambda ss: any(x.port == s.ports[1] for x in after(ss, t_fix)),
                RISE * INTERVAL + TIMEOUT + 5, f"{name} to fail back to node 1")
        time.sleep(RISE * INTERVAL + TIMEOUT + 1.0)
        back = {}
        for name in ("first", "second"):
            samples = clients[name].samples()
            back[name] = min(x.start for x in to_port(after(samples, t_fix), s.ports[1])) - t_fix
        self.assertEqual(to_port(after(clients["no-failback"].samples(), t_fix), s.ports[1]),
                         [])
        for name, traffic in clients.items():
            self.assertEqual(failures(after(traffic.samples(), started)), [], name)
        report("galera-writer", moved_first=moved["first"], moved_second=moved["second"],
               moved_no_failback=moved["no-failback"], back_first=back["first"],
               back_second=back["second"], bound=BOUND)
