# -*- test-case-name: tests.workers.test_views -*-
"""
Tests of the worker processes in the status views: JSON, metrics, the page, the summary; the
workers' connections counted once.
"""

from __future__ import annotations

import json
from typing import Any

from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.trial.unittest import SynchronousTestCase

from penbal.status.metrics import make_registry
from penbal.status.page import render_page
from penbal.status.snapshot import Snapshot, build_snapshot, render_json
from penbal.status.text import summary_lines
from penbal.workers.state import WorkerTotals
from tests.control.fixtures import make_runtime

PROCESSES = {"count": 2, "pids": [101, 102], "spare": 103, "replaced": 1, "steered": True}


class WorkersViewTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.runtime, _ = make_runtime()
        self.totals = WorkerTotals(self.runtime.balancer.pool, lambda: dict(PROCESSES))
        self.runtime.relays.append(self.totals)
        address = self.runtime.balancer.pool[0].address
        now = self.runtime.now()
        for worker in (1, 2):
            self.totals.reported(worker, {
                "active": 2, "accepted": 5,
                "backends": {address: {"counters": {"active": 2, "total": 5}}},
                "connections": [[f"127.0.0.{worker}", 5000, address, 10, 20, now - 3],
                                [f"127.0.0.{worker}", 5001, None, 0, 0, now - 1]]})

    def snapshot(self) -> Snapshot:
        return build_snapshot(self.runtime)

    def test_json(self) -> None:
        """The JSON has the processes, and the workers' connections counted once."""
        data: dict[str, Any] = json.loads(render_json(self.snapshot()))
        self.assertEqual(data["workers"], PROCESSES)
        self.assertEqual((data["connections_active"], data["connections_accepted"]), (4, 10))
        self.assertEqual(data["backends"][0]["counters"]["total"], 10)

    def test_live_connections_listed(self) -> None:
        """The connections the workers reported are listed, with their backend and age."""
        shown = [(c.client, c.backend, c.bytes_in, c.age)
                 for c in self.snapshot().connections]
        address = self.runtime.balancer.pool[0].address
        self.assertEqual(sorted(shown), [("127.0.0.1:5000", address, 10, 3.0),
                                         ("127.0.0.1:5001", "-", 0, 1.0),
                                         ("127.0.0.2:5000", address, 10, 3.0),
                                         ("127.0.0.2:5001", "-", 0, 1.0)])

    def test_single_process(self) -> None:
        """Without workers the views say nothing of them."""
        self.runtime.relays.remove(self.totals)
        self.assertIsNone(self.snapshot().workers)
        self.assertNotIn(b"Workers", render_page(self.snapshot()))

    def test_metrics(self) -> None:
        """penbal_workers and penbal_worker_replacements."""
        text = generate_latest(make_registry(self.snapshot)).decode()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        self.assertEqual(families["penbal_workers"].samples[0].value, 2)
        self.assertEqual(families["penbal_worker_replacements"].samples[0].value, 1)
        self.assertEqual(families["penbal_connections_active"].samples[0].value, 4)

    def test_page_and_summary(self) -> None:
        """The page and the SIGUSR1 summary name the processes."""
        line = ("workers: 2 of 2 relaying (pids 101 102), spare pid 103, 1 replaced, "
                "clients steered by client address")
        self.assertIn(line, summary_lines(self.snapshot()))
        self.assertIn(line.encode(), render_page(self.snapshot()))
